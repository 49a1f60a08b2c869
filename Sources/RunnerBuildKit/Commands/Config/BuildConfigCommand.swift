import ArgumentParser
import Foundation
import RunnerCore

/// `runner-build config`: the config.env documentation.
public struct BuildConfigCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Work with config.env, the appliance's configuration.",
        subcommands: [Example.self, Check.self]
    )

    public init() {}

    /// `runner-build config example`.
    public struct Example: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Print a documented example config.env (every key, with its form and default).")

        public init() {}

        public func run() throws {
            print(RunnerConfig.example, terminator: "")
        }
    }

    /// `runner-build config check FILE`: a site file, as `runner-build userdata` will take it.
    public struct Check: ParsableCommand {
        public static let configuration = CommandConfiguration(
            abstract: "Validate a site file (the --config of `runner-build userdata`) with every problem's line.",
            discussion: """
                Checks the site file as `runner-agent config check --site` does: what systemd would read \
                (quotes, escapes, comments), unknown and duplicate keys, each value's form, the combinations and \
                what bootstrap.sh needs, except the keys `runner-build userdata` pins (RUNNER_BOOTSTRAP_REPO_REF \
                by --ref; RUNNER_BUNDLE_SHA256 in bundle mode by --bundle), which it names instead of requiring. \
                Warns (without failing) about `KEY=value # note`: systemd keeps ` # note` in the value. Exits 0 \
                when the file has no errors, 1 otherwise. Never prints secret values. A host's config.env is \
                checked on the host with `runner-agent config check`.
                """
        )

        @Argument(help: "The site file to check.")
        var file: String

        public init() {}

        public func run() throws {
            let bytes: [UInt8]
            do {
                bytes = try FilePaths.read(file)
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            let report = ConfigCheckReport.make(bytes, path: file, options: .site)
            for line in report.lines { print(line) }
            guard report.isValid else {
                let count = report.errorCount == 1 ? "1 problem" : "\(report.errorCount) problems"
                FileHandle.standardError.write(
                    Data(
                        "error: \(file): \(count)\nfix: edit the file; `runner-build config example` documents every key\n"
                            .utf8))
                throw ExitCode.failure
            }
        }
    }
}
