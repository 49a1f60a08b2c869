import RunnerCore
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

/// The installer's host commands and its settings.
@Suite struct InstallUnitTests {
    @Test func hostCommandsArgv() {
        #expect(
            Useradd().systemUser("runner", home: "/home/runner", layout: HostLayout()).argv == [
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/home/runner", "--shell",
                "/bin/bash", "runner",
            ])
        #expect(
            Useradd().systemUser("runner", home: "/home/runner", layout: HostLayout(root: "/tmp/r")).argv.prefix(3) == [
                "useradd", "--prefix", "/tmp/r",
            ])
        #expect(
            Visudo().check("/etc/sudoers.d/x").argv == ["visudo", "--check", "--quiet", "--file", "/etc/sudoers.d/x"])
        #expect(Systemctl().daemonReload().argv == ["systemctl", "daemon-reload"])
        #expect(
            Systemctl().startNoBlock("runner.service").argv == ["systemctl", "start", "--no-block", "runner.service"])
        #expect(
            Chown().recursive(uid: 5, gid: 6, "/opt/x").argv == ["chown", "-R", "--no-dereference", "5:6", "/opt/x"])
    }

    @Test func settingsParseImagesAndDefaultTheTarballURL() throws {
        let sha = String(repeating: "a", count: 64)
        let settings = try InstallSettings(values: [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": sha,
            "RUNNER_IMAGES":
                "debian-bookworm=https://x/r.tar.zst@sha256:\(sha)  ubuntu=https://y/u.tar.zst@sha256:\(sha)",
        ])
        #expect(settings.user == "runner")
        #expect(settings.images.map(\.name) == ["debian-bookworm", "ubuntu"])
        #expect(settings.images.first?.url == "https://x/r.tar.zst")
        #expect(
            settings.tarballURL.hasPrefix(
                "https://github.com/actions/runner/releases/download/v2.336.0/actions-runner-linux-"))
    }

    @Test(arguments: [
        ["RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64)],
        ["RUNNER_VERSION": "v2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64)],
        ["RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": "abc"],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_IMAGES": "x=y",
        ],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_USER": "Root;",
        ],
        [
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            "RUNNER_WORK_DIR": "work",
        ],
    ])
    func badSettings(values: [String: String]) {
        let error = #expect(throws: RunnerError.self) { try InstallSettings(values: values) }
        #expect(error?.code == .invalidConfig)
    }
}
