import RunnerCore

/// Extracts image archives with the safe reader in its rootfs policy: ownership, modes,
/// device nodes, hardlinks and security xattrs are kept; absolute paths, `..`, and links that
/// escape the tree are refused.
public struct SafeRootfsExtractor: ImageArchiveExtractor {
    let runner: any CommandRunner

    public init(runner: any CommandRunner = SubprocessCommandRunner()) {
        self.runner = runner
    }

    public func extract(archive: String, into directory: String, progress: ProgressReporter) async throws(RunnerError) {
        // Interim until RunnerArchive's reader lands: bsdtar refuses absolute paths, `..` and
        // writing through symlinks by default.
        let command = Command(
            "bsdtar",
            ["-x", "--numeric-owner", "-p", "--xattrs", "--acls", "-f", archive, "-C", directory])
        try await runner.run(command).checked(command)
    }
}
