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
    /// ``ConfigEnv/load(_:layout:for:)`` (every value's form is not checked again here); what
    /// the installer adds is that the runner download is pinned: `RUNNER_VERSION` and
    /// `RUNNER_TARBALL_SHA256` must be set.
    public init(_ config: RunnerConfig) throws(RunnerError) {
        user = config.user
        guard let version = config.runnerVersion, let url = config.runnerTarballURL(architecture: Self.runnerArch)
        else {
            throw RunnerError(
                .invalidConfig, input: ConfigKey.runnerVersion.name, problem: "is not set",
                fix: "set RUNNER_VERSION to the pinned GitHub runner version (e.g. 2.336.0)")
        }
        runnerVersion = version
        tarballURL = url
        guard let sha = config.tarballSHA256 else {
            throw RunnerError(
                .invalidConfig, input: ConfigKey.tarballSHA256.name, problem: "is not set",
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
