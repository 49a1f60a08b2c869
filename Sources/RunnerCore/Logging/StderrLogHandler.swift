import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Plain-line logging to stderr: `runner-agent: info: message key=value`.
///
/// Bootstrapped once by each executable through ``RunnerLogging/bootstrap(program:level:)``;
/// library code takes a `Logger`. systemd's journal adds its own timestamps, so we add none.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let program: String

    public init(program: String, level: Logger.Level) {
        self.program = program
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = "\(program): \(event.level): \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for key in merged.keys.sorted() {
            line += " \(key)=\(merged[key].map { "\($0)" } ?? "")"
        }
        line += "\n"
        StandardError.write(line)
    }
}

/// Logging set-up shared by the two executables.
public enum RunnerLogging {
    /// Installs ``StderrLogHandler`` as the process-wide handler. Call once, from `main`.
    /// `RUNNER_LOG_LEVEL` (trace, debug, info, notice, warning, error) overrides `level`.
    public static func bootstrap(program: String, level: Logger.Level = .info) {
        var chosen = level
        if let raw = getenv("RUNNER_LOG_LEVEL"), let parsed = Logger.Level(rawValue: String(cString: raw)) {
            chosen = parsed
        }
        let level = chosen
        LoggingSystem.bootstrap { _ in StderrLogHandler(program: program, level: level) }
    }
}

/// Unbuffered writes to the process's standard streams.
public enum StandardError {
    /// Writes `text` to stderr in full.
    public static func write(_ text: String) {
        writeAll(2, Array(text.utf8))
    }
}

/// Unbuffered writes to stdout (results a caller pipes on: digests, listings, JSON).
public enum StandardOutput {
    /// Writes `text` to stdout in full.
    public static func write(_ text: String) {
        writeAll(1, Array(text.utf8))
    }

    /// Whether stdout is a terminal (progress may redraw a line) or not (plain lines only).
    public static var isTerminal: Bool { isatty(1) == 1 }
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress?.advanced(by: offset), $0.count - offset) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += n
    }
}
