import RunnerCore

/// A test bundle tarball whose `bin/runner-agent` is a stub that records its argv in
/// `$RUNNER_ROOT/agent-argv` (or `/var/lib/runner/agent-argv` when RUNNER_ROOT is unset).
/// A bundle whose `bin/runner-agent` records its argv and exits `exitStatus` (or `$STUB_AGENT_EXIT`).
public func makeStubBundle(in directory: String, withAgent: Bool = true, exitStatus: Int32 = 0) async throws -> [UInt8]
{
    let tree = directory + "/bundle-tree"
    try FilePaths.createDirectory(tree + "/bin")
    try AtomicFile.write(#"{"version":"v1.2"}"#, to: tree + "/MANIFEST.json")
    var members = ["MANIFEST.json"]
    if withAgent {
        let stub = """
            #!/bin/sh
            mkdir -p "${RUNNER_ROOT:-}/var/lib/runner"
            printf '%s\\n' "$@" > "${RUNNER_ROOT:-}/var/lib/runner/agent-argv"
            echo "stub runner-agent: $*"
            exit "${STUB_AGENT_EXIT:-\(exitStatus)}"

            """
        try AtomicFile.write(stub, to: tree + "/bin/runner-agent", mode: 0o755)
        members.append("bin/runner-agent")
    }
    let tarball = directory + "/bundle.tar.gz"
    let result = try await runTool("tar", ["-czf", tarball, "-C", tree] + members)
    try result.checked(Command("tar"))
    return try FilePaths.read(tarball)
}
