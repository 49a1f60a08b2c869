/// The form a `config.env` value must have.
public enum ConfigValueKind: Sendable, Hashable, CustomStringConvertible {
    /// Free text without control characters.
    case text
    /// A GitHub repository, organization or enterprise URL (github.com, GHE.com or GHES).
    case githubURL
    /// An `http://` or `https://` URL.
    case url
    /// `true` or `false`.
    case boolean
    /// A runner name: letters, digits, `.`, `_`, `-`.
    case runnerName
    /// Comma-separated labels.
    case labels
    /// An absolute path.
    case absolutePath
    /// Space-separated absolute paths.
    case absolutePaths
    /// A Unix user name.
    case userName
    /// A secret value (token, PAT, JIT blob).
    case secret
    /// A decimal id.
    case numericID
    /// A runner version `X.Y.Z`.
    case version
    /// 64 hex digits.
    case sha256
    /// `bundle` or `git`.
    case bootstrapMode
    /// A git ref (tag or branch name).
    case gitRef
    /// Space-separated `NAME=URL@sha256:HEX`.
    case imageSpecs
    /// An image name: lowercase letters, digits, `.`, `_`, `-`.
    case imageName
    /// Space-separated `ALIAS=NAME`.
    case imageAliases
    /// A proxy URL.
    case proxyURL
    /// Comma-separated hosts, domains or CIDRs.
    case hostList
    /// `on` or `off`.
    case onOff
    /// Space-separated Linux capability names (`NET_ADMIN` or `CAP_NET_ADMIN`).
    case capabilities
    /// `missing`, `always` or `never`.
    case imagePullPolicy
    /// A size in bytes with an optional K, M, G or T suffix (powers of 1024).
    case byteSize
    /// Comma-separated registry names (`docker.io`, `HOST[:PORT]`), or `*`.
    case registries
    /// Space-separated `REGISTRY=URL[,URL…]`.
    case registryMirrors
    /// `private` or `host`.
    case guestNetwork
    /// Space-separated IPv4/IPv6 addresses or CIDR networks.
    case networks
    /// A positive decimal number of CPUs (`1.5`).
    case cpus
    /// A positive whole number.
    case count

    /// The expected form, as error messages and the example config show it.
    public var description: String {
        switch self {
        case .text: "text without control characters"
        case .githubURL:
            "https://HOST/OWNER/REPO, https://HOST/ORG or https://HOST/enterprises/SLUG (HOST: github.com or your GHES)"
        case .url: "an http:// or https:// URL"
        case .boolean: "true or false"
        case .runnerName: "1-64 characters: letters, digits, '.', '_', '-'"
        case .labels: "comma-separated labels (letters, digits, '.', '_', '-', ':', '/'), e.g. linux,nspawn"
        case .absolutePath: "an absolute path, e.g. /etc/runner/token"
        case .absolutePaths: "space-separated absolute paths"
        case .userName: "a Unix user name other than root, e.g. runner"
        case .secret: "the secret itself on one line (better: the _FILE variant naming a 0600 file)"
        case .numericID: "a decimal number, e.g. 123456"
        case .version: "a runner version X.Y.Z, e.g. 2.336.0"
        case .sha256: "64 hex digits (sha256sum's output)"
        case .bootstrapMode: "bundle or git"
        case .gitRef: "a tag or branch name, e.g. v1.2"
        case .imageSpecs: "space-separated NAME=URL@sha256:HEX"
        case .imageName: "lowercase letters, digits, '.', '_', '-', e.g. debian-bookworm"
        case .imageAliases: "space-separated ALIAS=NAME, e.g. ubuntu:22.04=debian-bookworm"
        case .proxyURL: "http://HOST:PORT (credentials as http://USER:PASS@HOST:PORT)"
        case .hostList: "comma-separated hosts, .domains or CIDRs, e.g. localhost,.internal,10.0.0.0/8"
        case .onOff: "on or off"
        case .capabilities: "space-separated Linux capability names, e.g. NET_ADMIN SYS_PTRACE"
        case .imagePullPolicy: "missing, always or never"
        case .byteSize: "a size with an optional K, M, G or T suffix, e.g. 20G"
        case .registries: "comma-separated registry names or *, e.g. docker.io,ghcr.io,registry.internal:5000"
        case .registryMirrors: "space-separated REGISTRY=URL[,URL], e.g. docker.io=https://mirror.gcr.io"
        case .guestNetwork: "private or host"
        case .networks: "space-separated IP addresses or CIDR networks, e.g. 10.0.0.0/8 fd00::/8"
        case .cpus: "a positive number of CPUs, e.g. 2 or 1.5"
        case .count: "a positive whole number, e.g. 4096"
        }
    }
}

/// One `config.env` key: the single definition every part of runner uses.
public struct ConfigKey: Sendable, Hashable {
    /// The variable name.
    public let name: String
    /// The form its value must have.
    public let kind: ConfigValueKind
    /// The value when unset, or nil when there is none. This is the key's only default:
    /// ``RunnerConfig``'s accessors and every settings type read it from here (the ones that
    /// need it typed through ``Defaults``).
    public let defaultValue: String?
    /// Whether the value is a secret (never logged, redacted in ``RunnerConfig/redacted``).
    public let isSecret: Bool
    /// One line on what it does.
    public let summary: String
    /// A sample value for `runner-build config example`.
    public let example: String

    public init(
        _ name: String, _ kind: ConfigValueKind, default defaultValue: String? = nil, secret: Bool = false,
        _ summary: String, example: String
    ) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.isSecret = secret
        self.summary = summary
        self.example = example
    }
}

extension ConfigKey {
    /// The defaults of the keys whose ``RunnerConfig`` accessors never give nil, typed. Each is
    /// its key's ``defaultValue`` (the keys below are declared with these), so it is declared
    /// once, here. Boolean and on/off keys need no entry: ``RunnerConfig/value(_:)`` gives
    /// ``defaultValue`` for an unset key.
    public enum Defaults {
        /// `RUNNER_WORK_DIR`, a host path: the appliance's work directory (``HostLayout/workDirectory``
        /// is it under a layout's root).
        public static let workDirectory = HostLayout.defaultWorkDirectory
        /// `RUNNER_USER`.
        public static let user = "runner"
        /// `RUNNER_BOOTSTRAP_MODE`.
        public static let bootstrapMode = RunnerConfig.BootstrapMode.bundle
        /// `RUNNER_DEFAULT_IMAGE`.
        public static let defaultImage = "debian-bookworm"
        /// `RUNNER_IMAGE_PULL`.
        public static let imagePull = RunnerConfig.ImagePullPolicy.missing
        /// `RUNNER_IMAGE_CACHE_MAX`: 20 GiB.
        public static let imageCacheMax = "20G"
        /// `RUNNER_REGISTRIES`: the public registries CI images come from.
        public static let registries = "docker.io,ghcr.io,quay.io,mcr.microsoft.com,public.ecr.aws"
    }
}

extension ConfigKey {
    public static let githubURL = ConfigKey(
        "RUNNER_GITHUB_URL", .githubURL, "Where the runner registers: a repository, organization or enterprise URL.",
        example: "https://github.com/acme/widgets")
    public static let name = ConfigKey(
        "RUNNER_NAME", .runnerName, "The runner's name in GitHub (default: the host name).", example: "build-01")
    public static let labels = ConfigKey(
        "RUNNER_LABELS", .labels, "Extra labels, comma-separated.", example: "linux,nspawn")
    public static let group = ConfigKey(
        "RUNNER_GROUP", .text, "Runner group (organization and enterprise runners only; default: Default).",
        example: "Default")
    public static let ephemeral = ConfigKey(
        "RUNNER_EPHEMERAL", .boolean, default: "false", "Take one job, then unregister.", example: "false")
    public static let noDefaultLabels = ConfigKey(
        "RUNNER_NO_DEFAULT_LABELS", .boolean, default: "false",
        "Do not add self-hosted, Linux, X64 (needs RUNNER_LABELS).", example: "false")
    public static let workDirectory = ConfigKey(
        "RUNNER_WORK_DIR", .absolutePath, default: Defaults.workDirectory, "The runner's work directory.",
        example: "/var/lib/runner/work")
    public static let user = ConfigKey(
        "RUNNER_USER", .userName, default: Defaults.user, "The unprivileged user the runner runs as.", example: "runner"
    )
    public static let registrationToken = ConfigKey(
        "RUNNER_REGISTRATION_TOKEN", .secret, secret: true, "A registration token (valid for one hour).",
        example: "AABBCCDDEEFF")
    public static let registrationTokenFile = ConfigKey(
        "RUNNER_REGISTRATION_TOKEN_FILE", .absolutePath, "A 0600 file holding the registration token.",
        example: "/etc/runner/registration-token")
    public static let jitConfig = ConfigKey(
        "RUNNER_JIT_CONFIG", .secret, secret: true, "An encoded JIT runner configuration (one job).",
        example: "eyJ...")
    public static let jitConfigFile = ConfigKey(
        "RUNNER_JIT_CONFIG_FILE", .absolutePath, "A 0600 file holding the encoded JIT configuration.",
        example: "/etc/runner/jit-config")
    public static let pat = ConfigKey(
        "RUNNER_PAT", .secret, secret: true, "A personal access token that mints registration tokens.",
        example: "github_pat_XXXX")
    public static let patFile = ConfigKey(
        "RUNNER_PAT_FILE", .absolutePath, "A 0600 file holding the personal access token.",
        example: "/etc/runner/pat")
    public static let appID = ConfigKey(
        "RUNNER_APP_ID", .numericID, "GitHub App id (with the installation id and private key).", example: "123456")
    public static let appInstallationID = ConfigKey(
        "RUNNER_APP_INSTALLATION_ID", .numericID, "GitHub App installation id.", example: "7890123")
    public static let appPrivateKeyFile = ConfigKey(
        "RUNNER_APP_PRIVATE_KEY_FILE", .absolutePath, "A 0600 file holding the GitHub App's PEM private key.",
        example: "/etc/runner/app.pem")
    public static let runnerVersion = ConfigKey(
        "RUNNER_VERSION", .version, "Pin the GitHub runner version (default: the one the bundle pins).",
        example: "2.336.0")
    public static let tarballURL = ConfigKey(
        "RUNNER_TARBALL_URL", .url,
        "Where to download the GitHub runner (default: its GitHub release; alone: a mirror of the one the bundle pins).",
        example: "https://github.com/actions/runner/releases/download/v2.336.0/actions-runner-linux-x64-2.336.0.tar.gz")
    public static let tarballSHA256 = ConfigKey(
        "RUNNER_TARBALL_SHA256", .sha256,
        "sha256 of that tarball (required with RUNNER_VERSION; default: the one the bundle pins).",
        example: String(repeating: "0", count: 64))
    public static let bundleURL = ConfigKey(
        "RUNNER_BUNDLE_URL", .url, "Where bootstrap.sh downloads the bundle (default: the release asset of the ref).",
        example: "https://github.com/acme/runner/releases/download/v1.2/runner-bundle-v1.2-linux-x86_64.tar.gz")
    public static let bundleSHA256 = ConfigKey(
        "RUNNER_BUNDLE_SHA256", .sha256, "sha256 of the bundle (runner-build userdata pins it).",
        example: String(repeating: "0", count: 64))
    public static let bootstrapMode = ConfigKey(
        "RUNNER_BOOTSTRAP_MODE", .bootstrapMode, default: Defaults.bootstrapMode.rawValue,
        "bundle: download the pinned bundle; git: clone the repository at the ref.", example: "bundle")
    public static let bootstrapRepoURL = ConfigKey(
        "RUNNER_BOOTSTRAP_REPO_URL", .url, "The runner appliance's repository (release assets, git mode).",
        example: "https://github.com/acme/runner")
    public static let bootstrapRepoRef = ConfigKey(
        "RUNNER_BOOTSTRAP_REPO_REF", .gitRef, "The release to install (runner-build userdata pins it).",
        example: "v1.2")
    public static let images = ConfigKey(
        "RUNNER_IMAGES", .imageSpecs, "Guest images to install, each NAME=URL@sha256:HEX.",
        example: "debian-bookworm=https://example.com/rootfs-debian-bookworm-v1.2.tar.zst@sha256:"
            + String(repeating: "0", count: 64))
    public static let defaultImage = ConfigKey(
        "RUNNER_DEFAULT_IMAGE", .imageName, default: Defaults.defaultImage,
        "The baked image doctor boots to check systemd-nspawn (one of RUNNER_IMAGES); job containers never "
            + "fall back to it: their image is an alias, a baked image's name or a registry image.",
        example: "debian-bookworm")
    public static let imageAliases = ConfigKey(
        "RUNNER_IMAGE_ALIASES", .imageAliases, "Map job container images to guest images, each ALIAS=NAME.",
        example: "ubuntu:22.04=debian-bookworm node:20=debian-bookworm")
    public static let requireJobContainer = ConfigKey(
        "RUNNER_REQUIRE_JOB_CONTAINER", .boolean, default: "false", "Refuse jobs that do not use a container.",
        example: "false")
    public static let allowDockerSock = ConfigKey(
        "RUNNER_ALLOW_DOCKER_SOCK", .boolean, default: "false",
        "Bind /var/run/docker.sock into guests when a job asks for it.", example: "false")
    public static let guestMountAllow = ConfigKey(
        "RUNNER_GUEST_MOUNT_ALLOW", .absolutePaths,
        "Extra host directories jobs may mount into guests (space-separated).", example: "/srv/cache")
    public static let guestUserNamespace = ConfigKey(
        "RUNNER_GUEST_USERNS", .onOff, default: "on",
        "Run guests in a user namespace (guest root is an unprivileged host UID); off: guest root is host root.",
        example: "on")
    public static let guestCapAdd = ConfigKey(
        "RUNNER_GUEST_CAP_ADD", .capabilities,
        "Capabilities a job's `options: --cap-add` may add to its steps (space-separated; default: none; "
            + "only those the guest itself holds take effect, e.g. not NET_ADMIN).",
        example: "SYS_PTRACE")
    public static let imagePull = ConfigKey(
        "RUNNER_IMAGE_PULL", .imagePullPolicy, default: Defaults.imagePull.rawValue,
        "When registry images are pulled: missing (not in the store yet), always (check the tag every job), "
            + "never (the store only).",
        example: "missing")
    public static let imageCacheMax = ConfigKey(
        "RUNNER_IMAGE_CACHE_MAX", .byteSize, default: Defaults.imageCacheMax,
        "Disk budget of pulled registry images; the least recently used go first (0: no budget).",
        example: "20G")
    public static let registries = ConfigKey(
        "RUNNER_REGISTRIES", .registries, default: Defaults.registries,
        "Registries jobs may pull images from (comma-separated; * for any).",
        example: "docker.io,ghcr.io,registry.internal:5000")
    public static let registryMirrors = ConfigKey(
        "RUNNER_REGISTRY_MIRRORS", .registryMirrors,
        "Mirrors tried before a registry, each REGISTRY=URL[,URL] (space-separated).",
        example: "docker.io=https://mirror.gcr.io")
    public static let registryAuthFile = ConfigKey(
        "RUNNER_REGISTRY_AUTH_FILE", .absolutePath,
        "A docker config.json (root-owned, 0600) with registry credentials for pulls.",
        example: "/etc/runner/registry-auth.json")
    public static let guestNetwork = ConfigKey(
        "RUNNER_GUEST_NETWORK", .guestNetwork, default: "private",
        "private: each job's guests share a network of their own (a bridge, masqueraded out; the host, its "
            + "loopback and the blocked networks unreachable); host: guests share the host's network.",
        example: "private")
    public static let guestBlockedNets = ConfigKey(
        "RUNNER_GUEST_BLOCKED_NETS", .networks,
        "Networks guests on a private network may not reach, besides the cloud metadata addresses "
            + "(169.254.169.254, fd00:ec2::254, 100.100.100.200), which are always blocked.",
        example: "10.0.0.0/8 fd00::/8")
    public static let jobMemoryMax = ConfigKey(
        "RUNNER_JOB_MEMORY_MAX", .byteSize,
        "Memory a job's guests may use together (default: no limit); a "
            + "container's `options: --memory` may ask for less.",
        example: "4G")
    public static let jobCPUs = ConfigKey(
        "RUNNER_JOB_CPUS", .cpus,
        "CPUs a job's guests may use together (default: no limit); a "
            + "container's `options: --cpus` may ask for fewer.",
        example: "2")
    public static let jobTasksMax = ConfigKey(
        "RUNNER_JOB_TASKS_MAX", .count,
        "Processes and threads a job's guests may have together (default: no limit).", example: "4096")
    public static let httpProxy = ConfigKey(
        "HTTP_PROXY", .proxyURL, secret: false, "Proxy for http:// requests.", example: "http://proxy.internal:3128")
    public static let httpsProxy = ConfigKey(
        "HTTPS_PROXY", .proxyURL, "Proxy for https:// requests.", example: "http://proxy.internal:3128")
    public static let noProxy = ConfigKey(
        "NO_PROXY", .hostList, "Hosts that bypass the proxy.", example: "localhost,127.0.0.1,.internal")

    /// Every key, in the order the example config and rendered files use.
    public static let all: [ConfigKey] = [
        githubURL, name, labels, group, ephemeral, noDefaultLabels, workDirectory, user,
        registrationToken, registrationTokenFile, jitConfig, jitConfigFile, pat, patFile,
        appID, appInstallationID, appPrivateKeyFile,
        runnerVersion, tarballURL, tarballSHA256,
        bundleURL, bundleSHA256, bootstrapMode, bootstrapRepoURL, bootstrapRepoRef,
        images, defaultImage, imageAliases, requireJobContainer, allowDockerSock, guestMountAllow,
        guestUserNamespace, guestCapAdd, imagePull, imageCacheMax, registries, registryMirrors, registryAuthFile,
        guestNetwork, guestBlockedNets, jobMemoryMax, jobCPUs, jobTasksMax,
        httpProxy, httpsProxy, noProxy,
    ]

    /// The key called `name`, if there is one.
    public static func named(_ name: String) -> ConfigKey? {
        byName[name]
    }

    private static let byName: [String: ConfigKey] = Dictionary(
        uniqueKeysWithValues: all.map { ($0.name, $0) })
}
