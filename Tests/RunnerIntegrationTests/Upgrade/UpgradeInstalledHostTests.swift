import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// Upgrade, rollback and the pinned runner on a host the real installer made (``InstallHarness``:
/// a real user, the runner package from a fake GitHub on 127.0.0.1, bundles from the real
/// `runner-build bundle`); systemctl is recorded.
@Suite(
    .serialized, .requiresRoot, .requires("useradd"), .requires("visudo"), .requires("python3"), .requires("curl"),
    .enabled(if: access(InstallHarness.runnerBuildBinary, X_OK) == 0, "needs .build/debug/runner-build (swift build)"),
    .enabled(if: access(InstallHarness.agentBinary, X_OK) == 0, "needs .build/debug/runner-agent (swift build)")
)
struct UpgradeInstalledHostTests {
    /// `runner-build bundle --version VERSION … --runner-version 2.336.0 --runner-sha256 <the test tarball's>`.
    static func pinnedBundle(_ version: String, artefacts: InstallHarness.Artefacts) async throws
        -> (path: String, sha256: String)
    {
        let out = artefacts.directory + "/pinned-" + version
        let build = Command(
            InstallHarness.runnerBuildBinary,
            [
                "bundle", "--version", version, "--agent", artefacts.directory + "/runner-agent", "--out", out,
                "--source", Repo.root, "--runner-version", "2.336.0", "--runner-sha256",
                artefacts.tarballSHA256,
            ])
        let printed = try await SystemCommandRunner().output(build)
        let words = printed.split(whereSeparator: \.isWhitespace).map(String.init)
        try #require(words.count == 2, "\(printed)")
        return (words[1], words[0])
    }

    /// Defect 1: a config.env without RUNNER_VERSION (the user-data of the README) installs the
    /// runner the bundle pins; RUNNER_TARBALL_URL alone points at a mirror of it.
    @Test func installWithoutRunnerVersionUsesTheRunnerTheBundlePins() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            let config = String(decoding: try FilePaths.read(h.layout.configFile), as: UTF8.self)
                .split(separator: "\n").filter {
                    !$0.hasPrefix("RUNNER_VERSION=") && !$0.hasPrefix("RUNNER_TARBALL_SHA256=")
                }
                .joined(separator: "\n")
            try AtomicFile.write(config + "\n", to: h.layout.configFile, mode: 0o600)
            let bundle = try await Self.pinnedBundle("v1.2.0", artefacts: artefacts)
            let install = Command(InstallHarness.agentBinary, ["install", "--root", h.root, "--bundle", bundle.path])
            let result = try await SystemCommandRunner().run(install)
            #expect(result.status == .exited(0), "\(result.standardOutput)\n\(result.standardError)")
            #expect(result.standardOutput.contains("runner-package: done (GitHub runner 2.336.0 in"))
            let marker = String(decoding: try FilePaths.read(h.layout.installedMarker), as: UTF8.self)
            #expect(marker == "release=v1.2.0\nrunner=2.336.0\n")
            // Without the pin, the same config.env is refused with a configuration error (exit 78).
            let unpinned = Command(
                InstallHarness.agentBinary, ["install", "--root", h.root, "--bundle", artefacts.bundle, "--dry-run"])
            let refused = try await SystemCommandRunner().run(unpinned)
            #expect(refused.status == .exited(78))
            #expect(refused.standardError.contains("RUNNER_VERSION: is not set, and the release pins no GitHub runner"))
        }
    }

    @Test func upgradeAndRollbackOnAnInstalledHostLeaveItConverged() async throws {
        try await withTemporaryDirectory("artefacts") { dir in
            let artefacts = try await InstallHarness.makeArtefacts(in: dir.path)
            defer { artefacts.github.stop() }
            let h = try InstallHarness(artefacts: artefacts)
            defer { h.finish() }
            _ = try await h.install()
            let bundle = try await Self.pinnedBundle("v1.3.0", artefacts: artefacts)
            let commands = RecordingCommandRunner()
            commands.answer(
                when: { $0.arguments.first == "show" },
                with: CommandResult(
                    status: .exited(0), standardOutput: "ActiveState=active\nSubState=running\nNRestarts=0\n"))
            let lines = LogCapture()
            var timing = Upgrader.Timing()
            timing.settle = .zero
            let upgrader = Upgrader(
                layout: h.layout, config: try ConfigEnv.load(nil, layout: h.layout, for: .install),
                commandRunner: commands, logger: Logger(label: "test"), timing: timing
            ) { lines.append($0) }

            _ = try await upgrader.upgrade(bundle: bundle.path, sha256: bundle.sha256)
            #expect(SymbolicLink.target(h.layout.currentRelease) == "releases/v1.3.0")
            #expect(SymbolicLink.target(h.layout.previousRelease) == "releases/v1.2.0")
            #expect(
                String(decoding: try FilePaths.read(h.layout.installedMarker), as: UTF8.self)
                    == "release=v1.3.0\nrunner=2.336.0\n")
            // The installer, run again on the new current, finds nothing to do.
            let (after, afterLines) = try await h.install(bundle: false)
            #expect(after.values.allSatisfy { $0 == .alreadyDone }, "\(afterLines)")

            _ = try await upgrader.rollback()
            #expect(SymbolicLink.target(h.layout.currentRelease) == "releases/v1.2.0")
            #expect(SymbolicLink.target(h.layout.previousRelease) == "releases/v1.3.0")
            let (back, backLines) = try await h.install()
            #expect(back.values.allSatisfy { $0 == .alreadyDone }, "\(backLines)")
            #expect(
                commands.commands.map { FilePaths.basename($0.executable) } == [
                    "runner-agent", "systemctl", "systemctl", "systemctl", "systemctl",
                    "runner-agent", "systemctl", "systemctl", "systemctl", "systemctl",
                ])
        }
    }
}
