import ArgumentParser
import FoundationEssentials
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent upgrade` and `rollback` on a host in a temporary root (``UpgradeHost``), with
/// systemctl recorded: what switches, what is kept, the order of the service commands, and
/// that every failure leaves the old release current and running.
@Suite struct UpgradeTests {
    static let stop = ["systemctl", "stop", "--", "runner.service"]
    static let reload = ["systemctl", "daemon-reload"]
    static let start = ["systemctl", "start", "--", "runner.service"]
    static let show = [
        "systemctl", "show", "--property=ActiveState", "--property=SubState", "--property=NRestarts", "--",
        "runner.service",
    ]

    static func version(_ release: String) -> [String] {
        ["/usr/local/lib/runner/releases/\(release)/bin/runner-agent", "--version"]
    }

    @Test func anUpgradeSwitchesCurrentKeepsPreviousAndRestartsTheServiceInOrder() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        #expect(host.current == "releases/v1.2.0")
        #expect(host.previous == nil)
        let bundle = try host.bundle("v1.3.0")

        let outcome = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256.uppercased())

        #expect(outcome == Upgrader.Outcome(from: "v1.2.0", to: "v1.3.0", previous: "v1.2.0", pruned: []))
        #expect(host.current == "releases/v1.3.0")
        #expect(host.previous == "releases/v1.2.0")
        #expect(host.hostFilesRelease == "v1.3.0", "host-files ran for the new release")
        #expect(host.marker == "release=v1.3.0\nrunner=2.336.0\n")
        // The new agent is run before anything stops; the drain comes before the switch, the
        // start after it, and the service is checked last.
        #expect(host.argv == [Self.version("v1.3.0"), Self.stop, Self.reload, Self.start, Self.show])
        #expect(host.lines.all.contains { $0.hasPrefix("[1/2] host-files: done") }, "\(host.lines.all)")
        #expect(host.lines.all.last == "upgrade: v1.2.0 → v1.3.0; runner.service is active; previous: v1.2.0")
        // The release links are what the installer's own checks expect.
        let installer = try host.upgrader().installer(for: "v1.3.0")
        #expect(try await installer.hostFilesStep.isDone())
        #expect(try await installer.releaseStep.isDone())
    }

    @Test func aSecondUpgradeKeepsOnlyCurrentAndPrevious() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        for release in ["v1.3.0", "v1.4.0"] {
            let bundle = try host.bundle(release)
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(host.current == "releases/v1.4.0")
        #expect(host.previous == "releases/v1.3.0")
        #expect(FilePaths.entries(of: host.layout.releasesDirectory) == ["v1.3.0", "v1.4.0"])
        #expect(host.lines.all.contains("prune: removed v1.2.0"))
    }

    @Test func theReleaseThatRunsAlreadyIsNoChange() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let before = try host.tree()
        let bundle = try host.bundle("v1.2.0")
        let outcome = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        #expect(outcome.from == "v1.2.0" && outcome.to == "v1.2.0")
        #expect(host.argv.isEmpty)
        #expect(try host.tree() == before)
    }

    @Test func aBadDigestChangesNothing() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        let before = try host.tree()
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: String(repeating: "0", count: 64))
        }
        #expect(error?.code == .integrity)
        #expect(error?.problem.contains("expected 0000") == true)
        #expect(try host.tree() == before)
        #expect(host.argv.isEmpty, "nothing stopped, nothing run")
    }

    @Test func anUnpackErrorChangesNothing() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        // The file's digest is right; a bundled file differs from what its manifest says.
        var fixture = BundleFixture()
        fixture.version = "v1.3.0"
        fixture.altered = ["runner.service": "[Unit]\nDescription=runnex\n"]
        let tampered = host.directory.appending("tampered.tar.gz")
        try fixture.write(to: tampered)
        let before = try host.tree()
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: tampered, sha256: try SHA256Digest.hex(ofFile: tampered))
        }
        #expect(error?.code == .integrity)
        #expect(try host.tree() == before, "no release directory, no staging leftovers, links as they were")
        #expect(host.argv.isEmpty)
    }

    @Test func aNewAgentThatDoesNotRunLeavesTheOldReleaseRunning() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        host.commands.answer(
            when: { $0.executable.hasSuffix("/releases/v1.3.0/bin/runner-agent") },
            with: CommandResult(status: .exited(126), standardError: "cannot execute binary file: Exec format error\n"))
        let bundle = try host.bundle("v1.3.0")
        let before = try host.tree()
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.code == .commandFailed)
        #expect(error?.problem.contains("Exec format error") == true)
        #expect(error?.fix?.contains("v1.2.0 still runs") == true)
        #expect(try host.tree() == before, "the unpacked release is removed again")
        #expect(host.argv == [Self.version("v1.3.0")], "runner.service was never stopped")
    }

    @Test func aServiceThatDoesNotComeUpIsRolledBack() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let before = try host.tree()
        host.serviceComesUp(except: ["v1.3.0"])
        let bundle = try host.bundle("v1.3.0")
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.code == .timeout)
        #expect(error?.problem.contains("is failed (failed) after its start (release v1.3.0)") == true)
        #expect(error?.problem.contains("v1.2.0 runs again, v1.3.0 is not current") == true)
        #expect(host.current == "releases/v1.2.0")
        #expect(host.previous == nil)
        #expect(host.hostFilesRelease == "v1.2.0")
        #expect(host.marker == "release=v1.2.0\nrunner=2.336.0\n")
        #expect(try host.tree() == before, "the host is as it was, the failed release removed")
        #expect(
            host.argv == [
                Self.version("v1.3.0"), Self.stop, Self.reload, Self.start, Self.show,
                Self.stop, Self.reload, Self.start, Self.show,
            ])
    }

    @Test func aServiceThatFailsToStartIsRolledBackAndAFailedReturnSaysSo() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        host.commands.answer(
            when: { $0.arguments.first == "start" },
            with: CommandResult(status: .exited(1), standardError: "Job for runner.service failed.\n"))
        let bundle = try host.bundle("v1.3.0")
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.problem.contains("returning to v1.2.0 failed too") == true)
        #expect(error?.fix?.contains("runner-agent install") == true)
        #expect(host.current == "releases/v1.2.0", "the links are back even when the old release did not start")
    }

    /// The old release pins no runner and config.env no longer names one: it cannot be
    /// converged again, but the links still go back to it, and the error says what happened.
    @Test func theLinksGoBackEvenToAReleaseConfigEnvNoLongerSuits() async throws {
        let sha = try Self.sha("2.336.0")
        let host = try UpgradeHost(config: "RUNNER_VERSION=2.336.0\nRUNNER_TARBALL_SHA256=\(sha)\n")
        defer { host.finish() }
        try await host.install("v1.2.0", runner: nil)
        try AtomicFile.write(
            "RUNNER_GITHUB_URL=https://github.com/acme\n", to: host.layout.configFile, mode: 0o600)
        host.serviceComesUp(except: ["v1.3.0"])
        let bundle = try host.bundle("v1.3.0")
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.problem.contains("returning to v1.2.0 failed too: RUNNER_VERSION: is not set") == true)
        #expect(host.current == "releases/v1.2.0")
        #expect(host.previous == nil)
    }

    @Test func rollbackReturnsToThePreviousReleaseAndKeepsTheOneItLeft() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        let recorded = host.argv.count

        let outcome = try await host.upgrader().rollback()

        #expect(outcome == Upgrader.Outcome(from: "v1.3.0", to: "v1.2.0", previous: "v1.3.0", pruned: []))
        #expect(host.current == "releases/v1.2.0")
        #expect(host.previous == "releases/v1.3.0")
        #expect(host.hostFilesRelease == "v1.2.0")
        #expect(host.marker == "release=v1.2.0\nrunner=2.336.0\n")
        #expect(
            Array(host.argv.dropFirst(recorded)) == [
                Self.version("v1.2.0"), Self.stop, Self.reload, Self.start, Self.show,
            ])
        // And forward again.
        _ = try await host.upgrader().rollback()
        #expect(host.current == "releases/v1.3.0")
        #expect(host.previous == "releases/v1.2.0")
    }

    @Test func rollbackWithoutAPreviousReleaseFailsAndChangesNothing() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let before = try host.tree()
        let error = await #expect(throws: RunnerError.self) { _ = try await host.upgrader().rollback() }
        #expect(error?.code == .notFound)
        #expect(error?.input.hasSuffix("/usr/local/lib/runner/previous") == true)
        #expect(try host.tree() == before)
        #expect(host.argv.isEmpty)
    }

    @Test func aFailedRollbackReturnsToTheReleaseItLeft() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        host.serviceComesUp(except: ["v1.2.0"])
        let error = await #expect(throws: RunnerError.self) { _ = try await host.upgrader().rollback() }
        #expect(error?.problem.contains("v1.3.0 runs again") == true, "\(String(describing: error))")
        #expect(host.current == "releases/v1.3.0")
        #expect(host.previous == "releases/v1.2.0")
        #expect(host.hostFilesRelease == "v1.3.0")
    }

    @Test func aReleaseThatPinsAnotherRunnerReplacesThePackageAndRollbackRestoresIt() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let stamp = host.layout.runnerDirectory + "/.runner-package-sha256"
        #expect(try FilePaths.read(stamp) == Array(((host.tarballs["2.336.0"] ?? "") + "\n").utf8))
        let bundle = try host.bundle("v1.3.0", runner: "2.337.0")
        _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        #expect(try FilePaths.read(stamp) == Array(((host.tarballs["2.337.0"] ?? "") + "\n").utf8))
        #expect(
            try FilePaths.read(host.layout.runnerDirectory + "/run.sh") == Array("#!/bin/sh\n# runner 2.337.0\n".utf8))
        #expect(host.marker == "release=v1.3.0\nrunner=2.337.0\n")
        #expect(host.lines.all.contains("fetch: GitHub runner 2.337.0, which v1.3.0 pins"))
        _ = try await host.upgrader().rollback()
        #expect(try FilePaths.read(stamp) == Array(((host.tarballs["2.336.0"] ?? "") + "\n").utf8))
        #expect(host.marker == "release=v1.2.0\nrunner=2.336.0\n")
    }

    @Test func aVersionInConfigEnvOverridesThePinAcrossTheUpgrade() async throws {
        let host = try UpgradeHost(
            config: "RUNNER_VERSION=2.337.0\nRUNNER_TARBALL_SHA256=\(try Self.sha("2.337.0"))\n")
        defer { host.finish() }
        try await host.install("v1.2.0")
        #expect(host.marker == "release=v1.2.0\nrunner=2.337.0\n")
        let bundle = try host.bundle("v1.3.0", runner: "2.336.0")
        _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        #expect(host.marker == "release=v1.3.0\nrunner=2.337.0\n")
    }

    /// The sha256 of the fake runner tarball of `version` (the same bytes in every host).
    static func sha(_ version: String) throws -> String {
        let host = try UpgradeHost()
        defer { host.finish() }
        return try #require(host.tarballs[version])
    }

    @Test func aBundleURLIsDownloadedIntoTheCacheThroughCurl() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        let url = "https://releases.example.com/v1.3.0/runner-bundle-v1.3.0-linux-x86_64.tar.gz?download=1"
        let runner = DownloadingCommandRunner(recording: host.commands, files: [url: bundle.path])
        _ = try await host.upgrader(commandRunner: runner).upgrade(bundle: url, sha256: bundle.sha256)
        #expect(host.current == "releases/v1.3.0")
        let cached = host.layout.cacheDirectory + "/runner-bundle-v1.3.0-linux-x86_64.tar.gz"
        #expect(try SHA256Digest.hex(ofFile: cached) == bundle.sha256)
        let curl = try #require(host.commands.commands.first)
        #expect(curl.executable == "curl")
        #expect(curl.arguments.suffix(2) == ["--url", url])
        #expect(FilePaths.parent(of: curl.arguments[curl.arguments.count - 3]) == host.layout.cacheDirectory)
        #expect(
            Array(host.argv.dropFirst()) == [Self.version("v1.3.0"), Self.stop, Self.reload, Self.start, Self.show])
    }

    @Test func aDownloadWithAnotherDigestChangesNothing() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        let url = "https://releases.example.com/runner-bundle-v1.3.0-linux-x86_64.tar.gz"
        let runner = DownloadingCommandRunner(recording: host.commands, files: [url: bundle.path])
        let before = try host.tree()
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader(commandRunner: runner).upgrade(
                bundle: url, sha256: String(repeating: "a", count: 64))
        }
        #expect(error?.code == .integrity)
        #expect(try host.tree() == before, "the download is not kept")
        #expect(host.argv.count == 1, "curl only")
    }

    @Test func aHostThatIsNotInstalledIsRefused() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        let bundle = try host.bundle("v1.3.0")
        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.code == .notFound)
        #expect(error?.fix?.contains("runner-agent install") == true)
        #expect(host.argv.isEmpty)
    }

    @Test(arguments: [
        (
            "https://x/releases/download/v1.3/runner-bundle-v1.3-linux-x86_64.tar.gz",
            "runner-bundle-v1.3-linux-x86_64.tar.gz"
        ),
        ("https://x/get?file=a.tar.gz", "get"),
        ("https://x/dir/", "runner-bundle-download.tar.gz"),
        ("https://x/.hidden", "runner-bundle-download.tar.gz"),
        ("https://x/a%2F..%2Fb", "runner-bundle-download.tar.gz"),
    ])
    func cacheNamesOfBundleURLs(url: String, name: String) {
        #expect(Upgrader.cacheName(for: url) == name)
    }

    @Test func theCommandsParseTheirOptions() throws {
        let hex = String(repeating: "a", count: 64)
        let upgrade = try #require(
            try RunnerAgentCommand.parseAsRoot(["upgrade", "--bundle", "b.tar.gz", "--sha256", hex]) as? UpgradeCommand)
        #expect(upgrade.bundle == "b.tar.gz" && upgrade.sha256 == hex && upgrade.startTimeout == 90)
        #expect(throws: (any Error).self) { try RunnerAgentCommand.parseAsRoot(["upgrade", "--bundle", "b"]) }
        #expect(throws: (any Error).self) {
            try RunnerAgentCommand.parseAsRoot(["upgrade", "--bundle", "b", "--sha256", "abc"])
        }
        #expect(try RunnerAgentCommand.parseAsRoot(["rollback"]) is RollbackCommand)
        #expect(throws: (any Error).self) { try RunnerAgentCommand.parseAsRoot(["rollback", "--start-timeout", "0"]) }
    }

    /// An upgrade or rollback while another admin command holds the host (here: an install)
    /// fails at once, naming it, and changes nothing; once that one ends, the upgrade runs.
    @Test func anUpgradeOrRollbackWaitsForNoOtherAdminCommand() async throws {
        let host = try UpgradeHost()
        defer { host.finish() }
        try await host.install("v1.2.0")
        let bundle = try host.bundle("v1.3.0")
        var install: AdminLock? = try AdminLock.acquire("install", layout: host.layout)

        let error = await #expect(throws: RunnerError.self) {
            _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        }
        #expect(error?.code == .busy)
        #expect("\(error.map { "\($0)" } ?? "")".contains("runner-agent install (PID \(getpid()))"))
        #expect(host.current == "releases/v1.2.0")
        let rollback = await #expect(throws: RunnerError.self) { _ = try await host.upgrader().rollback() }
        #expect(rollback?.code == .busy)

        withExtendedLifetime(install) {}
        install = nil
        _ = try await host.upgrader().upgrade(bundle: bundle.path, sha256: bundle.sha256)
        #expect(host.current == "releases/v1.3.0")
    }

    /// A released lock is free at once, even while a copy of its descriptor lives on: a child
    /// another thread started holds one until its exec (here a `dup` stands in for it). Before,
    /// a rollback right after an upgrade could fail as busy while tests spawned beside it.
    @Test func aReleasedAdminLockIsFreeWhileACopyOfItsDescriptorLives() throws {
        let dir = try TemporaryDirectory("admin-lock")
        defer { dir.remove() }
        let layout = HostLayout(root: dir.path)
        var lock: AdminLock? = try AdminLock.acquire("upgrade", layout: layout)
        let copy = dup(lock?.fd ?? -1)
        #expect(copy >= 0)
        defer { close(copy) }
        withExtendedLifetime(lock) {}
        lock = nil
        #expect(throws: Never.self) { _ = try AdminLock.acquire("rollback", layout: layout) }
    }
}
