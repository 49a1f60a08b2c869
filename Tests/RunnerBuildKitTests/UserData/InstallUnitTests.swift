import RunnerCore
import RunnerTestSupport
import Testing

/// `cloud-init/runner-install.service`.
@Suite struct InstallUnitTests {
    @Test func retriesForeverAfterTheNetwork() throws {
        let lines = try Repo.text("cloud-init/runner-install.service").split(separator: "\n").map(String.init)
        for expected in [
            "Wants=network-online.target", "After=network-online.target", "StartLimitIntervalSec=0", "Type=oneshot",
            "EnvironmentFile=/etc/runner/config.env", "ExecStart=/usr/local/lib/runner/bootstrap.sh",
            "Restart=on-failure", "WantedBy=multi-user.target",
        ] {
            #expect(lines.contains(expected), "\(expected)")
        }
        #expect(lines.contains { $0.hasPrefix("RestartSec=") && $0 != "RestartSec=0" })
    }

    /// Issue #12, defect 1: a configuration error (exit 78, EX_CONFIG) is not retried every 30 s
    /// forever; the unit says why in a comment.
    @Test func aConfigurationErrorIsNotRetried() throws {
        let text = try Repo.text("cloud-init/runner-install.service")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("RestartPreventExitStatus=") } == ["RestartPreventExitStatus=78"])
        let service = try #require(lines.firstIndex(of: "[Service]"))
        let prevent = try #require(lines.firstIndex(of: "RestartPreventExitStatus=78"))
        #expect(service < prevent)
        #expect(lines[prevent - 1].hasPrefix("#") && text.contains("# Exit 78 (EX_CONFIG) is a configuration error"))
        // bootstrap.sh execs the installer, so the installer's 78 reaches systemd.
        let bootstrap = try Repo.text("cloud-init/bootstrap.sh")
        #expect(bootstrap.contains("exec \"$agent\" install --bundle \"$bundle\""))
        #expect(bootstrap.contains("exit 78"))
    }

    /// `systemd-analyze verify` in a throwaway root holding the unit, bootstrap.sh and the
    /// system's own units (it needs sysinit.target and friends to resolve dependencies).
    func verify(_ unit: String) async throws -> CommandResult {
        try await withTemporaryDirectory("unit") { dir in
            let layout = dir.layout
            try AtomicFile.write(unit, to: layout.systemdUnitDirectory + "/runner-install.service")
            try AtomicFile.write(
                FilePaths.read(Repo.cloudInit("bootstrap.sh")), to: layout.bootstrapScript, mode: 0o755)
            try AtomicFile.write("", to: layout.configFile, mode: 0o600)
            try FilePaths.createDirectory(layout.path("/usr/lib/systemd"))
            let copy = try await runTool("cp", ["-a", "/usr/lib/systemd/system", layout.path("/usr/lib/systemd/")])
            try copy.checked(Command("cp"))
            let result = try await runTool(
                "systemd-analyze",
                ["verify", "--root=\(dir.path)", layout.systemdUnitDirectory + "/runner-install.service"])
            // The copied unit tree has symlinks to /dev/null; rm removes it whole.
            _ = try await runTool("rm", ["-rf", dir.path])
            return result
        }
    }

    @Test(
        .requires("systemd-analyze"),
        .enabled(if: FilePaths.exists("/usr/lib/systemd/system/sysinit.target"), "needs systemd's units installed"))
    func cleanUnderSystemdAnalyzeVerify() async throws {
        let unit = try Repo.text("cloud-init/runner-install.service")
        let result = try await verify(unit)
        #expect(result.status.isSuccess)
        #expect(result.standardError.isEmpty, "\(result.standardError)")
        // The check is live: a typo is reported.
        let typo = try await verify(unit.replacing("RestartSec=", with: "RestartSecs="))
        #expect(typo.standardError.contains("Unknown key 'RestartSecs'"))
    }
}
