/// A release bundle's version: `vMAJOR.MINOR[.PATCH][-suffix]` (`v1.2`, `v1.2.3`, `v1.3-rc.1`).
///
/// The suffix is letters, digits, `.` and `-`. The text form is also the release directory's
/// name on the host (`/usr/local/lib/runner/releases/v1.2`) and part of the bundle's file name.
public struct BundleVersion: Sendable, Hashable, Codable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int?
    public let suffix: String?

    /// Parses `text`; the error names the text and the expected form.
    public init(_ text: String) throws(RunnerError) {
        guard let parsed = BundleVersion.parse(text) else {
            throw RunnerError(
                .invalidInput, input: "version '\(text)'",
                problem: "is not of the form vMAJOR.MINOR[.PATCH][-suffix]",
                fix: "use a version such as v1.2, v1.2.3 or v1.3-rc.1")
        }
        self = parsed
    }

    private init(major: Int, minor: Int, patch: Int?, suffix: String?) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.suffix = suffix
    }

    static func parse(_ text: String) -> BundleVersion? {
        guard text.hasPrefix("v") else { return nil }
        var rest = Substring(text.dropFirst())
        var suffix: String?
        if let dash = rest.firstIndex(of: "-") {
            let tail = rest[rest.index(after: dash)...]
            guard !tail.isEmpty,
                tail.utf8.allSatisfy({ c in
                    (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) || c == 46 || c == 45
                })
            else { return nil }
            suffix = String(tail)
            rest = rest[..<dash]
        }
        let parts = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        var numbers: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.count <= 9, part.utf8.allSatisfy({ (48...57).contains($0) }),
                let value = Int(part)
            else { return nil }
            numbers.append(value)
        }
        return BundleVersion(
            major: numbers[0], minor: numbers[1], patch: numbers.count == 3 ? numbers[2] : nil, suffix: suffix)
    }

    /// Whether `text` is a valid version.
    public static func isValid(_ text: String) -> Bool { parse(text) != nil }

    public var description: String {
        var text = "v\(major).\(minor)"
        if let patch { text += ".\(patch)" }
        if let suffix { text += "-\(suffix)" }
        return text
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = BundleVersion.parse(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not of the form vMAJOR.MINOR[.PATCH][-suffix]")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The CPU architecture a bundle is built for, as `uname -m` names it.
public enum BundleArch: String, Sendable, Hashable, Codable, CaseIterable {
    case x86_64
    case aarch64

    /// The architecture this program was compiled for.
    public static var host: BundleArch {
        #if arch(arm64)
            return .aarch64
        #else
            return .x86_64
        #endif
    }
}
