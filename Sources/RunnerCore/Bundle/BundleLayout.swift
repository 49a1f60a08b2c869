/// What a release bundle holds, in ONE place: each file's path inside the bundle (which is
/// also its path under the release directory on the host, `releases/<version>/<path>`), where
/// `runner-build bundle` takes it from, and its mode. `MANIFEST.json` comes first in the
/// archive and describes all of them.
public enum BundleLayout {
    /// Where a bundled file comes from when the bundle is built.
    public enum Source: Sendable, Hashable {
        /// The `runner-agent` binary given with `--agent`.
        case agentBinary
        /// The `runner-hook` binary given with `--hook` (by default beside the agent).
        case hookBinary
        /// A file of the repository, relative to its root (`--source`).
        case repository(String)

        /// The product a binary source is built as (`runner-agent`, `runner-hook`); nil for a
        /// repository file.
        public var binaryProduct: String? {
            switch self {
            case .agentBinary: "runner-agent"
            case .hookBinary: "runner-hook"
            case .repository: nil
            }
        }
    }

    /// One bundled file.
    public struct File: Sendable, Hashable {
        /// The path inside the bundle and under the release directory.
        public let path: String
        public let source: Source
        /// The mode it has in the bundle and once installed.
        public let mode: UInt32

        public init(_ path: String, from source: Source, mode: UInt32) {
            self.path = path
            self.source = source
            self.mode = mode
        }
    }

    /// `bin/runner-agent`: the agent inside a release directory.
    public static let agentPath = "bin/runner-agent"

    /// `bin/runner-hook`: what `container-hooks.sh` execs, beside the agent it hands calls to.
    public static let hookPath = "bin/runner-hook"

    /// Every file of a bundle besides `MANIFEST.json`.
    public static let files: [File] = [
        File(agentPath, from: .agentBinary, mode: 0o755),
        File(hookPath, from: .hookBinary, mode: 0o755),
        File("runner-install.service", from: .repository("cloud-init/runner-install.service"), mode: 0o644),
        File("runner.service", from: .repository("images/host/runner.service"), mode: 0o644),
        File("bootstrap.sh", from: .repository("cloud-init/bootstrap.sh"), mode: 0o755),
        File("runner-service.sh", from: .repository("images/host/runner-service.sh"), mode: 0o755),
        File("container-hooks.sh", from: .repository("images/host/container-hooks.sh"), mode: 0o755),
    ]

    /// `runner-bundle-<version>-linux-<arch>.tar.gz`.
    public static func fileName(version: BundleVersion, arch: BundleArch) -> String {
        "runner-bundle-\(version)-linux-\(arch.rawValue).tar.gz"
    }
}
