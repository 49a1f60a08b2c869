import RunnerCore
import RunnerGuests
import RunnerImages

#if canImport(Glibc)
    import Glibc
#endif

/// What `runner-agent install` needs from `config.env`, validated.
public struct InstallSettings: Sendable {
    /// A guest image to import: `NAME=URL@sha256:HEX` in `RUNNER_IMAGES`.
    public struct Image: Sendable, Hashable {
        public var name: String
        public var url: String
        public var sha256: String
    }

    public var user: String
    public var runnerVersion: String
    public var tarballURL: String
    public var tarballSHA256: String
    public var images: [Image]
    public var defaultImage: String
    /// `RUNNER_WORK_DIR` as a host path, or nil for the default (``HostLayout/workDirectory``).
    public var workDirectory: String?
    /// `RUNNER_GUEST_USERNS`: the range imported images are shifted to (nil: off).
    public var guestUserNamespace: GuestUserNamespace? = .standard

    /// Validates `values` (config.env). `pinned` is the GitHub runner the release pins (its
    /// bundle's `MANIFEST.json`): used when config.env sets no `RUNNER_VERSION`, its sha256 when
    /// config.env sets no `RUNNER_TARBALL_SHA256` either (`RUNNER_TARBALL_URL` alone names a
    /// mirror of the pinned tarball). A version set in config.env needs its own sha256.
    public init(values: [String: String], pinned: RunnerPackagePin? = nil) throws(RunnerError) {
        func value(_ key: String) -> String? {
            guard let raw = values[key]?.trimmedWhitespace, !raw.isEmpty else { return nil }
            return raw
        }
        user = value("RUNNER_USER") ?? "runner"
        guard
            user.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }),
            user.first?.isLetter == true
        else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_USER", problem: "'\(user)' is not a valid user name",
                fix: "use lowercase letters, digits, - and _, starting with a letter")
        }
        let configured = value("RUNNER_VERSION")
        guard let version = configured ?? pinned?.version else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_VERSION",
                problem: "is not set, and the release pins no GitHub runner version",
                fix: "install a bundle built by ci/release (it pins one), or set RUNNER_VERSION (e.g. 2.336.0)"
                    + " with RUNNER_TARBALL_SHA256")
        }
        guard version.allSatisfy({ $0.isNumber || $0 == "." }) else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_VERSION", problem: "'\(version)' is not a version like 2.336.0",
                fix: "set RUNNER_VERSION without the leading v")
        }
        runnerVersion = version
        let pinnedSHA256 = configured == nil ? pinned?.sha256 : nil
        guard let sha = value("RUNNER_TARBALL_SHA256") ?? pinnedSHA256, SHA256Digest.isValidHex(sha) else {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_TARBALL_SHA256",
                problem: configured == nil && pinned != nil
                    ? "is not set, and the release pins runner \(version) without a sha256"
                    : "is not a sha256 (64 hex digits)",
                fix: "set it to the sha256 published for the runner tarball of RUNNER_VERSION")
        }
        tarballSHA256 = sha.lowercased()
        tarballURL =
            value("RUNNER_TARBALL_URL")
            ?? "https://github.com/actions/runner/releases/download/v\(version)/actions-runner-linux-\(InstallSettings.runnerArch)-\(version).tar.gz"
        defaultImage = value("RUNNER_DEFAULT_IMAGE") ?? "debian-bookworm"
        workDirectory = value("RUNNER_WORK_DIR")
        guestUserNamespace = value("RUNNER_GUEST_USERNS") == "off" ? nil : .standard
        if let workDirectory,
            !workDirectory.hasPrefix("/") || workDirectory.contains("/../") || workDirectory.hasSuffix("/..")
        {
            throw RunnerError(
                .invalidConfig, input: "RUNNER_WORK_DIR", problem: "'\(workDirectory)' is not an absolute path",
                fix: "set an absolute path such as /var/lib/runner/work")
        }
        var images: [Image] = []
        for entry in (value("RUNNER_IMAGES") ?? "").split(separator: " ") where !entry.isEmpty {
            guard let eq = entry.firstIndex(of: "="), let at = entry.ranges(of: "@sha256:").last else {
                throw RunnerError(
                    .invalidConfig, input: "RUNNER_IMAGES", problem: "'\(entry)' is not NAME=URL@sha256:HEX",
                    fix: "write each image as NAME=URL@sha256:HEX, separated by spaces")
            }
            let name = String(entry[..<eq])
            let url = String(entry[entry.index(after: eq)..<at.lowerBound])
            let sha = String(entry[at.upperBound...]).lowercased()
            guard !name.isEmpty, !url.isEmpty, SHA256Digest.isValidHex(sha) else {
                throw RunnerError(
                    .invalidConfig, input: "RUNNER_IMAGES", problem: "'\(entry)' is not NAME=URL@sha256:HEX",
                    fix: "write each image as NAME=URL@sha256:HEX with a 64-digit sha256")
            }
            images.append(Image(name: name, url: url, sha256: sha))
        }
        self.images = images
    }

    /// The runner's name for this machine's architecture (`x64`, `arm64`, `arm`).
    static var runnerArch: String {
        var info = utsname()
        uname(&info)
        let machine = withUnsafePointer(to: info.machine) {
            $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) }
        }
        switch machine {
        case "aarch64", "arm64": return "arm64"
        case let m where m.hasPrefix("arm"): return "arm"
        default: return "x64"
        }
    }
}
