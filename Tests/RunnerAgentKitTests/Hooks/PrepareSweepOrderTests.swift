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

/// `prepare_job` sweeps what killed jobs left while it finds the job's images, and the sweep
/// is over before the first guest starts: a sweep still running then could take the new job's
/// bridge for a killed job's.
@Suite struct PrepareSweepOrderTests {
    /// Guests that record what the hook asked, in order; the sweep takes a while.
    final class SlowSweepGuests: GuestOperations {
        let events = Mutex<[String]>([])

        func record(_ event: String) { events.withLock { $0.append(event) } }

        func start(_ request: GuestStartRequest) async throws(RunnerError) -> GuestInfo {
            record("start")
            throw RunnerError(.commandFailed, input: "guest", problem: "not started in this test")
        }
        func exec(_ name: String, command: [String], environment: [String: String], workingDirectory: String?)
            async throws(RunnerError) -> RunnerCore.ExitStatus
        { .exited(0) }
        func stop(_ name: String) async throws(RunnerError) { record("stop \(name)") }
        func stop(_ names: [String]) async throws(RunnerError) { record("stop \(names)") }
        func probe(_ name: String, command: [String], timeout: Double) async throws(RunnerError) -> CommandResult {
            CommandResult(status: .exited(0), standardOutput: "", standardError: "")
        }
        func sweep(owner: Int32?, network: NetworkSweep) async {
            record("sweep \(network)")
            try? await Task.sleep(for: .milliseconds(300))
            record("swept")
        }
        func log(_ name: String, lines: Int) async -> String { "" }
    }

    /// A content store holding every reference; its lookups go into the guests' record.
    struct RecordingRegistry: RegistryImages {
        let guests: SlowSweepGuests

        func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? {
            guests.record("lookup \(reference)")
            return PulledRegistryImage(reference: reference, digest: "sha256:" + String(repeating: "ab", count: 32))
        }

        func pull(
            _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
        ) async throws(RunnerError) -> PulledRegistryImage {
            throw RunnerError(.notFound, input: reference, problem: "is not pulled in this test")
        }
    }

    @Test func theSweepRunsWhileImagesAreFoundAndEndsBeforeAGuestStarts() async throws {
        let dir = try TemporaryDirectory("prepare-sweep")
        defer { dir.remove() }
        let guests = SlowSweepGuests()
        let registry = RecordingRegistry(guests: guests)
        let policy = GuestPolicy(layout: dir.layout)
        let hook = ContainerHook(
            settings: HookSettings(), policy: policy, guests: guests, logger: Logger(label: "test"),
            ownerPID: getpid(), registry: registry)
        let line =
            #"{"command":"prepare_job","responseFile":"\#(dir.path)/response.json","state":null,"args":"#
            + #"{"services":[],"container":{"image":"ghcr.io/o/cached:1","entryPointArgs":[],"#
            + #""environmentVariables":{},"portMappings":[],"systemMountVolumes":[],"userMountVolumes":[]}}}"#
        #expect(await hook.run(stdin: Array((line + "\n").utf8)) != 0)
        let events = guests.events.withLock { $0 }
        #expect(events.contains("sweep bridges"))
        // The image is found while the sweep runs; the guest starts only once it is over.
        let lookup = try #require(events.firstIndex(of: "lookup ghcr.io/o/cached:1"))
        let swept = try #require(events.firstIndex(of: "swept"))
        let start = try #require(events.firstIndex(of: "start"))
        #expect(lookup < swept)
        #expect(swept < start)
    }
}
