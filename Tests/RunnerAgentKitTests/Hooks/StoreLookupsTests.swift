import ArgumentParser
import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

/// The runner user's `prepare_job` gets the content store's answers for its images with its
/// settings (`ci-nspawn-run settings --lookup-stdin`): one helper call, not one more per image.
@Suite struct StoreLookupsTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    /// A registry that records what reaches it.
    final class CountingRegistry: RegistryImages {
        let calls = Mutex<[String]>([])

        func lookup(_ reference: String) async throws(RunnerError) -> PulledRegistryImage? {
            calls.withLock { $0.append("lookup \(reference)") }
            return nil
        }

        func pull(
            _ reference: String, credentials: JobRegistryCredentials?, progress: @Sendable (String) -> Void
        ) async throws(RunnerError) -> PulledRegistryImage {
            calls.withLock { $0.append("pull \(reference)") }
            return PulledRegistryImage(reference: reference, digest: StoreLookupsTests.digest)
        }
    }

    /// An answered reference (found or not) never reaches the helper again; an unanswered one
    /// and every pull do.
    @Test func answeredReferencesAreNotAskedAgain() async throws {
        let base = CountingRegistry()
        let found = PulledRegistryImage(reference: "docker.io/library/node:20", digest: Self.digest, tree: "/t")
        let registry = PrefetchedRegistryImages(
            [StoreLookup(reference: "node:20", image: found), StoreLookup(reference: "alpine:3.20", image: nil)],
            base: base)
        #expect(try await registry.lookup("node:20") == found)
        #expect(try await registry.lookup("alpine:3.20") == nil)
        #expect(try await registry.lookup("postgres:16") == nil)
        _ = try await registry.pull("alpine:3.20", credentials: nil) { _ in }
        #expect(base.calls.withLock { $0 } == ["lookup postgres:16", "pull alpine:3.20"])
    }

    /// `sudo -n ci-nspawn-run settings --lookup-stdin` with the references and the owner on
    /// stdin (never on the command line); an answer for a reference not asked about, or an
    /// image without a manifest digest, is dropped.
    @Test func theSettingsCallCarriesTheLookups() async throws {
        var settings = HookSettings()
        settings.imageAliases = ["ubuntu:22.04": "debian-bookworm"]
        let answer = SettingsLookupAnswer(
            settings: settings,
            lookups: [
                StoreLookup(reference: "node:20", image: PulledRegistryImage(reference: "node", digest: Self.digest)),
                StoreLookup(reference: "alpine:3.20", image: nil),
                StoreLookup(reference: "evil:1", image: PulledRegistryImage(reference: "evil", digest: Self.digest)),
                StoreLookup(reference: "redis:7", image: PulledRegistryImage(reference: "redis", digest: "../../x")),
            ])
        let runner = RecordingCommandRunner()
        runner.answer(
            "sudo",
            with: CommandResult(
                status: .exited(0), standardOutput: String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)))
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: runner)
        let got = try await helper.settings(lookingUp: ["node:20", "alpine:3.20", "redis:7"], owner: 4242)
        #expect(got.settings == settings)
        #expect(got.lookups.map(\.reference) == ["node:20", "alpine:3.20"])
        #expect(
            runner.commands.map(\.argv) == [
                ["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "settings", "--lookup-stdin"]
            ])
        let sent = try JSONDecoder().decode(
            SettingsLookupRequest.self, from: Data(try #require(runner.inputs.first ?? nil)))
        #expect(sent == SettingsLookupRequest(references: ["node:20", "alpine:3.20", "redis:7"], ownerPID: 4242))
        #expect(try GuestSettingsCommand.parse(["--lookup-stdin"]).lookupStdin)
        #expect(try !GuestSettingsCommand.parse([]).lookupStdin)
    }

    /// The job's container and service images, as the registry path looks them up, once each;
    /// nothing for a job without images.
    @Test func theJobsReferences() throws {
        let json = """
            {"command":"prepare_job","responseFile":"/r","state":null,"args":{"container":{"image":"docker://node:20"},\
            "services":[{"image":"postgres:16"},{"image":"node:20"},{"image":"bad ref"},{"image":""}]}}
            """
        #expect(HookProcess.registryReferences(try HookInput.decode(Array(json.utf8))) == ["node:20", "postgres:16"])
        let none = #"{"command":"prepare_job","responseFile":"/r","state":null,"args":{"services":[]}}"#
        #expect(HookProcess.registryReferences(try HookInput.decode(Array(none.utf8))).isEmpty)
    }
}
