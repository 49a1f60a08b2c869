import RunnerCore
import RunnerTestSupport
import Testing

/// libarchive is opened on first use, not linked: on a host where it cannot be loaded, a hook
/// call still runs, and a command that needs an archive fails with the library's name, the
/// loader's reason and the fix. The library is hidden from one agent only: `/dev/null` is bound
/// over it in a private mount namespace (`unshare -m`), and the host keeps it.
@Suite struct LibArchiveMissingTests {
    static let script = """
        set -u
        agent=$1 tarball=$2
        library=$(ldconfig -p | awk '$1 == "libarchive.so.13" { print $NF; exit }')
        [ -n "$library" ] || { echo "no libarchive.so.13 in the loader's cache" >&2; exit 90; }
        mount --bind /dev/null "$library" || exit 91
        printf '{"command":"bogus"}\\n' | "$agent" hook
        echo "hook exit $?"
        "$agent" archive list "$tarball"
        echo "list exit $?"
        """

    @Test(
        .requiresRoot, .requires("unshare"), .requires("ldconfig"), .requires("tar"),
        .enabled(if: BuiltProducts.runnerAgent != nil, "runner-agent is not built (swift build)"))
    func withoutLibarchiveAHookCallRunsAndAnArchiveFailsNamingIt() async throws {
        let agent = try #require(BuiltProducts.runnerAgent)
        try await withTemporaryDirectory("nolibarchive") { dir in
            try writeText(dir.appending("tree/file"), "content")
            let tarball = dir.appending("tree.tar")
            let made = try await runTool("tar", ["-C", dir.appending("tree"), "-cf", tarball, "."])
            try #require(made.status.isSuccess, "\(made.standardError)")

            let result = try await runTool("unshare", ["-m", "--", "/bin/sh", "-c", Self.script, "sh", agent, tarball])
            #expect(result.status.isSuccess, "\(result.standardError)")
            // The hook call ran its own code (the input's error), not a loader failure.
            #expect(result.standardOutput.contains("hook exit 1"), "\(result.standardOutput)")
            #expect(result.standardError.contains("bogus: is not a container hook command"))
            // The archive command failed as an error (exit 1, not an abort: the Swift layer loaded
            // first), naming the library, the loader's reason and the fix.
            #expect(result.standardOutput.contains("list exit 1"), "\(result.standardOutput)")
            #expect(result.standardError.contains("libarchive.so.13: could not be loaded ("), "\(result.standardError)")
            #expect(result.standardError.contains("apt-get install libarchive13"))
            #expect(!result.standardError.contains("runner: libarchive.so.13"), "the C fallback's abort")
            // Outside the namespace the same agent still lists it: the host keeps its libarchive.
            let host = try await runTool(agent, ["archive", "list", tarball])
            #expect(host.status.isSuccess && host.standardOutput.contains("./file"), "\(host.standardError)")
        }
    }
}
