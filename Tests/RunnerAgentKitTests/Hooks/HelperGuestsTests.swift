import ArgumentParser
import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

/// The unprivileged hook's guests: every operation goes through `sudo -n ci-nspawn-run`.
@Suite struct HelperGuestsTests {
    @Test func helperGoesThroughSudo() {
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout())
        #expect(
            helper.sudo(["stop", "rg-0123456789ab"]).argv == [
                "sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "stop", "rg-0123456789ab",
            ])
    }

    /// cleanup_job stops all of a job's guests in one helper call (they shut down together).
    @Test func jobGuestsStopInOneHelperCall() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("sudo", with: CommandResult(status: .exited(0)))
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: runner)
        try await helper.stop(["rg-0123456789ab", "rg-00000000000a"])
        try await helper.stop([String]())
        #expect(
            runner.commands.map(\.argv) == [
                ["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "stop", "rg-0123456789ab", "rg-00000000000a"]
            ])
    }

    /// The sweep before a job asks the helper for a quick one (bridges only); the others for a
    /// full one, and `ci-nspawn-run gc` takes the flag.
    @Test func sweepBeforeAJobIsQuick() throws {
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout())
        #expect(
            helper.sweepCommand(owner: nil, network: .bridges).argv == [
                "sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "gc", "--quick",
            ])
        #expect(
            helper.sweepCommand(owner: 42, network: .full).argv == [
                "sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "gc", "--owner-pid", "42",
            ])
        #expect(try GuestGCCommand.parse(["--quick"]).quick)
        #expect(try !GuestGCCommand.parse([]).quick)
    }

    /// The unprivileged hook's settings come from `sudo -n ci-nspawn-run settings` (config.env is
    /// root's), as the JSON the helper prints.
    @Test func unprivilegedHookAsksTheHelperForItsSettings() async throws {
        var settings = HookSettings()
        settings.imageAliases = ["ubuntu:22.04": "debian-bookworm"]
        settings.mountAllow = ["/srv/cache"]
        settings.workDirectory = "/srv/work"
        let runner = RecordingCommandRunner()
        runner.answer(
            "sudo",
            with: CommandResult(
                status: .exited(0), standardOutput: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self))
        )
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: runner)
        #expect(try await helper.settings() == settings)
        #expect(runner.commands.map(\.argv) == [["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "settings"]])

        let refused = RecordingCommandRunner()
        refused.answer("sudo", with: CommandResult(status: .exited(1), standardError: "sudo: a password is required"))
        await #expect(throws: RunnerError.self) {
            try await HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: refused)
                .settings()
        }
    }
}
