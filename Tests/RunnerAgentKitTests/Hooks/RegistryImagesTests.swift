import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Synchronization
import Testing

@testable import RunnerAgentKit

/// The hook's one seam to the registry client: `ci-nspawn-run pull`, credentials on stdin.
@Suite struct RegistryImagesTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    @Test func pullsThroughSudoWithNothingButTheVerbOnTheCommandLine() async throws {
        let runner = RecordingCommandRunner()
        runner.answer(
            "sudo",
            with: CommandResult(
                status: .exited(0),
                standardOutput: "{\"reference\":\"ghcr.io/o/i:1\",\"digest\":\"\(Self.digest)\",\"tree\":\"/t\"}\n",
                standardError: "resolving\nfetching 3 layers\n"))
        let images = HelperRegistryImages(helper: "/usr/local/bin/ci-nspawn-run", throughSudo: true, runner: runner)
        let lines = Mutex<[String]>([])
        let pulled = try await images.pull(
            "ghcr.io/o/i:1",
            credentials: JobRegistryCredentials(username: "octocat", password: Secret("s3cret"), serverUrl: "ghcr.io")
        ) { line in lines.withLock { $0.append(line) } }
        #expect(pulled == PulledRegistryImage(reference: "ghcr.io/o/i:1", digest: Self.digest, tree: "/t"))
        #expect(lines.withLock { $0 } == ["resolving", "fetching 3 layers"])
        #expect(runner.commands.map(\.argv) == [["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "pull"]])
        #expect(!runner.commands.map(\.description).joined().contains("s3cret"))
    }

    /// The store lookup: `pull --store-only`, the job's owner on stdin (it pins the image until
    /// the job ends); an empty answer means the store does not have it.
    @Test func lookupAsksTheStoreOnlyWithTheJobsOwner() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("sudo", with: CommandResult(status: .exited(0), standardOutput: ""))
        let images = HelperRegistryImages(
            helper: "/usr/local/bin/ci-nspawn-run", throughSudo: true, owner: 4242, runner: runner)
        #expect(try await images.lookup("ghcr.io/o/i:1") == nil)
        #expect(
            runner.commands.map(\.argv) == [
                ["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "pull", "--store-only"]
            ])
        #expect(runner.inputs.first == Array(#"{"ownerPID":4242,"reference":"ghcr.io/o/i:1"}"#.utf8) + [0x0a])

        let found = RecordingCommandRunner()
        found.answer(
            "ci-nspawn-run",
            with: CommandResult(
                status: .exited(0),
                standardOutput: "{\"reference\":\"ghcr.io/o/i:1\",\"digest\":\"\(Self.digest)\",\"tree\":\"/t\"}\n"))
        let cached = try await HelperRegistryImages(
            helper: "/usr/local/bin/ci-nspawn-run", throughSudo: false, owner: 4242, runner: found
        ).lookup("ghcr.io/o/i:1")
        #expect(cached?.digest == Self.digest)
        #expect(found.commands.map(\.argv) == [["/usr/local/bin/ci-nspawn-run", "pull", "--store-only"]])

        let failing = RecordingCommandRunner()
        failing.answer(
            "ci-nspawn-run", with: CommandResult(status: .exited(1), standardError: "sudo: a password is required\n"))
        let error = await #expect(throws: RunnerError.self) {
            _ = try await HelperRegistryImages(
                helper: "/usr/local/bin/ci-nspawn-run", throughSudo: false, runner: failing
            )
            .lookup("ghcr.io/o/i:1")
        }
        #expect(error?.input == "ghcr.io/o/i:1")
        #expect(error?.problem.contains("a password is required") == true)
    }

    @Test func theRequestCarriesTheCredentialsAndTheirDescriptionHidesThem() throws {
        let credentials = JobRegistryCredentials(username: "octocat", password: Secret("s3cret"), serverUrl: "ghcr.io")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = String(
            decoding: try encoder.encode(
                HelperRegistryImages.Request(reference: "ghcr.io/o/i:1", credentials: credentials)),
            as: UTF8.self)
        #expect(
            json
                == #"{"credentials":{"password":"s3cret","serverUrl":"ghcr.io","username":"octocat"},"reference":"ghcr.io/o/i:1"}"#
        )
        #expect(!"\(credentials)".contains("s3cret"))
    }

    @Test func aFailedPullCarriesTheRegistrysAnswer() async throws {
        let runner = RecordingCommandRunner()
        runner.answer(
            "ci-nspawn-run",
            with: CommandResult(
                status: .exited(1), standardError: "ghcr.io: 401 unauthorized: authentication required\n"))
        let images = HelperRegistryImages(helper: "/usr/local/bin/ci-nspawn-run", throughSudo: false, runner: runner)
        do {
            _ = try await images.pull("ghcr.io/o/private:1", credentials: nil) { _ in }
            Issue.record("expected a failure")
        } catch {
            #expect(error.input == "ghcr.io/o/private:1")
            #expect(error.problem.contains("401 unauthorized"))
        }
        // An answer that is not a pulled image (or names no digest) is refused too.
        let odd = RecordingCommandRunner()
        odd.answer("ci-nspawn-run", with: CommandResult(status: .exited(0), standardOutput: "{}\n"))
        await #expect(throws: RunnerError.self) {
            _ = try await HelperRegistryImages(helper: "/usr/local/bin/ci-nspawn-run", throughSudo: false, runner: odd)
                .pull("x", credentials: nil) { _ in }
        }
    }
}
