import Foundation
import RunnerCore

/// A guest base image recipe: `images/<name>/recipe.conf` (format in `images/README.md`).
///
/// The file is `key = value` lines; `#` starts a comment line. Scalar keys may appear once;
/// list keys (`packages`, `components`, `mask`, `path-exclude`, `path-include`, `customize`)
/// may repeat and append. Unknown keys, missing required keys and bad values are refused with
/// the file, line, key and reason.
public struct Recipe: Sendable, Hashable {
    /// The image name: the recipe directory's name.
    public var name: String
    /// The recipe directory (`images/<name>`).
    public var directory: String
    /// Debian suite or codename (`bookworm`).
    public var suite: String
    /// Debian architecture (`amd64`, `arm64`, …).
    public var architecture: String
    /// mmdebstrap variant (`minbase`, `apt`, …).
    public var variant: String
    /// The apt mirror base URL (`http://deb.debian.org/debian`).
    public var mirror: String
    /// Archive areas (`main`).
    public var components: [String]
    /// A snapshot.debian.org timestamp (`20250520T000000Z`); nil for the live mirror.
    public var snapshot: String?
    /// Packages to install on top of the variant, in the order given, without duplicates.
    public var packages: [String]
    /// systemd units masked in the guest (in addition to ``RootfsBaker/defaultMaskedUnits``).
    public var maskedUnits: [String]
    /// dpkg `path-exclude` globs: files not unpacked into the tree.
    public var pathExcludes: [String]
    /// dpkg `path-include` globs: exceptions to ``pathExcludes``.
    public var pathIncludes: [String]
    /// A directory inside the recipe directory whose contents are copied over the tree
    /// (owned by root; modes kept).
    public var overlay: String?
    /// Shell commands run by mmdebstrap as customize hooks, with `$1` the tree's root.
    public var customize: [String]

    /// The URL apt fetches from: the mirror, or `<mirror>/<snapshot>` with a snapshot.
    public var effectiveMirror: String {
        guard let snapshot else { return mirror }
        return (mirror.hasSuffix("/") ? String(mirror.dropLast()) : mirror) + "/" + snapshot
    }

    /// The recipe file inside a recipe directory.
    public static let fileName = "recipe.conf"

    static let scalarKeys = ["suite", "architecture", "variant", "mirror", "snapshot", "overlay"]
    static let listKeys = ["packages", "components", "mask", "path-exclude", "path-include", "customize"]
    static let requiredKeys = ["suite", "architecture", "variant", "mirror"]
    static let variants = [
        "extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important", "debootstrap",
        "standard",
    ]
    static let architectures = [
        "amd64", "arm64", "armel", "armhf", "i386", "mips64el", "mipsel", "ppc64el", "riscv64", "s390x",
    ]
    static let unitSuffixes = [
        ".service", ".socket", ".timer", ".target", ".path", ".mount", ".automount", ".swap", ".slice",
        ".device", ".scope",
    ]

    /// Loads `directory/recipe.conf`.
    public static func load(directory: String) throws(RunnerError) -> Recipe {
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        let file = trimmed + "/" + fileName
        var isDirectory = false
        guard FilePaths.exists(trimmed, isDirectory: &isDirectory), isDirectory else {
            throw RunnerError(
                .notFound, input: trimmed, problem: "is not a recipe directory",
                fix: "pass a directory under images/ that holds \(fileName), e.g. images/debian-bookworm")
        }
        guard FilePaths.exists(file) else {
            throw RunnerError(
                .notFound, input: file, problem: "no recipe in \(trimmed)",
                fix: "create \(file) (format: images/README.md)")
        }
        let text = String(decoding: try FilePaths.read(file), as: UTF8.self)
        return try parse(text, file: file, name: FilePaths.basename(trimmed), directory: trimmed)
    }

    /// Parses recipe text. `file` names it in errors; `directory` resolves `overlay`.
    public static func parse(_ text: String, file: String, name: String, directory: String) throws(RunnerError)
        -> Recipe
    {
        try ImageName.validate(name, input: "recipe directory")
        var scalars: [String: (value: String, line: Int)] = [:]
        var lists: [String: [(value: String, line: Int)]] = [:]

        func fail(_ line: Int, _ key: String?, _ problem: String, _ fix: String?) -> RunnerError {
            let input = key.map { "\(file):\(line): key '\($0)'" } ?? "\(file):\(line)"
            return RunnerError(.invalidConfig, input: input, problem: problem, fix: fix)
        }

        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNumber = index + 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            let content = line.trimmingCharacters(in: .whitespaces)
            if content.isEmpty || content.hasPrefix("#") { continue }
            guard let equals = content.firstIndex(of: "=") else {
                throw fail(
                    lineNumber, nil, "expected 'key = value', got '\(content)'", "write one 'key = value' per line")
            }
            let key = content[..<equals].trimmingCharacters(in: .whitespaces)
            let value = content[content.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if scalarKeys.contains(key) {
                if let earlier = scalars[key] {
                    throw fail(
                        lineNumber, key, "is set twice (first on line \(earlier.line))",
                        "keep one '\(key) =' line")
                }
                guard !value.isEmpty else {
                    throw fail(lineNumber, key, "has an empty value", "give it a value or remove the line")
                }
                scalars[key] = (value, lineNumber)
            } else if listKeys.contains(key) {
                lists[key, default: []].append((value, lineNumber))
            } else {
                let known = (scalarKeys + listKeys).sorted()
                let hint =
                    known.min(by: { editDistance($0, key) < editDistance($1, key) })
                    .flatMap { editDistance($0, key) <= 3 ? " (did you mean '\($0)'?)" : nil } ?? ""
                throw fail(
                    lineNumber, key, "unknown key\(hint)", "use one of: \(known.joined(separator: ", "))")
            }
        }

        for key in requiredKeys where scalars[key] == nil {
            throw RunnerError(
                .invalidConfig, input: "\(file): key '\(key)'", problem: "is missing (required)",
                fix: "add a '\(key) = …' line (see images/README.md)")
        }

        func scalar(_ key: String, _ check: (String) -> String?) throws(RunnerError) -> String? {
            guard let (value, line) = scalars[key] else { return nil }
            if let problem = check(value) {
                throw fail(line, key, problem, nil)
            }
            return value
        }
        /// A key ``requiredKeys`` names (checked present above), with its value checked.
        func required(_ key: String, _ check: (String) -> String?) throws(RunnerError) -> String {
            guard let value = try scalar(key, check) else {
                throw RunnerError(
                    .invalidConfig, input: "\(file): key '\(key)'", problem: "is missing (required)", fix: nil)
            }
            return value
        }
        func words(_ key: String, _ check: (String) -> String?) throws(RunnerError) -> [String] {
            var result: [String] = []
            for (value, line) in lists[key] ?? [] {
                for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init) {
                    if let problem = check(word) {
                        throw fail(line, key, "'\(word)' \(problem)", nil)
                    }
                    if !result.contains(word) { result.append(word) }
                }
            }
            return result
        }

        let suite = try required("suite") { v in
            v.wholeMatch(of: /[a-z][a-z0-9.-]*/) == nil ? "'\(v)' is not a suite name (like bookworm)" : nil
        }
        let architecture = try required("architecture") { v in
            architectures.contains(v)
                ? nil : "'\(v)' is not a Debian architecture (one of: \(architectures.joined(separator: ", ")))"
        }
        let variant = try required("variant") { v in
            variants.contains(v)
                ? nil : "'\(v)' is not an mmdebstrap variant (one of: \(variants.joined(separator: ", ")))"
        }
        let mirror = try required("mirror") { v in
            let schemes = ["http://", "https://", "file:///"]
            guard schemes.contains(where: { v.hasPrefix($0) }), !v.contains(where: { $0 == " " || $0 == "\t" }) else {
                return "'\(v)' is not an http://, https:// or file:/// URL without spaces"
            }
            return nil
        }
        let snapshot = try scalar("snapshot") { v in
            v.wholeMatch(of: /[0-9]{8}T[0-9]{6}Z/) == nil
                ? "'\(v)' is not a snapshot timestamp like 20250520T000000Z" : nil
        }
        if snapshot != nil, !mirror.contains("snapshot.debian.org/archive/") {
            throw fail(
                scalars["snapshot"]?.line ?? 0, "snapshot",
                "needs a snapshot.debian.org mirror (mirror is '\(mirror)')",
                "set mirror = http://snapshot.debian.org/archive/debian")
        }
        let overlay = try scalar("overlay") { v in
            if v.hasPrefix("/") || v.split(separator: "/").contains("..") {
                return "'\(v)' must be a path inside the recipe directory"
            }
            var isDirectory = false
            guard FilePaths.exists(directory + "/" + v, isDirectory: &isDirectory), isDirectory else {
                return "'\(v)' is not a directory in \(directory)"
            }
            return nil
        }
        var components = try words("components") { w in
            w.wholeMatch(of: /[a-z][a-z0-9-]*/) == nil ? "is not an archive area (like main)" : nil
        }
        if components.isEmpty { components = ["main"] }
        let packages = try words("packages") { w in
            w.wholeMatch(of: /[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?/) == nil ? "is not a Debian package name" : nil
        }
        let masked = try words("mask") { w in
            guard w.wholeMatch(of: /[A-Za-z0-9:_.@\\-]+/) != nil, unitSuffixes.contains(where: { w.hasSuffix($0) })
            else {
                return "is not a systemd unit name (like apt-daily.timer)"
            }
            return nil
        }
        let globCheck: (String) -> String? = { w in w.hasPrefix("/") ? nil : "is not an absolute path glob" }
        let pathExcludes = try words("path-exclude", globCheck)
        let pathIncludes = try words("path-include", globCheck)
        var customize: [String] = []
        for (value, line) in lists["customize"] ?? [] {
            guard !value.isEmpty else {
                throw fail(line, "customize", "has an empty command", "remove the line")
            }
            customize.append(value)
        }

        return Recipe(
            name: name, directory: directory, suite: suite, architecture: architecture, variant: variant,
            mirror: mirror, components: components, snapshot: snapshot, packages: packages, maskedUnits: masked,
            pathExcludes: pathExcludes, pathIncludes: pathIncludes, overlay: overlay, customize: customize)
    }

    /// Levenshtein distance, for "did you mean" hints on unknown keys.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where j <= b.count {
                current[j] = Swift.min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
