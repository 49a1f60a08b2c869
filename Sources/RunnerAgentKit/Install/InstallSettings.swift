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

    /// `RUNNER_USER`.
    public var user: String
    /// `RUNNER_VERSION`.
    public var runnerVersion: String
    /// `RUNNER_TARBALL_URL`, else the actions/runner release asset of ``runnerVersion``.
    public var tarballURL: String
    /// `RUNNER_TARBALL_SHA256`, lowercase.
    public var tarballSHA256: String
    /// `RUNNER_IMAGES`.
    public var images: [Image]
    /// `RUNNER_DEFAULT_IMAGE`.
    public var defaultImage: String
    /// `RUNNER_WORK_DIR` (or its default) as the host sees it, without a test root.
    public var workDirectory: String
    /// `RUNNER_GUEST_USERNS`: the range imported images are shifted to (nil: off).
    public var guestUserNamespace: GuestUserNamespace? = .standard

    /// The settings a config gives, from its typed accessors. `config` comes validated from
    /// ``ConfigEnv/load(_:layout:for:)`` (every value's form is not checked again here). `pinned`
    /// is the GitHub runner the release pins (its bundle's `MANIFEST.json`): used when config.env
    /// sets no `RUNNER_VERSION`, its sha256 when config.env sets no `RUNNER_TARBALL_SHA256` either
    /// (`RUNNER_TARBALL_URL` alone names a mirror of the pinned tarball). A version set in
    /// config.env needs its own sha256.
    public init(_ config: RunnerConfig, pinned: RunnerPackagePin? = nil) throws(RunnerError) {
        user = config.user
        let configured = config.runnerVersion
        guard let version = configured ?? pinned?.version else {
            throw RunnerError(
                .invalidConfig, input: ConfigKey.runnerVersion.name,
                problem: "is not set, and the release pins no GitHub runner version",
                fix: "install a bundle built by ci/release (it pins one), or set RUNNER_VERSION (e.g. 2.336.0)"
                    + " with RUNNER_TARBALL_SHA256")
        }
        runnerVersion = version
        tarballURL =
            config.tarballURL
            ?? "https://github.com/actions/runner/releases/download/v\(version)/actions-runner-linux-\(Self.runnerArch)-\(version).tar.gz"
        let pinnedSHA256 = configured == nil ? pinned?.sha256 : nil
        guard let sha = config.tarballSHA256 ?? pinnedSHA256 else {
            throw RunnerError(
                .invalidConfig, input: ConfigKey.tarballSHA256.name,
                problem: configured == nil && pinned != nil
                    ? "is not set, and the release pins runner \(version) without a sha256" : "is not set",
                fix: "set it to the sha256 published for the runner tarball of RUNNER_VERSION")
        }
        tarballSHA256 = sha
        images = config.images.map { Image(name: $0.name, url: $0.url, sha256: $0.sha256) }
        defaultImage = config.defaultImage
        workDirectory = config.workDirectory
        guestUserNamespace = config.guestUserNamespace ? .standard : nil
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
