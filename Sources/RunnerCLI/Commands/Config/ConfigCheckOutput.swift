import ArgumentParser
import RunnerCore

/// What `runner-agent config check` and `runner-build config check` print: the report's lines on
/// stdout, then, when the file cannot be read or has errors, the error on stderr and exit 1.
public enum ConfigCheckOutput {
    /// Checks the file at `path` with `options` and prints the report. Throws `ExitCode.failure`
    /// (after saying why on stderr) when the file cannot be read or has errors; warnings alone pass.
    public static func check(_ path: String, options: RunnerConfig.Options) throws(ExitCode) {
        let bytes: [UInt8]
        do {
            bytes = try FilePaths.read(path)
        } catch {
            StandardError.write("error: \(error)\n")
            throw ExitCode.failure
        }
        let report = ConfigCheckReport.make(bytes, path: path, options: options)
        for line in report.lines { print(line) }
        guard report.isValid else {
            let count = report.errorCount == 1 ? "1 problem" : "\(report.errorCount) problems"
            StandardError.write(
                "error: \(path): \(count)\nfix: edit the file; `runner-build config example` documents every key\n")
            throw ExitCode.failure
        }
    }
}
