import RunnerCore

/// Reads `/etc/runner/config.env` (`KEY=VALUE` lines, `#` comments, optional single or double
/// quotes around a value, as systemd's `EnvironmentFile=` accepts them) into a dictionary.
enum ConfigEnv {
    static func load(_ path: String) throws(RunnerError) -> [String: String] {
        let bytes: [UInt8]
        do {
            bytes = try FilePaths.read(path)
        } catch {
            throw RunnerError(
                .invalidConfig, input: path, problem: "cannot be read",
                fix: "write the configuration (cloud-init does) or run as root")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), path: path)
    }

    static func parse(_ text: String, path: String) throws(RunnerError) -> [String: String] {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmedWhitespace
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmedWhitespace }
            guard let equals = line.firstIndex(of: "=") else {
                throw RunnerError(
                    .invalidConfig, input: "\(path):\(index + 1)", problem: "is not a KEY=VALUE line",
                    fix: "fix or remove the line")
            }
            let key = line[..<equals].trimmedWhitespace
            guard !key.isEmpty, key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw RunnerError(
                    .invalidConfig, input: "\(path):\(index + 1)", problem: "'\(key)' is not a variable name",
                    fix: "use letters, digits and underscores")
            }
            var value = line[line.index(after: equals)...].trimmedWhitespace
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
                if first == "\"" {
                    value = value.replacing("\\\"", with: "\"").replacing("\\\\", with: "\\")
                }
            }
            values[key] = value
        }
        return values
    }
}
