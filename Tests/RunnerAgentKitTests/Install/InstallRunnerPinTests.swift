import FoundationEssentials
import RunnerArchive
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// The installer's runner when config.env sets no RUNNER_VERSION: the one the release pins.
@Suite struct InstallRunnerPinTests {
    static let pinSHA = String(repeating: "a", count: 64)
    static let ownSHA = String(repeating: "b", count: 64)
    static let pin = RunnerPackagePin(version: "2.336.0", sha256: pinSHA)

    static func config(_ values: [String: String]) -> RunnerConfig {
        RunnerConfig(source: "config.env", values: values)
    }

    @Test func withoutRunnerVersionTheReleasesPinIsUsed() throws {
        let settings = try InstallSettings(Self.config([:]), pinned: Self.pin)
        #expect(settings.runnerVersion == "2.336.0")
        #expect(settings.tarballSHA256 == Self.pinSHA)
        #expect(
            settings.tarballURL
                == "https://github.com/actions/runner/releases/download/v2.336.0/actions-runner-linux-\(InstallSettings.runnerArch)-2.336.0.tar.gz"
        )
    }

    @Test func aMirrorURLAloneDownloadsThePinnedTarball() throws {
        let settings = try InstallSettings(
            Self.config(["RUNNER_TARBALL_URL": "https://mirror.internal/runner.tar.gz"]), pinned: Self.pin)
        #expect(settings.tarballURL == "https://mirror.internal/runner.tar.gz")
        #expect(settings.runnerVersion == "2.336.0")
        #expect(settings.tarballSHA256 == Self.pinSHA)
    }

    @Test func configEnvOverridesThePin() throws {
        let settings = try InstallSettings(
            Self.config(["RUNNER_VERSION": "2.337.0", "RUNNER_TARBALL_SHA256": Self.ownSHA.uppercased()]),
            pinned: Self.pin)
        #expect(settings.runnerVersion == "2.337.0")
        #expect(settings.tarballSHA256 == Self.ownSHA)
        #expect(settings.tarballURL.contains("/v2.337.0/"))
    }

    @Test func aVersionOfOnesOwnNeedsItsOwnDigest() {
        let error = #expect(throws: RunnerError.self) {
            try InstallSettings(Self.config(["RUNNER_VERSION": "2.337.0"]), pinned: Self.pin)
        }
        #expect(error?.input == "RUNNER_TARBALL_SHA256")
        #expect(error?.code == .invalidConfig)
    }

    @Test func nothingPinnedIsAConfigurationErrorThatSaysWhatToDo() {
        let error = #expect(throws: RunnerError.self) { try InstallSettings(Self.config([:]), pinned: nil) }
        #expect(error?.code == .invalidConfig)
        #expect(error?.problem == "is not set, and the release pins no GitHub runner version")
        #expect(error?.fix?.contains("ci/release") == true)
        let noDigest = #expect(throws: RunnerError.self) {
            try InstallSettings(Self.config([:]), pinned: RunnerPackagePin(version: "2.336.0", sha256: nil))
        }
        #expect(noDigest?.problem == "is not set, and the release pins runner 2.336.0 without a sha256")
    }

    @Test func thePinComesFromTheBundleElseTheCheckoutElseTheCurrentRelease() async throws {
        try await withTemporaryDirectory("pin") { dir in
            let layout = HostLayout(root: dir.appending("root"))
            // A bundle with a pin.
            var fixture = BundleFixture()
            fixture.version = "v1.3"
            let bundle = dir.appending("bundle.tar.gz")
            var manifest = try fixture.manifest()
            manifest.runner = Self.pin
            try ReproducibleArchive.write(
                [ArchiveMember(path: "MANIFEST.json", content: .bytes(try manifest.encoded()))], to: bundle,
                options: .init(leadingPaths: ["MANIFEST.json"]))
            #expect(
                try RunnerPackagePin.forInstall(bundle: bundle, unpacker: ManifestReleaseUnpacker(), layout: layout)
                    == Self.pin)
            // A checkout: its ci/actions-runner.pin.
            let checkout = dir.appending("checkout")
            for file in BundleLayout.files {
                let path =
                    switch file.source {
                    case .agentBinary, .hookBinary: checkout + "/" + file.path
                    case .repository(let relative): checkout + "/" + relative
                    }
                try AtomicFile.write("x\n", to: path, mode: file.mode)
            }
            let release = CheckoutRelease(checkout: checkout, version: try BundleVersion("v1.3"))
            #expect(try RunnerPackagePin.forInstall(bundle: nil, unpacker: release, layout: layout) == nil)
            try AtomicFile.write(
                "ACTIONS_RUNNER_VERSION=2.337.0\nACTIONS_RUNNER_SHA256_\(BundleArch.host.rawValue)=\(Self.ownSHA)\n",
                to: checkout + "/" + RunnerPackagePin.pinFile)
            let checkoutPin = RunnerPackagePin(version: "2.337.0", sha256: Self.ownSHA)
            #expect(try RunnerPackagePin.forInstall(bundle: nil, unpacker: release, layout: layout) == checkoutPin)
            #expect(try release.manifest().runner == checkoutPin)
            // Neither: the release current points at.
            #expect(
                try RunnerPackagePin.forInstall(bundle: nil, unpacker: ManifestReleaseUnpacker(), layout: layout) == nil
            )
            try FilePaths.createDirectory(layout.releaseDirectory("v1.3"))
            try AtomicFile.write(try manifest.encoded(), to: layout.releaseDirectory("v1.3") + "/MANIFEST.json")
            try FilePaths.createDirectory(layout.libDirectory)
            #expect(symlink("releases/v1.3", layout.currentRelease) == 0)
            #expect(
                try RunnerPackagePin.forInstall(bundle: nil, unpacker: ManifestReleaseUnpacker(), layout: layout)
                    == Self.pin)
        }
    }
}
