import RunnerCore
import RunnerGuests

/// What the hook sends with `ci-nspawn-run settings --lookup-stdin` (one JSON object on stdin):
/// the job's registry references, as the hook will look them up, and the job's owner, which
/// pins what is found until the job ends (as with `ci-nspawn-run pull --store-only`).
public struct SettingsLookupRequest: Codable, Sendable, Hashable {
    public var references: [String]
    public var ownerPID: Int32?

    /// At most this many references in one request (a job has a container and a few services).
    public static let maxReferences = 32

    public init(references: [String], ownerPID: Int32?) {
        self.references = references
        self.ownerPID = ownerPID
    }
}

/// What `ci-nspawn-run settings --lookup-stdin` answers: the hook's settings and the content
/// store's answer for each reference it could look up (an image, or none: not in the store). A
/// reference the store could not be asked about (a bad reference, a registry outside
/// `RUNNER_REGISTRIES`) is left out, so the hook asks again and reports the error itself. With
/// `RUNNER_IMAGE_PULL=always` nothing is looked up.
public struct SettingsLookupAnswer: Codable, Sendable, Hashable {
    public var settings: HookSettings
    public var lookups: [StoreLookup]

    public init(settings: HookSettings, lookups: [StoreLookup]) {
        self.settings = settings
        self.lookups = lookups
    }
}

/// One reference and what the content store has for it.
public struct StoreLookup: Codable, Sendable, Hashable {
    /// The reference as the hook asked for it (the key of its later lookup).
    public var reference: String
    /// The image, or nil: not in the store.
    public var image: PulledRegistryImage?

    public init(reference: String, image: PulledRegistryImage?) {
        self.reference = reference
        self.image = image
    }
}

/// Registry images whose store lookups are already answered: the runner user's hook gets them
/// with its settings (one `sudo` and one helper start for the job, not one more per image).
/// A reference without an answer, and every pull, goes to `base`.
struct PrefetchedRegistryImages: RegistryImages {
    /// The store's answer per reference: an image, or nil (not in the store).
    var answers: [String: PulledRegistryImage?]
    var base: any RegistryImages

    init(_ lookups: [StoreLookup], base: any RegistryImages) {
        var answers: [String: PulledRegistryImage?] = [:]
        for lookup in lookups { answers[lookup.reference] = .some(lookup.image) }
        self.answers = answers
        self.base = base
    }

    func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? {
        if let answer = answers[reference] { return answer }
        return try await base.lookup(reference)
    }

    func pull(
        _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
    ) async throws(RunnerError) -> PulledRegistryImage {
        try await base.pull(reference, credentials: credentials, progress: progress)
    }
}
