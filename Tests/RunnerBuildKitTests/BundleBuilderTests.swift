import ArgumentParser
import RunnerArchive
import RunnerBuildKit
import RunnerCore
import RunnerSystem
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The repository root (this file is `Tests/RunnerBuildKitTests/BundleBuilderTests.swift`).
let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = FilePaths.parent(of: path) }
    return path
}()

/// A stand-in agent binary: an executable file with known bytes.
func fakeAgent(in dir: TemporaryDirectory, content: String = "#!/bin/sh\necho runner-agent\n") throws -> String {
    let path = dir.appending("agent/runner-agent")
    try AtomicFile.write(content, to: path, mode: 0o755)
    return path
}

func inputs(_ dir: TemporaryDirectory, out: String = "dist", epoch: Int64 = 1_700_000_000) throws
    -> BundleBuilder.Inputs
{
    BundleBuilder.Inputs(
        version: try BundleVersion("v1.2"), agent: try fakeAgent(in: dir), sourceDirectory: repositoryRoot,
        outputDirectory: dir.appending(out), arch: .x86_64, sourceCommit: "0123456789abcdef0123456789abcdef01234567",
        modificationTime: epoch)
}

@Suite struct BundleBuilderTests {
    @Test func bundleHoldsTheLayoutWithTheManifestFirst() async throws {
        try await withTemporaryDirectory("bundle") { dir in
            let output = try BundleBuilder().build(try inputs(dir))
            #expect(output.path == dir.appending("dist/runner-bundle-v1.2-linux-x86_64.tar.gz"))
            #expect(output.sha256 == (try SHA256Digest.hex(ofFile: output.path)))
            let entries = try ArchiveReader.list(output.path)
            #expect(entries.first?.path == "MANIFEST.json")
            let names = try entries.map { try ArchivePath.normalized($0.path) }
            #expect(
                names == [
                    "MANIFEST.json", "bin", "bin/runner-agent", "bootstrap.sh", "container-hooks.sh",
                    "runner-install.service", "runner-service.sh", "runner.service",
                ])
            #expect(Set(names.dropFirst()) == Set(BundleLayout.files.map(\.path)).union(["bin"]))
            for entry in entries {
                #expect(entry.uid == 0 && entry.gid == 0 && entry.userName == "root")
                #expect(entry.modificationTime == 1_700_000_000)
            }
            let manifest = try BundleManifest.decode(
                try ArchiveReader.readMember("MANIFEST.json", from: output.path), source: output.path)
            #expect(manifest == output.manifest)
            #expect(manifest.bundleVersion.description == "v1.2")
            #expect(manifest.arch == .x86_64)
            #expect(manifest.sourceCommit == "0123456789abcdef0123456789abcdef01234567")
            let agent = try #require(manifest.files.first { $0.path == "bin/runner-agent" })
            #expect(agent.mode == "0755")
            #expect(agent.sha256 == SHA256Digest.hex(of: Array("#!/bin/sh\necho runner-agent\n".utf8)))
            let unit = try #require(manifest.files.first { $0.path == "runner.service" })
            #expect(unit.mode == "0644")
            #expect(unit.sha256 == (try SHA256Digest.hex(ofFile: repositoryRoot + "/images/host/runner.service")))
            for entry in entries where entry.kind == .regularFile && entry.path != "MANIFEST.json" {
                let listed = try #require(manifest.files.first { $0.path == entry.path })
                #expect(listed.permissions == entry.permissions)
                #expect(listed.size == entry.size)
            }
        }
    }

    @Test func sameInputsGiveByteIdenticalBundlesInAnyOrder() async throws {
        try await withTemporaryDirectory("repro") { dir in
            let first = try BundleBuilder().build(try inputs(dir, out: "a"))
            var reordered = try inputs(dir, out: "b")
            reordered.files = BundleLayout.files.reversed()
            let second = try BundleBuilder().build(reordered)
            #expect(first.sha256 == second.sha256)
            #expect(try FilePaths.read(first.path) == (try FilePaths.read(second.path)))
            let later = try BundleBuilder().build(try inputs(dir, out: "c", epoch: 1_700_000_001))
            #expect(later.sha256 != first.sha256)
        }
    }

    @Test func existingOutputNeedsForce() async throws {
        try await withTemporaryDirectory("force") { dir in
            var request = try inputs(dir)
            let first = try BundleBuilder().build(request)
            let error = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(error.code == .alreadyExists)
            #expect(error.input == first.path)
            #expect(error.fix?.contains("--force") == true)
            request.force = true
            #expect(try BundleBuilder().build(request).sha256 == first.sha256)
        }
    }

    @Test func missingAgentIsNamed() async throws {
        try await withTemporaryDirectory("noagent") { dir in
            var request = try inputs(dir)
            request.agent = dir.appending("nope/runner-agent")
            let error = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(error.code == .notFound)
            #expect(error.input == dir.appending("nope/runner-agent"))
            #expect(error.fix?.contains("--agent") == true)
            #expect(!FilePaths.exists(dir.appending("dist")))
        }
    }

    @Test func unreadableOrMissingSourcesAreNamed() async throws {
        try await withTemporaryDirectory("nosource") { dir in
            var request = try inputs(dir)
            request.sourceDirectory = dir.appending("empty")
            let missing = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(missing.code == .notFound)
            #expect(missing.input.hasSuffix("/empty/cloud-init/runner-install.service"))
            // A directory where a file should be.
            try FilePaths.createDirectory(dir.appending("empty/cloud-init/runner-install.service"))
            let notFile = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(notFile.problem.contains("not a regular file"))
            // An agent that is not executable.
            request = try inputs(dir)
            #expect(chmod(request.agent, 0o644) == 0)
            let notExecutable = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(notExecutable.input == request.agent)
            #expect(!FilePaths.exists(dir.appending("dist/runner-bundle-v1.2-linux-x86_64.tar.gz")))
        }
    }

    @Test func commandValidatesItsInput() throws {
        #expect(throws: (any Error).self) {
            try RunnerBuildCommand.parseAsRoot(["bundle", "--version", "1.2", "--agent", "/bin/true"])
        }
        #expect(throws: (any Error).self) {
            try RunnerBuildCommand.parseAsRoot(["bundle", "--version", "v1.2.3.4", "--agent", "/bin/true"])
        }
        let parsed = try RunnerBuildCommand.parseAsRoot(["bundle", "--version", "v1.2", "--agent", "/bin/true"])
        #expect(parsed is BundleCommand)
        #expect(BundleCommand.helpMessage().contains("--version"))
        #expect(throws: (any Error).self) {
            try RunnerBuildCommand.parseAsRoot(["archive", "create", "--from", ".", "--out", "x.zip"])
        }
    }

    @Test func gitCommandArgv() {
        let command = Git().revParse(.init(repository: "/src"))
        #expect(command.argv == ["git", "-C", "/src", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
    }

    @Test func sourceCommitComesFromGit() async throws {
        let runner = RecordingCommandRunner()
        runner.answer("git", with: CommandResult(status: .exited(0), standardOutput: "abc123\n"))
        #expect(await BundleBuilder.sourceCommit(of: "/src", runner: runner) == "abc123")
        let failing = RecordingCommandRunner()
        failing.answer("git", with: CommandResult(status: .exited(128)))
        #expect(await BundleBuilder.sourceCommit(of: "/src", runner: failing) == nil)
    }
}

@Suite struct BundleVersionTests {
    @Test(arguments: ["v1.2", "v1.2.3", "v1.3-rc.1", "v10.20.30-beta-2", "v0.0"])
    func valid(_ text: String) throws {
        #expect(try BundleVersion(text).description == text)
    }

    @Test(arguments: ["1.2", "v1", "v1.2.3.4", "v1.x", "v1.2-", "v1.2-rc_1", "", "v", "v1..2", "V1.2", "v1.2 "])
    func invalid(_ text: String) throws {
        let error = try #require(throws: RunnerError.self) { try BundleVersion(text) }
        #expect(error.code == .invalidInput)
        #expect(error.input.contains(text))
        #expect(error.problem.contains("vMAJOR.MINOR[.PATCH][-suffix]"))
    }
}

/// bsdtar and GNU tar list the bundle the same way our reader does: names, types, modes,
/// sizes and owners.
@Suite struct BundleIndependentReaderTests {
    struct Line: Hashable, CustomStringConvertible {
        var mode: String
        var owner: String
        var size: Int64
        var name: String
        var description: String { "\(mode) \(owner) \(size) \(name)" }
    }

    static func ours(_ path: String) throws -> [Line] {
        try ArchiveReader.list(path).map { entry in
            Line(
                mode: entry.modeString, owner: "\(entry.userName ?? "")/\(entry.groupName ?? "")", size: entry.size,
                name: entry.path + (entry.kind == .symlink ? " -> \(entry.linkTarget ?? "")" : ""))
        }
    }

    static func run(_ executable: String, _ arguments: [String]) async throws -> [String] {
        let command = Command(executable, arguments, environment: ["LC_ALL": "C", "TZ": "UTC"])
        let text = try await SystemCommandRunner().output(command)
        return text.split(separator: "\n").map(String.init)
    }

    /// `drwxr-xr-x  0 root   root        0 Nov 14  2023 bin/`
    static func bsdtar(_ path: String) async throws -> [Line] {
        try await run("bsdtar", ["-tvf", path]).map { line in
            let fields = line.split(separator: " ", maxSplits: 8, omittingEmptySubsequences: true)
            return Line(
                mode: String(fields[0]), owner: "\(fields[2])/\(fields[3])", size: Int64(fields[4]) ?? -1,
                name: String(fields[8]))
        }
    }

    /// `drwxr-xr-x root/root         0 2023-11-14 22:13 bin/`
    static func gnuTar(_ path: String) async throws -> [Line] {
        try await run("tar", ["-tvzf", path]).map { line in
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            return Line(
                mode: String(fields[0]), owner: String(fields[1]), size: Int64(fields[2]) ?? -1, name: String(fields[5])
            )
        }
    }

    @Test(.requires("bsdtar"), .requires("tar"))
    func independentReadersAgree() async throws {
        try await withTemporaryDirectory("readers") { dir in
            let output = try BundleBuilder().build(try inputs(dir))
            let ours = try Self.ours(output.path)
            #expect(ours.count == 8)
            #expect(try await Self.bsdtar(output.path) == ours)
            #expect(try await Self.gnuTar(output.path) == ours)
        }
    }
}
