import Foundation
import RunnerArchive
import RunnerCore

/// Renders the `#cloud-config` user-data that turns a fresh VM into a runner host.
///
/// It writes `/etc/runner/config.env` (0600 root; the site config with the release ref and
/// bundle digest pinned), `/etc/systemd/system/runner-install.service` and
/// `/usr/local/lib/runner/bootstrap.sh` (0755), installs the OS packages a host needs, has
/// cloud-init keep the host name in `/etc/hosts` (`manage_etc_hosts: localhost`: sudo resolves
/// it on every hook call; a minimal image has no entry), and starts the unit without waiting
/// for it. Same inputs, same bytes.
public enum UserData {
    /// EC2's limit on raw user-data, the smallest of the common clouds.
    public static let defaultBudget = 16_384

    /// The Debian packages every host needs before the bundle's installer runs.
    public static let packages = [
        "systemd-container", "libarchive13", "sudo", "curl", "ca-certificates", "git", "nftables", "iproute2",
    ]

    /// Where cloud-init writes the unit (host path).
    public static let unitPath = "/etc/systemd/system/runner-install.service"
    /// The unit's name.
    public static let unitName = "runner-install.service"

    /// What ``render(_:)`` needs.
    public struct Input: Sendable {
        /// The site config (validated with ``RunnerConfig/Options/render``).
        public var config: RunnerConfig
        /// The release ref to pin, e.g. `v1.2`.
        public var ref: String
        /// The bundle's sha256 to pin (required in bundle mode unless the config pins it).
        public var bundleSHA256: String?
        /// `cloud-init/runner-install.service`.
        public var unit: String
        /// `cloud-init/bootstrap.sh`.
        public var bootstrap: String
        /// Compress with deterministic gzip.
        public var gzip: Bool
        /// The size limit in bytes.
        public var budget: Int

        public init(
            config: RunnerConfig, ref: String, bundleSHA256: String?, unit: String, bootstrap: String, gzip: Bool,
            budget: Int = UserData.defaultBudget
        ) {
            self.config = config
            self.ref = ref
            self.bundleSHA256 = bundleSHA256
            self.unit = unit
            self.bootstrap = bootstrap
            self.gzip = gzip
            self.budget = budget
        }
    }

    /// The rendered user-data.
    public struct Output: Sendable, Hashable {
        /// What to hand to the cloud (gzip'd when asked).
        public var bytes: [UInt8]
        /// The size of the `#cloud-config` text before compression.
        public var plainSize: Int
        /// The config.env it carries (pinned).
        public var config: RunnerConfig
    }

    /// Renders, pins and checks the size. Throws when the config is invalid, the ref or digest
    /// is malformed or disagrees with the config, or the result exceeds the budget.
    public static func render(_ input: Input) throws(RunnerError) -> Output {
        if let problem = ConfigKey.bootstrapRepoRef.problem(with: input.ref) ?? (input.ref.isEmpty ? "is empty" : nil) {
            throw RunnerError(.invalidInput, input: "--ref", problem: problem, fix: "a release tag such as v1.2")
        }
        var pins: [ConfigKey: String] = [.bootstrapRepoRef: input.ref]
        if let digest = input.bundleSHA256 {
            guard SHA256Digest.isValidHex(digest) else {
                throw RunnerError(
                    .invalidInput, input: "--bundle-sha256", problem: "\"\(digest)\" is not 64 hex digits",
                    fix: "sha256sum's output for the bundle, or --bundle FILE")
            }
            pins[.bundleSHA256] = digest.lowercased()
        }
        let pinned = try input.config.pinning(pins) { key in
            key == .bootstrapRepoRef ? "--ref" : "--bundle/--bundle-sha256"
        }
        let config = try pinned.validated(
            options: RunnerConfig.Options(secretFiles: nil, requireCredential: true, requireBootstrap: true))

        var comments = [
            "runner appliance \(input.ref): rendered by runner-build userdata; edit the site config and re-render."
        ]
        if config.bootstrapMode == .bundle, let digest = config.bundleSHA256 {
            comments.append("bundle sha256 \(digest)")
        }
        let files = [
            CloudConfigYAML.File(
                path: "/etc/runner/config.env", owner: "root:root", permissions: "0600", content: config.rendered()),
            CloudConfigYAML.File(path: unitPath, owner: "root:root", permissions: "0644", content: input.unit),
            CloudConfigYAML.File(
                path: "/usr/local/lib/runner/bootstrap.sh", owner: "root:root", permissions: "0755",
                content: input.bootstrap),
        ]
        // "localhost": on every boot, cloud-init makes sure /etc/hosts maps the instance's host
        // name (to 127.0.1.1 on Debian) and leaves every other line as it is ("true" would rewrite
        // the whole file from its template).
        let text = CloudConfigYAML.document(
            comments: comments, manageEtcHosts: "localhost", packages: packages, packageUpdate: true, files: files,
            runcmd: [
                ["systemctl", "daemon-reload"],
                ["systemctl", "enable", "--now", "--no-block", unitName],
            ])
        let plain = Array(text.utf8)
        let bytes =
            input.gzip
            ? try withArchiveErrors { () throws(ArchiveError) in
                try DeterministicGzip.compress(plain, level: 9, name: "user-data")
            } : plain
        guard bytes.count <= input.budget else {
            let what = input.gzip ? "gzip'd user-data" : "user-data"
            throw RunnerError(
                .invalidInput, input: "user-data",
                problem: "the \(what) is \(bytes.count) bytes, over the budget of \(input.budget) bytes",
                fix: input.gzip
                    ? "move secrets to *_FILE keys delivered another way, or trim RUNNER_IMAGES"
                    : "add --gzip (cloud-init decompresses it), or trim the config")
        }
        return Output(bytes: bytes, plainSize: plain.count, config: config)
    }
}
