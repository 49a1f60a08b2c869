import Logging
import RunnerCore
import RunnerImages
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

struct InstallUnitTests {
    /// The settings `install` builds: the config model validates `values`, then the settings
    /// take its typed values.
    static func installSettings(_ values: [String: String]) throws -> InstallSettings {
        var all = values
        if all["RUNNER_GITHUB_URL"] == nil { all["RUNNER_GITHUB_URL"] = "https://github.com/acme" }
        return try InstallSettings(RunnerConfig(source: "config.env", values: all).validated(options: .syntax))
    }

    @Test func settingsParseImagesAndDefaultTheTarballURL() throws {
        let sha = String(repeating: "a", count: 64)
        let settings = try Self.installSettings([
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": sha,
            "RUNNER_IMAGES":
                "debian-bookworm=https://x/r.tar.zst@sha256:\(sha)  ubuntu=https://y/u.tar.zst@sha256:\(sha)",
        ])
        #expect(settings.user == ConfigKey.Defaults.user)
        #expect(settings.defaultImage == ConfigKey.Defaults.defaultImage)
        #expect(settings.workDirectory == ConfigKey.Defaults.workDirectory)
        #expect(settings.guestUserNamespace == .standard)
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
        let error = #expect(throws: RunnerError.self) { try Self.installSettings(values) }
        #expect(error?.code == .invalidConfig)
    }
    @Test func settingsTakeTheTypedConfig() throws {
        let sha = String(repeating: "b", count: 64)
        let settings = try Self.installSettings([
            "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": sha.uppercased(),
            "RUNNER_TARBALL_URL": "https://mirror.internal/r.tar.gz", "RUNNER_WORK_DIR": "/srv/work",
            "RUNNER_GUEST_USERNS": "off", "RUNNER_DEFAULT_IMAGE": "tiny", "RUNNER_USER": "ci",
        ])
        #expect(settings.tarballSHA256 == sha)
        #expect(settings.tarballURL == "https://mirror.internal/r.tar.gz")
        #expect(settings.workDirectory == "/srv/work")
        #expect(settings.guestUserNamespace == nil)
        #expect(settings.defaultImage == "tiny" && settings.user == "ci")
        let installer = Installer(
            layout: HostLayout(root: "/tmp/r"), settings: settings, bundle: nil,
            commandRunner: RecordingCommandRunner(), logger: Logger(label: "test"))
        #expect(installer.workDirectory == "/tmp/r/srv/work")
        #expect(installer.nosuidDirectories.first == "/srv/work")
    }

    /// The mount units are ordered after `runner-install.service` (for later boots), and the
    /// installer starts them from inside it: a plain `systemctl start` would wait for the
    /// service that waits for it (first boot hung at the mounts step). They are started
    /// ignoring that order.
    @Test func mountUnitsAreStartedIgnoringTheirOrderAfterTheInstaller() async throws {
        try await withTemporaryDirectory("mounts") { dir in
            let settings = try Self.installSettings([
                "RUNNER_VERSION": "2.336.0", "RUNNER_TARBALL_SHA256": String(repeating: "a", count: 64),
            ])
            let runner = RecordingCommandRunner()
            var installer = Installer(
                layout: dir.layout, settings: settings, bundle: nil, commandRunner: runner,
                logger: Logger(label: "test"))
            installer.systemdRunning = true
            try FilePaths.createDirectory(installer.workDirectory)
            let mounts = try #require(installer.steps.first { $0.name == "mounts" })
            try await mounts.apply()
            let starts = runner.commands.filter { $0.arguments.first == "start" }.map(\.argv)
            #expect(!starts.isEmpty)
            for argv in starts {
                #expect(argv.prefix(4) == ["systemctl", "start", "--job-mode=ignore-dependencies", "--"])
            }
            let unit = try #require(
                MountUnits.unitText(for: "/var/lib/runner/work").split(separator: "\n").first {
                    $0.hasPrefix("After=")
                })
            #expect(unit == "After=runner-install.service")
        }
    }
}
