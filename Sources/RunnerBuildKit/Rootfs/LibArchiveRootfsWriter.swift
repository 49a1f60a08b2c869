import RunnerCore

/// Writes a rootfs tree through RunnerArchive's libarchive writer in full-fidelity mode.
public struct LibArchiveRootfsWriter: RootfsArchiveWriter {
    let runner: any CommandRunner

    public init(runner: any CommandRunner = SubprocessCommandRunner()) {
        self.runner = runner
    }

    public func write(tree: String, to archive: String, sourceDateEpoch: Int64, progress: ProgressReporter)
        async throws(RunnerError)
    {
        // Interim until RunnerArchive's writer lands on this branch.
        let command = Command(
            "tar",
            [
                "-C", tree, "--sort=name", "--numeric-owner", "--format=pax",
                "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                "--xattrs", "--xattrs-include=security.*", "--mtime=@\(sourceDateEpoch)", "--clamp-mtime",
                "--zstd", "-cf", archive, ".",
            ])
        try await runner.run(command).checked(command)
    }
}
