import ArgumentParser
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent config`: checks config.env on a host.
public struct AgentConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with /etc/runner/config.env.",
        subcommands: [Check.self]
    )

    public init() {}

    /// `runner-agent config check [FILE]`.
    public struct Check: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Validate a config.env and print every problem with its line number.",
            discussion: """
                Checks what systemd would read (quotes, escapes, comments), unknown and duplicate keys, each \
                value's form, the combinations (exactly one credential, …) and that *_FILE secrets are 0600 \
                files. Exits 0 when the file is clean, 1 otherwise. Never prints secret values.
                """
        )

        @Argument(help: "The file to check (default: /etc/runner/config.env).")
        var file: String?

        @Option(help: "The host root the file's paths are relative to (tests).")
        var root = "/"

        public init() {}

        public func validate() throws {
            guard root.hasPrefix("/") else { throw ValidationError("--root must be an absolute path") }
        }

        public func run() throws {
            let layout = HostLayout(root: root)
            let path = file ?? layout.configFile
            let bytes: [UInt8]
            do {
                bytes = try FilePaths.read(path)
            } catch {
                printError("error: \(error)")
                throw ExitCode.failure
            }
            let (_, problems) = RunnerConfig.check(bytes, source: path, options: .host(layout))
            if problems.isEmpty {
                print("\(path): ok")
                return
            }
            for problem in problems {
                print(problem.located(in: path))
            }
            let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
            printError(
                "error: \(path): \(count)\nfix: edit the file; `runner-build config example` documents every key")
            throw ExitCode.failure
        }

        private func printError(_ text: String) {
            var stderr = StandardError()
            print(text, to: &stderr)
        }
    }
}

/// Standard error as a `TextOutputStream` (write(2) on fd 2, no shared `FILE *`).
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        let bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in Glibc.write(2, raw.baseAddress! + offset, raw.count - offset) }
            if n <= 0 { break }
            offset += n
        }
    }
}
