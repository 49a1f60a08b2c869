import RunnerCore

/// The shipped `images/host/runner.service`, read the way systemd groups it.
public enum ShippedServiceUnit {
    /// `<root>/images/host/runner.service`.
    public static var path: String { Repo.root + "/images/host/runner.service" }

    /// Every assignment, keyed `[Section]Key`, with each of its values in order (comments and
    /// blank lines skipped).
    public static func keys() throws -> [String: [String]] {
        let text = String(decoding: try FilePaths.read(path), as: UTF8.self)
        var keys: [String: [String]] = [:]
        var section = ""
        for raw in text.split(separator: "\n") {
            let line = raw.trimmedWhitespace
            if line.hasPrefix("#") || line.isEmpty { continue }
            if line.hasPrefix("[") {
                section = line
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            keys["\(section)\(line[..<eq])", default: []].append(String(line[line.index(after: eq)...]))
        }
        return keys
    }
}
