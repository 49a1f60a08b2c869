import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent guest settings [--lookup-stdin]`: the hook's config.env keys, as JSON. With
/// `--lookup-stdin`, also the content store's answers for the job's registry references
/// (``SettingsLookupRequest`` on stdin, ``SettingsLookupAnswer`` on stdout), pinned for the
/// job's owner as `ci-nspawn-run pull --store-only` pins them: the runner user's hook then needs
/// one helper call before its guests start, not one more per image.
struct GuestSettingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "settings",
        abstract: "Print the hook's settings from config.env as JSON (image aliases, mount roots; no secrets).",
        discussion: """
            The hook runs as the runner user and cannot read config.env (0600 root: it holds the \
            runner's credentials), so it asks the helper for the few keys it needs. With \
            --lookup-stdin it reads {"references": ["node:20", …], "ownerPID": N} on stdin and \
            answers {"settings": {…}, "lookups": [{"reference": "node:20", "image": {…} or null}]}: \
            what the image store has for each reference (nothing with RUNNER_IMAGE_PULL=always; a \
            reference it cannot look up is left out).
            """)

    @Flag(help: "Also look the references of a request on stdin up in the registry image store.")
    var lookupStdin = false

    func run() async throws {
        guard lookupStdin else {
            let json = try JSONEncoder().encode(try AgentHost.manager().settings)
            StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
            return
        }
        let request = try await AgentHost.rootRequest(
            SettingsLookupRequest.self, command: "ci-nspawn-run settings --lookup-stdin",
            problem: "the image store can only be read as root",
            shape: "a settings request ({\"references\": [\"…\"], \"ownerPID\": N})")
        guard request.references.count <= SettingsLookupRequest.maxReferences else {
            throw RunnerError(
                .invalidInput, input: "stdin",
                problem:
                    "names \(request.references.count) references (at most \(SettingsLookupRequest.maxReferences))",
                fix: "send the job's container and service images only")
        }
        let settings = try AgentHost.manager().settings
        let answer = SettingsLookupAnswer(
            settings: settings, lookups: await Self.lookups(request, settings: settings, layout: try AgentHost.layout())
        )
        let json = try JSONEncoder().encode(answer)
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }

    /// The store's answer for each reference it can be asked about, held for the request's owner
    /// (checked as a guest's owner; one that is not leaves every lookup to the hook).
    static func lookups(_ request: SettingsLookupRequest, settings: HookSettings, layout: HostLayout) async
        -> [StoreLookup]
    {
        guard settings.imagePull != .always else { return [] }
        // An owner the caller may not name leaves every lookup to the hook (which reports it).
        let holder: ImageHolder?
        do throws(RunnerError) {
            holder = try RegistryHost.holder(ownerPID: request.ownerPID)
        } catch {
            return []
        }
        let progress = ProgressReporter(isTerminal: false, plainInterval: 2) { StandardError.write($0) }
        let logger = Logger(label: "runner.registry")
        var lookups: [StoreLookup] = []
        for reference in request.references where !lookups.contains(where: { $0.reference == reference }) {
            // A reference the store cannot be asked about is the hook's to report (it asks again).
            let found: PulledImage?
            do {
                found = try await RegistryHost.pull(
                    RegistryPullRequest(reference: reference), layout: layout, storeOnly: true, holder: holder,
                    progress: progress, logger: logger)
            } catch {
                continue
            }
            let image = found.map(RegistryPullResponse.init).map {
                PulledRegistryImage(reference: $0.reference, digest: $0.digest, tree: $0.tree)
            }
            lookups.append(StoreLookup(reference: reference, image: image))
        }
        return lookups
    }
}
