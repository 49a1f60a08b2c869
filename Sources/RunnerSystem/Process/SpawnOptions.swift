import RunnerCore

/// How ``Spawner/spawn(_:options:)`` starts a child, beyond what the ``Command`` says (program,
/// arguments, environment, working directory).
package struct SpawnOptions: Sendable, Hashable {
    /// Where one of the child's standard streams goes.
    package enum Stream: Sendable, Hashable {
        /// Ours.
        case inherit
        /// `/dev/null`.
        case devNull
        /// A file: read for stdin; for stdout and stderr appended to, created with mode 0600.
        case file(String)
        /// stdin only: a pipe filled with these bytes and closed (a child that reads less is fine).
        case bytes([UInt8])
        /// A descriptor of ours (close-on-exec or not), duplicated into the child.
        case descriptor(Int32)
        /// stdout or stderr: a pipe whose read end the handle holds (``ChildProcess/output``,
        /// ``ChildProcess/errorOutput``).
        case pipe
        /// stderr only: wherever stdout goes (`2>&1`).
        case standardOutput
    }

    package var standardInput: Stream
    package var standardOutput: Stream
    package var standardError: Stream
    /// Our process group, a new one, or a new session.
    package var grouping: ProcessGrouping

    package init(
        standardInput: Stream = .devNull, standardOutput: Stream = .inherit, standardError: Stream = .inherit,
        grouping: ProcessGrouping = .sameGroup
    ) {
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.grouping = grouping
    }

    /// The options that start what ``StartOptions`` describes: output on one pipe means stdout
    /// on a pipe and stderr with it.
    package init(_ options: StartOptions) {
        let input: Stream
        switch options.input {
        case .none: input = .devNull
        case .bytes(let bytes): input = .bytes(bytes)
        case .descriptor(let fd): input = .descriptor(fd)
        }
        switch options.output {
        case .pipe: self.init(standardInput: input, standardOutput: .pipe, standardError: .standardOutput)
        case .inherit: self.init(standardInput: input)
        case .discard: self.init(standardInput: input, standardOutput: .devNull, standardError: .devNull)
        case .file(let path): self.init(standardInput: input, standardOutput: .file(path), standardError: .file(path))
        }
        grouping = options.grouping
    }
}
