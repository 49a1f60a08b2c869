import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

/// The GitHub runner a release pins: the pin file, its place in `MANIFEST.json`, and what
/// `config check` asks of config.env now that the bundle pins the runner.
@Suite struct RunnerPackagePinTests {
    @Test(arguments: BundleArch.allCases)
    func theRepositoryPinsARunnerForEveryArchitecture(arch: BundleArch) throws {
        let path = Repo.root + "/" + RunnerPackagePin.pinFile
        let pin = try RunnerPackagePin.parse(try FilePaths.read(path), arch: arch, source: path)
        #expect(pin.problem == nil)
        #expect(pin.version.split(separator: ".").count == 3)
        #expect(SHA256Digest.isValidHex(try #require(pin.sha256)))
    }

    @Test func aPinFileNamesItsSha256PerArchitecture() throws {
        let hex = String(repeating: "ab", count: 32)
        let text = "# pin\nACTIONS_RUNNER_VERSION=2.336.0\nACTIONS_RUNNER_SHA256_aarch64=\(hex.uppercased())\n"
        let arm = try RunnerPackagePin.parse(Array(text.utf8), arch: .aarch64, source: "pin")
        #expect(arm == RunnerPackagePin(version: "2.336.0", sha256: hex))
        let x86 = try RunnerPackagePin.parse(Array(text.utf8), arch: .x86_64, source: "pin")
        #expect(x86.sha256 == nil)
        #expect(RunnerPackagePin.runnerArch(.x86_64) == "x64")
        #expect(RunnerPackagePin.runnerArch(.aarch64) == "arm64")
    }

    @Test(arguments: [
        ("ACTIONS_RUNNER_SHA256_x86_64=\(String(repeating: "a", count: 64))\n", "sets no ACTIONS_RUNNER_VERSION"),
        ("ACTIONS_RUNNER_VERSION=v2.336.0\n", "is not X.Y.Z"),
        ("ACTIONS_RUNNER_VERSION=2.336\n", "is not X.Y.Z"),
        ("ACTIONS_RUNNER_VERSION=2.336.0\nACTIONS_RUNNER_SHA256_x86_64=abc\n", "is not 64 hex digits"),
        ("ACTIONS_RUNNER_VERSION=\"2.336.0\n", ""),
    ])
    func badPinFilesAreRefused(text: String, problem: String) {
        let error = #expect(throws: RunnerError.self) {
            try RunnerPackagePin.parse(Array(text.utf8), arch: .x86_64, source: "pin")
        }
        #expect(error?.code == .invalidInput)
        #expect(error?.problem.contains(problem) == true, "\(String(describing: error))")
    }

    static func manifest(runner: RunnerPackagePin?) throws -> BundleManifest {
        BundleManifest(
            bundleVersion: try BundleVersion("v1.3"), arch: .x86_64, sourceCommit: nil,
            files: [
                BundleManifest.File(
                    path: "bin/runner-agent", size: 1, mode: 0o755, sha256: String(repeating: "c", count: 64))
            ],
            runner: runner)
    }

    @Test func theManifestCarriesThePinAndOmitsItWhenThereIsNone() throws {
        let pin = RunnerPackagePin(version: "2.336.0", sha256: String(repeating: "d", count: 64))
        let pinned = try Self.manifest(runner: pin).encoded()
        let text = String(decoding: pinned, as: UTF8.self)
        #expect(
            text.contains(
                "\"runner\" : {\n    \"sha256\" : \"\(String(repeating: "d", count: 64))\",\n    \"version\" : \"2.336.0\"\n  }"
            ))
        #expect(try BundleManifest.decode(pinned, source: "b").runner == pin)
        // A bundle without a pin has the manifest it had before pins existed.
        let unpinned = try Self.manifest(runner: nil).encoded()
        #expect(!String(decoding: unpinned, as: UTF8.self).contains("runner\""))
        #expect(try BundleManifest.decode(unpinned, source: "b").runner == nil)
        let versionOnly = try Self.manifest(runner: RunnerPackagePin(version: "2.336.0", sha256: nil)).encoded()
        #expect(!String(decoding: versionOnly, as: UTF8.self).contains("\"sha256\" : null"))
    }

    @Test(arguments: [
        RunnerPackagePin(version: "latest", sha256: nil),
        RunnerPackagePin(version: "2.336.0", sha256: "0123"),
    ])
    func aManifestWithAMalformedPinIsRefused(pin: RunnerPackagePin) throws {
        let bytes = try Self.manifest(runner: pin).encoded()
        let error = #expect(throws: RunnerError.self) { try BundleManifest.decode(bytes, source: "b.tar.gz") }
        #expect(error?.code == .integrity)
        #expect(error?.input == "b.tar.gz: MANIFEST.json: runner")
    }

    static let minimal = "RUNNER_GITHUB_URL=https://github.com/acme\nRUNNER_REGISTRATION_TOKEN=AAAA\n"

    static func problems(_ text: String) -> [ConfigProblem] {
        RunnerConfig.check(Array((minimal + text).utf8), source: "config.env", options: .syntax).1
    }

    @Test func configCheckNeedsNoRunnerVersionAndTakesAMirrorURLAlone() {
        #expect(Self.problems("").isEmpty, "the bundle pins the runner")
        #expect(Self.problems("RUNNER_TARBALL_URL=https://mirror.internal/actions-runner.tar.gz\n").isEmpty)
        let own = Self.problems("RUNNER_VERSION=2.337.0\n")
        #expect(own.map(\.key) == ["RUNNER_VERSION"])
        #expect(own.first?.message.contains("not pinned") == true)
        #expect(own.first?.fix?.contains("without RUNNER_VERSION the bundle pins both") == true)
        let sha = String(repeating: "e", count: 64)
        #expect(Self.problems("RUNNER_VERSION=2.337.0\nRUNNER_TARBALL_SHA256=\(sha)\n").isEmpty)
        #expect(Self.problems("RUNNER_TARBALL_SHA256=\(sha)\n").first?.message == "pins nothing")
    }
}
