import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

#if canImport(Glibc)
    import Glibc
#endif

/// How `prepare_job` resolves a registry image under `RUNNER_IMAGE_PULL`: the content store,
/// then a pull (`missing`), a pull every time (`always`), the store only (`never`).
@Suite struct ImagePullPolicyTests {
    static let digest = "sha256:" + String(repeating: "cd", count: 32)

    /// A content store of `stored` references; records what the hook asked.
    final class FakeRegistry: RegistryImages {
        let stored: Set<String>
        let failing: Bool
        let calls = Mutex<[String]>([])

        init(stored: Set<String>, failing: Bool = false) {
            self.stored = stored
            self.failing = failing
        }

        func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? {
            calls.withLock { $0.append("lookup \(reference)") }
            if failing {
                throw RunnerError(
                    .notFound, input: "/usr/local/bin/ci-nspawn-run pull --store-only", problem: "could not start",
                    fix: "install it")
            }
            return stored.contains(reference) ? PulledRegistryImage(reference: reference, digest: digest) : nil
        }

        func pull(
            _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
        ) async throws(RunnerError) -> PulledRegistryImage {
            calls.withLock { $0.append("pull \(reference)") }
            return PulledRegistryImage(reference: reference, digest: digest)
        }
    }

    static func hook(_ policy: RunnerConfig.ImagePullPolicy, registry: FakeRegistry, dir: TemporaryDirectory)
        -> ContainerHook
    {
        var settings = HookSettings()
        settings.imagePull = policy
        let guestPolicy = GuestPolicy(layout: dir.layout)
        return ContainerHook(
            settings: settings, policy: guestPolicy,
            guests: LocalGuests(manager: GuestManager(policy: guestPolicy, logger: Logger(label: "test"))),
            logger: Logger(label: "test"), ownerPID: getpid(), registry: registry)
    }

    @Test func missingAsksTheStoreFirstAndPullsOnlyWhatItLacks() async throws {
        let dir = try TemporaryDirectory("pull-policy")
        defer { dir.remove() }
        let registry = FakeRegistry(stored: ["ghcr.io/o/cached:1"])
        let hook = Self.hook(.missing, registry: registry, dir: dir)
        #expect(try await hook.resolveImage("ghcr.io/o/cached:1", credentials: nil) == Self.digest)
        #expect(try await hook.resolveImage("docker://ghcr.io/o/new:1", credentials: nil) == Self.digest)
        #expect(
            registry.calls.withLock { $0 } == [
                "lookup ghcr.io/o/cached:1", "lookup ghcr.io/o/new:1", "pull ghcr.io/o/new:1",
            ])
    }

    @Test func alwaysPullsEvenWhatTheStoreHas() async throws {
        let dir = try TemporaryDirectory("pull-policy")
        defer { dir.remove() }
        let registry = FakeRegistry(stored: ["ghcr.io/o/cached:1"])
        let hook = Self.hook(.always, registry: registry, dir: dir)
        #expect(try await hook.resolveImage("ghcr.io/o/cached:1", credentials: nil) == Self.digest)
        #expect(registry.calls.withLock { $0 } == ["pull ghcr.io/o/cached:1"])
    }

    @Test func neverUsesTheStoreOnlyAndNamesWhatIsMissing() async throws {
        let dir = try TemporaryDirectory("pull-policy")
        defer { dir.remove() }
        let registry = FakeRegistry(stored: ["ghcr.io/o/cached:1"])
        let hook = Self.hook(.never, registry: registry, dir: dir)
        #expect(try await hook.resolveImage("ghcr.io/o/cached:1", credentials: nil) == Self.digest)
        let error = await #expect(throws: RunnerError.self) {
            try await hook.resolveImage("ghcr.io/o/absent:2", credentials: nil)
        }
        #expect(error?.code == .notFound)
        #expect(error?.input == "ghcr.io/o/absent:2")
        #expect(error?.problem.contains("RUNNER_IMAGE_PULL=never") == true)
        #expect(error?.fix?.contains("runner-agent image pull ghcr.io/o/absent:2") == true)
        #expect(registry.calls.withLock { $0 } == ["lookup ghcr.io/o/cached:1", "lookup ghcr.io/o/absent:2"])
    }

    /// `RUNNER_DEFAULT_IMAGE` is no fallback: an image that is neither an alias nor a baked
    /// image is a registry image (here pulled; with `never` and absent, an error naming it).
    @Test func noJobImageFallsBackToTheDefaultImage() async throws {
        let dir = try TemporaryDirectory("pull-policy")
        defer { dir.remove() }
        let registry = FakeRegistry(stored: [])
        var hook = Self.hook(.missing, registry: registry, dir: dir)
        hook.settings.defaultImage = "debian-bookworm"
        #expect(try await hook.resolveImage("node:20", credentials: nil) == Self.digest)
        hook.settings.imagePull = .never
        let error = await #expect(throws: RunnerError.self) { try await hook.resolveImage("node:20", credentials: nil) }
        #expect(error?.input == "node:20")
    }

    /// A store that cannot be asked (no helper): the error names the reference, why it is not
    /// local, and what failed.
    @Test func aFailedLookupNamesTheReference() async throws {
        let dir = try TemporaryDirectory("pull-policy")
        defer { dir.remove() }
        let hook = Self.hook(.missing, registry: FakeRegistry(stored: [], failing: true), dir: dir)
        let error = await #expect(throws: RunnerError.self) {
            try await hook.resolveImage("nope/unknown:1", credentials: nil)
        }
        #expect(error?.input == "nope/unknown:1")
        #expect(error?.problem.contains("not available on this runner") == true)
        #expect(error?.problem.contains("could not start") == true)
        #expect(error?.fix == "install it")
    }

    /// The helper tells the hook the policy (`ci-nspawn-run settings`): it survives the JSON.
    @Test func theSettingsCarryThePolicy() throws {
        let config = try #require(
            RunnerConfig.check(Array("RUNNER_IMAGE_PULL=never\n".utf8), source: "t", options: .syntax).0)
        let settings = HookSettings(config, layout: HostLayout(root: "/"))
        #expect(settings.imagePull == .never)
        let decoded = try JSONDecoder().decode(HookSettings.self, from: try JSONEncoder().encode(settings))
        #expect(decoded.imagePull == .never)
        #expect(try JSONDecoder().decode(HookSettings.self, from: Data("{}".utf8)).imagePull == .missing)
    }
}
