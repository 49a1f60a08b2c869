import Logging
import RunnerCore
internal import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Spawns real processes through swift-subprocess. Children get their own session and are
/// torn down (SIGTERM, then SIGKILL after `teardownGrace`) when the calling task is cancelled.
public struct SubprocessCommandRunner: CommandRunner {
    public var logger: Logger
    public var teardownGrace: Duration

    public init(logger: Logger = Logger(label: "runner.command"), teardownGrace: Duration = .seconds(5)) {
        self.logger = logger
        self.teardownGrace = teardownGrace
    }

    public func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult
    {
        logger.debug("run", metadata: ["command": "\(command)"])
        var overrides: [Environment.Key: String?] = [:]
        for (key, value) in command.environment {
            if let k = Environment.Key(rawValue: key) { overrides[k] = value }
        }
        let environment: Environment
        if command.clearsEnvironment {
            environment = .custom(overrides.compactMapValues { $0 })
        } else {
            environment = Environment.inherit.updating(overrides)
        }
        var options = PlatformOptions()
        options.createSession = output != .inherit
        options.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: teardownGrace)]
        let executable: Executable =
            command.executable.contains("/") ? .path(FilePath(command.executable)) : .name(command.executable)
        let configuration = Configuration(
            executable: executable,
            arguments: Arguments(command.arguments),
            environment: environment,
            workingDirectory: command.workingDirectory.map { FilePath($0) },
            platformOptions: options
        )
        do {
            switch output {
            case .capture(let limit):
                let result = try await runCaptured(configuration, input: input, limit: limit)
                return result
            case .inherit:
                let result = try await Subprocess.run(
                    configuration,
                    input: .array(input ?? []),
                    output: .currentStandardOutput,
                    error: .currentStandardError
                )
                return CommandResult(status: ExitStatus(result.terminationStatus))
            case .discard:
                let result = try await Subprocess.run(
                    configuration,
                    input: .array(input ?? []),
                    output: .discarded,
                    error: .discarded
                )
                return CommandResult(status: ExitStatus(result.terminationStatus))
            }
        } catch let error as RunnerError {
            throw error
        } catch {
            throw RunnerError(
                .commandFailed,
                input: command.description,
                problem: "could not run \(command.executable)",
                fix: "check that \(command.executable) is installed and executable",
                underlying: error
            )
        }
    }

    private func runCaptured(_ configuration: Configuration, input: [UInt8]?, limit: Int) async throws -> CommandResult
    {
        // Bounded capture: keep the last `limit` bytes of each stream, never fail on volume.
        let bytes = input ?? []
        let result = try await Subprocess.run(
            configuration,
            input: .inputWriter,
            output: .sequence,
            error: .sequence
        ) { execution in
            async let err = Self.collect(execution.standardError, limit: limit)
            async let out = Self.collect(execution.standardOutput, limit: limit)
            if !bytes.isEmpty {
                _ = try await execution.standardInputWriter.write(bytes)
            }
            try await execution.standardInputWriter.finish()
            return (try await out, try await err)
        }
        let (out, err) = result.closureResult
        return CommandResult(status: ExitStatus(result.terminationStatus), standardOutput: out, standardError: err)
    }

    private static func collect(_ sequence: SubprocessOutputSequence, limit: Int) async throws -> String {
        var bytes: [UInt8] = []
        for try await buffer in sequence {
            buffer.withUnsafeBytes { bytes.append(contentsOf: $0) }
            if bytes.count > limit * 2 {
                bytes.removeFirst(bytes.count - limit)
            }
        }
        if bytes.count > limit {
            bytes.removeFirst(bytes.count - limit)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ExitStatus {
    init(_ status: TerminationStatus) {
        switch status {
        case .exited(let code): self = .exited(code)
        case .signaled(let signal): self = .signaled(signal)
        }
    }
}
