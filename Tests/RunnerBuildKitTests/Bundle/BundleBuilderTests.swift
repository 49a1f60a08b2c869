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

/// A stand-in agent binary: an executable file with known bytes.
func fakeAgent(in dir: TemporaryDirectory, content: String = "#!/bin/sh\necho runner-agent\n") throws -> String {
    let path = dir.appending("agent/runner-agent")
    try AtomicFile.write(content, to: path, mode: 0o755)
    // runner-hook beside it, where the builder looks by default.
    try AtomicFile.write("#!/bin/sh\necho runner-hook\n", to: dir.appending("agent/runner-hook"), mode: 0o755)
    return path
}

func inputs(_ dir: TemporaryDirectory, out: String = "dist", epoch: Int64 = 1_700_000_000) throws
    -> BundleBuilder.Inputs
{
    BundleBuilder.Inputs(
        version: try BundleVersion("v1.2"), agent: try fakeAgent(in: dir), sourceDirectory: Repo.root,
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
                    "MANIFEST.json", "bin", "bin/runner-agent", "bin/runner-hook", "bootstrap.sh", "container-hooks.sh",
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
            #expect(unit.sha256 == (try SHA256Digest.hex(ofFile: Repo.root + "/images/host/runner.service")))
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

    @Test func missingHookClientIsNamed() async throws {
        try await withTemporaryDirectory("nohook") { dir in
            var request = try inputs(dir)
            // The default: runner-hook beside the agent.
            #expect(request.hook == dir.appending("agent/runner-hook"))
            request.hook = dir.appending("nope/runner-hook")
            let error = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(error.code == .notFound)
            #expect(error.input == dir.appending("nope/runner-hook"))
            #expect(error.fix?.contains("--product runner-hook") == true && error.fix?.contains("--hook") == true)
            #expect(!FilePaths.exists(dir.appending("dist")))
            // Not executable: refused too.
            try AtomicFile.write("x", to: dir.appending("plain/runner-hook"), mode: 0o644)
            request.hook = dir.appending("plain/runner-hook")
            let plain = try #require(throws: RunnerError.self) { try BundleBuilder().build(request) }
            #expect(plain.problem == "is not executable" && plain.fix?.contains("runner-hook") == true)
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
        #expect(parsed is BuildBundleCommand)
        #expect(BuildBundleCommand.helpMessage().contains("--version"))
        #expect(throws: (any Error).self) {
            try RunnerBuildCommand.parseAsRoot(["archive", "create", "--from", ".", "--out", "x.zip"])
        }
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
