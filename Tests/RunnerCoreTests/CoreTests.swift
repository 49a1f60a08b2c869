import RunnerCore
import RunnerSystem
import RunnerTestSupport
import Testing

@Suite("Command values")
struct CommandTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("with space", "'with space'"),
        ("it's", "'it'\\''s'"),
        ("", "''"),
        ("--opt=/a/b", "--opt=/a/b"),
    ])
    func shellQuoting(word: String, expected: String) {
        #expect(Command.shellQuoted(word) == expected)
    }

    @Test func descriptionNamesEnvironmentKeysButNeverValues() {
        let command = Command("config.sh", ["--unattended"], environment: ["ACTIONS_RUNNER_INPUT_TOKEN": "s3cr3t"])
        #expect(command.description == "[env: ACTIONS_RUNNER_INPUT_TOKEN] config.sh --unattended")
        #expect(!command.description.contains("s3cr3t"))
    }
}

@Suite("Host layout")
struct HostLayoutTests {
    @Test func productionPathsAreTheDesignPaths() {
        let layout = HostLayout()
        #expect(layout.configFile == "/etc/runner/config.env")
        #expect(layout.installedMarker == "/var/lib/runner/installed")
        #expect(layout.guestHelper == "/usr/local/bin/ci-nspawn-run")
        #expect(layout.releaseDirectory("v1.2") == "/usr/local/lib/runner/releases/v1.2")
        #expect(layout.imageDirectory("debian-bookworm") == "/var/lib/runner/images/debian-bookworm")
    }

    @Test func everyPathMovesWithTheRoot() {
        let layout = HostLayout(root: "/tmp/x/")
        #expect(layout.configFile == "/tmp/x/etc/runner/config.env")
        #expect(layout.currentRelease == "/tmp/x/usr/local/lib/runner/current")
    }
}

@Suite("Errors")
struct RunnerErrorTests {
    @Test func namesInputProblemAndFix() {
        let error = RunnerError(.invalidInput, input: "--version 1.2", problem: "is not vMAJOR.MINOR", fix: "use v1.2")
        #expect(error.description == "--version 1.2: is not vMAJOR.MINOR\nfix: use v1.2")
    }

    @Test func commandFailureKeepsABoundedStderrTail() {
        let stderr = (1...50).map { "line \($0)" }.joined(separator: "\n")
        let error = RunnerError.commandFailed(
            Command("apt-get", ["install", "nope"]), status: .exited(100), stderr: stderr)
        #expect(error.code == .commandFailed)
        #expect(error.problem.contains("exit status 100"))
        #expect(error.problem.contains("line 50"))
        #expect(!error.problem.contains("line 30\n"))
    }
}

@Suite("Files and digests")
struct FileTests {
    @Test func atomicWriteCreatesParentsAndSetsMode() throws {
        let dir = try TemporaryDirectory("atomic")
        defer { dir.remove() }
        let path = dir.appending("a/b/config.env")
        try AtomicFile.write("KEY=value\n", to: path, mode: 0o600)
        #expect(try FilePaths.read(path) == Array("KEY=value\n".utf8))
        try AtomicFile.write("KEY=other\n", to: path, mode: 0o600)
        #expect(try FilePaths.read(path) == Array("KEY=other\n".utf8))
    }

    @Test func entriesListNamesSortedWithHiddenOnesAndNothingForAMissingDirectory() throws {
        let dir = try TemporaryDirectory("entries")
        defer { dir.remove() }
        for name in ["b", ".hidden", "a", "Z"] { try AtomicFile.write("", to: dir.appending(name)) }
        #expect(FilePaths.entries(of: dir.path) == [".hidden", "Z", "a", "b"])
        #expect(FilePaths.entries(of: dir.appending("missing")) == [])
    }

    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ])
    func sha256KnownVectors(input: String, expected: String) {
        #expect(SHA256Digest.hex(of: Array(input.utf8)) == expected)
    }

    @Test func sha256OfFileMatchesBytes() throws {
        let dir = try TemporaryDirectory("sha")
        defer { dir.remove() }
        let bytes = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try AtomicFile.write(bytes, to: dir.appending("f"))
        #expect(try SHA256Digest.hex(ofFile: dir.appending("f")) == SHA256Digest.hex(of: bytes))
    }
}

@Suite("Running commands")
struct CommandRunnerTests {
    let runner = SystemCommandRunner()

    @Test func nonZeroExitIsDataUntilChecked() async throws {
        let command = Command("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        let result = try await runner.run(command)
        #expect(result.status == .exited(3))
        #expect(result.standardOutput == "out\n")
        #expect(result.standardError == "err\n")
        #expect(throws: RunnerError.self) { try result.checked(command) }
    }

    @Test func inputEnvironmentAndDirectoryReachTheChild() async throws {
        let command = Command(
            "/bin/sh", ["-c", "read x; echo \"$x $GREETING $(pwd)\""],
            environment: ["GREETING": "hello"], workingDirectory: "/usr"
        )
        let out = try await runner.output(command, input: Array("in\n".utf8))
        #expect(out == "in hello /usr\n")
    }

    @Test func captureKeepsTheTailWithinTheLimit() async throws {
        let command = Command("/bin/sh", ["-c", "seq 1 100000"])
        let result = try await runner.run(command, input: nil, output: .capture(limit: 1000))
        #expect(result.standardOutput.utf8.count <= 1000)
        #expect(result.standardOutput.hasSuffix("99999\n100000\n"))
    }

    @Test func missingProgramIsAClearError() async throws {
        await #expect(throws: RunnerError.self) {
            try await runner.run(Command("/nonexistent/tool"))
        }
    }
}
