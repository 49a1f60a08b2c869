import Foundation
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit

extension GuestSuites {
    /// Our user-data booted for real: a guest with cloud-init (images/cloud-init-test) booted with
    /// `systemd-nspawn -b` and a NoCloud seed holding the rendered user-data; and systemd itself
    /// reading every tricky EnvironmentFile case of the parser's table.
    /// (One of the guest suites: the cloud-init boot needs a machine not busy booting other guests.)
    @Suite(
        .serialized, .requiresRoot, .requires("systemd-nspawn"), .requires("mmdebstrap"), .requires("nsenter"),
        .enabled(if: FilePaths.exists("/usr/bin/python3"), "needs /usr/bin/python3 for the HTTP server"))
    struct GuestBootTests {
        @Test(.timeLimit(.minutes(10)))
        func userDataInstallsConfigAndRunsBootstrapAndSystemdReadsEnvFilesAsWeDo() async throws {
            let tree = try await GuestTree.cloudInitTest()
            try await withTemporaryDirectory("guest") { dir in
                let server = try await TestHTTPServer(directory: dir.appending("server"))
                defer { server.stop() }
                let bundle = try await makeStubBundle(in: dir.path)
                try server.serve(bundle, at: "dl/bundle.tar.gz")

                // The user-data: a real render of a site config pointing at the local server.
                let site = """
                    RUNNER_GITHUB_URL=https://github.com/acme/widgets
                    RUNNER_REGISTRATION_TOKEN=GUEST-TEST-TOKEN
                    RUNNER_BUNDLE_URL=\(server.baseURL)/dl/bundle.tar.gz
                    RUNNER_LABELS="linux, nspawn"

                    """
                let config = try RunnerConfig.parse(Array(site.utf8), source: "site.env", options: .render)
                let userData = try UserData.render(
                    .init(
                        config: config, ref: "v1.2", bundleSHA256: SHA256Digest.hex(of: bundle),
                        unit: Repo.text("cloud-init/runner-install.service"),
                        bootstrap: Repo.text("cloud-init/bootstrap.sh"), gzip: true))
                // The first two downloads fail: systemd must restart the unit until it succeeds.
                // (A drop-in shortens RestartSec from 30 s to 1 s; everything else is the real unit.)
                try server.failNext(2)
                let dropIn = dir.appending("dropin")
                try AtomicFile.write("[Service]\nRestartSec=1\n", to: dropIn + "/10-test-fast-restart.conf")
                let seed = dir.appending("seed")
                try AtomicFile.write(userData.bytes, to: seed + "/user-data", mode: 0o600)
                try AtomicFile.write(
                    "instance-id: runner-test-0001\nlocal-hostname: runner-test\n", to: seed + "/meta-data")

                // Every case of the parser's table, as a file systemd will read.
                let cases = dir.appending("envcases")
                for (index, testCase) in EnvironmentFileCase.all.enumerated() {
                    try AtomicFile.write(testCase.bytes, to: "\(cases)/\(index).env")
                }

                let guest = try await BootedGuest.boot(
                    tree,
                    binds: [
                        "\(seed):/var/lib/cloud/seed/nocloud", "\(cases):/run/envcases",
                        "\(dropIn):/etc/systemd/system/runner-install.service.d",
                    ],
                    log: dir.appending("console.log"))
                do {
                    try await checkUserData(guest, server: server)
                    try await checkEnvironmentFiles(guest)
                } catch {
                    await guest.stop()
                    throw error
                }
                await guest.stop()
            }
        }

        /// Issue #12, defect 1, under real systemd: the installer's configuration error (exit 78)
        /// leaves runner-install.service failed, not restarted (RestartSec shortened to 1 s so a
        /// retry would show within the wait).
        @Test(.timeLimit(.minutes(10)))
        func aConfigurationErrorOfTheInstallerIsNotRetried() async throws {
            let tree = try await GuestTree.cloudInitTest()
            try await withTemporaryDirectory("guest78") { dir in
                let server = try await TestHTTPServer(directory: dir.appending("server"))
                defer { server.stop() }
                let bundle = try await makeStubBundle(in: dir.path, exitStatus: 78)
                try server.serve(bundle, at: "dl/bundle.tar.gz")
                let site = """
                    RUNNER_GITHUB_URL=https://github.com/acme/widgets
                    RUNNER_REGISTRATION_TOKEN=GUEST-TEST-TOKEN
                    RUNNER_BUNDLE_URL=\(server.baseURL)/dl/bundle.tar.gz

                    """
                let config = try RunnerConfig.parse(Array(site.utf8), source: "site.env", options: .render)
                let userData = try UserData.render(
                    .init(
                        config: config, ref: "v1.2", bundleSHA256: SHA256Digest.hex(of: bundle),
                        unit: Repo.text("cloud-init/runner-install.service"),
                        bootstrap: Repo.text("cloud-init/bootstrap.sh"), gzip: true))
                let dropIn = dir.appending("dropin")
                try AtomicFile.write("[Service]\nRestartSec=1\n", to: dropIn + "/10-test-fast-restart.conf")
                let seed = dir.appending("seed")
                try AtomicFile.write(userData.bytes, to: seed + "/user-data", mode: 0o600)
                try AtomicFile.write(
                    "instance-id: runner-test-0078\nlocal-hostname: runner-test\n", to: seed + "/meta-data")
                let guest = try await BootedGuest.boot(
                    tree,
                    binds: [
                        "\(seed):/var/lib/cloud/seed/nocloud", "\(dropIn):/etc/systemd/system/runner-install.service.d",
                    ],
                    log: dir.appending("console.log"))
                do {
                    // The doctor's argv (Systemctl.show), run by the guest's systemctl.
                    let show = [
                        "systemctl", "show", "--property=ExecMainStatus", "--property=ActiveState", "--property=Result",
                        "--property=NRestarts", "--", "runner-install.service",
                    ]
                    var state = ""
                    for _ in 0..<240 {
                        state = try await guest.run(show).standardOutput
                        if state.contains("ActiveState=failed") { break }
                        try await Task.sleep(for: .milliseconds(250))
                    }
                    #expect(state.contains("ActiveState=failed"), "\(state)")
                    // Three restart intervals later: still failed, never restarted, downloaded once.
                    try await Task.sleep(for: .seconds(3))
                    state = try await guest.run(show).standardOutput
                    #expect(state.contains("ExecMainStatus=78\n"), "\(state)")
                    #expect(state.contains("ActiveState=failed\n"), "\(state)")
                    #expect(state.contains("Result=exit-code\n"), "\(state)")
                    #expect(state.contains("NRestarts=0\n"), "\(state)")
                    #expect(server.requests == ["/dl/bundle.tar.gz"])
                } catch {
                    await guest.stop()
                    throw error
                }
                await guest.stop()
            }
        }

        func checkUserData(_ guest: BootedGuest, server: TestHTTPServer) async throws {
            let status = try await guest.run(["timeout", "120", "cloud-init", "status", "--wait", "--long"])
            #expect(status.standardOutput.contains("status: done"), "\(status.standardOutput)\(status.standardError)")

            // config.env: 0600 root, with the ref and digest pinned.
            let mode = try await guest.run(["stat", "-c", "%a %U:%G", "/etc/runner/config.env"])
            #expect(mode.standardOutput == "600 root:root\n")
            let env = try await guest.run(["cat", "/etc/runner/config.env"])
            #expect(env.standardOutput.contains("RUNNER_BOOTSTRAP_REPO_REF=v1.2\n"))
            let bootstrapMode = try await guest.run(["stat", "-c", "%a", "/usr/local/lib/runner/bootstrap.sh"])
            #expect(bootstrapMode.standardOutput == "755\n")
            // The host name resolves from /etc/hosts (sudo looks it up on every hook call).
            let hosts = try await guest.run(["cat", "/etc/hosts"])
            let hostName = try await guest.run(["hostname"])
            let name = hostName.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(name == "runner-test")
            let resolved = try await guest.run(["getent", "-s", "files", "hosts", name])
            #expect(resolved.status.isSuccess, "\(name) is not in /etc/hosts:\n\(hosts.standardOutput)")

            // runner-install.service ran bootstrap.sh, which fetched, verified and exec'd the agent.
            var state = ""
            for _ in 0..<240 {
                let show = try await guest.run([
                    "systemctl", "show", "runner-install.service", "-p", "ActiveState", "-p", "Result", "-p",
                    "ExecMainStatus", "-p", "UnitFileState", "-p", "NRestarts",
                ])
                state = show.standardOutput
                if state.contains("ActiveState=inactive") && state.contains("ExecMainStatus=0")
                    && state.contains("Result=success")
                {
                    break
                }
                if state.contains("ActiveState=failed") { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(state.contains("UnitFileState=enabled"), "\(state)")
            #expect(state.contains("Result=success"), "\(state)")
            #expect(state.contains("NRestarts=2"), "\(state)")
            let journal = try await guest.run(["journalctl", "--no-pager", "-o", "cat", "-u", "runner-install.service"])
            #expect(journal.standardOutput.contains("bootstrap: bundle verified"), "\(journal.standardOutput)")
            #expect(journal.standardOutput.contains("bootstrap: error: could not download"))
            let argv = try await guest.run(["cat", "/var/lib/runner/agent-argv"])
            #expect(argv.standardOutput == "install\n--bundle\n/var/cache/runner/runner-bundle-v1.2.tar.gz\n")
            #expect(server.requests == ["/dl/bundle.tar.gz", "/dl/bundle.tar.gz", "/dl/bundle.tar.gz"])
        }

        func checkEnvironmentFiles(_ guest: BootedGuest) async throws {
            for (index, testCase) in EnvironmentFileCase.all.enumerated() {
                let result = try await guest.run([
                    "systemd-run", "--wait", "--pipe", "--quiet", "-p", "EnvironmentFile=/run/envcases/\(index).env",
                    "/usr/bin/env", "-0",
                ])
                #expect(result.status.isSuccess, "\(testCase.name): \(result.standardError)")
                var systemd: [String: String] = [:]
                for item in result.standardOutput.split(separator: "\0", omittingEmptySubsequences: true) {
                    guard let eq = item.firstIndex(of: "="), item.hasPrefix("T_") else { continue }
                    systemd[String(item[..<eq])] = String(item[item.index(after: eq)...])
                }
                #expect(systemd == testCase.expected, "systemd read case '\(testCase.name)' as \(systemd)")
                let ours = EnvironmentFile.parse(testCase.bytes).environment.filter { $0.key.hasPrefix("T_") }
                #expect(ours == systemd, "parser vs systemd on '\(testCase.name)'")
            }
        }
    }
}
