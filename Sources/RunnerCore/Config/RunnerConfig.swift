import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// One thing wrong in a config file: where, which key, what, and the expected form.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The 1-based line, or nil for a problem of the file as a whole (a missing key).
    public var line: Int?
    /// The key it is about, when there is one.
    public var key: String?
    /// What is wrong.
    public var message: String
    /// The expected form or what to do.
    public var fix: String?
    /// A warning: systemd reads it in a defined way that is rarely what was meant; not an error.
    public var isWarning: Bool

    public init(line: Int?, key: String?, message: String, fix: String?, isWarning: Bool = false) {
        self.line = line
        self.key = key
        self.message = message
        self.fix = fix
        self.isWarning = isWarning
    }

    /// `line 12: RUNNER_EPHEMERAL: "yes" is not a boolean (expected: true or false)`.
    public var description: String {
        (line.map { "line \($0): " } ?? "") + detail
    }

    /// `site.env:12: RUNNER_EPHEMERAL: …`, the compiler-style form `config check` prints
    /// (`site.env:3: warning: …` for a warning).
    public func located(in source: String) -> String {
        (line.map { "\(source):\($0): " } ?? "\(source): ") + detail
    }

    private var detail: String {
        var text = isWarning ? "warning: " : ""
        text += key.map { "\($0): " } ?? ""
        text += message
        if let fix {
            text += fix.hasPrefix("did you mean") ? " (\(fix))" : " (expected: \(fix))"
        }
        return text
    }
}

/// A validated `config.env`.
///
/// Build one with ``parse(_:source:options:)`` or ``load(path:layout:options:)``. Every key
/// is defined once in ``ConfigKey/all``; this type checks each value against its
/// ``ConfigValueKind``, the combinations (exactly one credential, labels for
/// `RUNNER_NO_DEFAULT_LABELS`, …) and, on a host, that `*_FILE` secrets are 0600 files.
/// Duplicate keys are refused: systemd would silently take the last one.
public struct RunnerConfig: Sendable, Hashable {
    /// A value set in the file.
    public struct Entry: Sendable, Hashable {
        public var value: String
        /// The line it was set on, or nil when set by a program (a pinned value).
        public var line: Int?
    }

    /// What to check beyond each value's form.
    public struct Options: Sendable, Hashable {
        /// Check that `*_FILE` secrets exist under this layout and are 0600 (host only).
        public var secretFiles: HostLayout?
        /// Require a credential (registration token, JIT, PAT or App).
        public var requireCredential: Bool
        /// Require what bootstrap.sh needs (the ref; the bundle digest and a source).
        public var requireBootstrap: Bool
        /// A site file for `runner-build userdata`: the keys it pins
        /// (``RunnerConfig/keysPinnedByUserData(mode:)``) are not required.
        public var pinnedByUserData: Bool

        public init(
            secretFiles: HostLayout? = nil, requireCredential: Bool = true, requireBootstrap: Bool = false,
            pinnedByUserData: Bool = false
        ) {
            self.secretFiles = secretFiles
            self.requireCredential = requireCredential
            self.requireBootstrap = requireBootstrap
            self.pinnedByUserData = pinnedByUserData
        }

        /// A config.env on a host: everything, secret files included.
        public static func host(_ layout: HostLayout = HostLayout()) -> Options {
            Options(secretFiles: layout, requireCredential: true, requireBootstrap: true)
        }

        /// A site config that `runner-build userdata` renders (files live on the host, not here).
        public static let render = Options(secretFiles: nil, requireCredential: true, requireBootstrap: false)

        /// A site file as `config check --site` checks it: what a host needs, except the keys
        /// `runner-build userdata` pins and the secret files (they live on the host).
        public static let site = Options(
            secretFiles: nil, requireCredential: true, requireBootstrap: true, pinnedByUserData: true)

        /// Only the form of each value and the combinations; no credential or bootstrap needed.
        public static let syntax = Options(secretFiles: nil, requireCredential: false, requireBootstrap: false)
    }

    /// Where the config came from (a path), for messages.
    public let source: String
    /// The keys set, by name.
    public private(set) var entries: [String: Entry]
    /// What the file says that systemd reads in a defined way but was probably not meant
    /// (``EnvironmentFile/warnings``); a config with warnings is valid.
    public private(set) var warnings: [ConfigProblem] = []

    // MARK: Loading

    /// Reads and validates a config file. `path` defaults to `/etc/runner/config.env` under `layout`.
    public static func load(
        path: String? = nil, layout: HostLayout = HostLayout(), options: Options? = nil
    ) throws(RunnerError) -> RunnerConfig {
        let file = path ?? layout.configFile
        let bytes = try FilePaths.read(file)
        return try parse(bytes, source: file, options: options ?? .host(layout))
    }

    /// Parses and validates config bytes; throws one error listing every problem with its line.
    public static func parse(_ bytes: [UInt8], source: String, options: Options = .syntax) throws(RunnerError)
        -> RunnerConfig
    {
        let (config, problems) = check(bytes, source: source, options: options)
        guard let config, problems.isEmpty else {
            throw RunnerConfig.error(source: source, problems: problems)
        }
        return config
    }

    /// Parses and validates, returning every problem instead of throwing (`config check`).
    public static func check(_ bytes: [UInt8], source: String, options: Options) -> (RunnerConfig?, [ConfigProblem]) {
        let file = EnvironmentFile.parse(bytes)
        var problems = file.problems.map { ConfigProblem(line: $0.line, key: nil, message: $0.message, fix: $0.fix) }
        var entries: [String: Entry] = [:]
        for assignment in file.assignments where EnvironmentFile.isValidName(assignment.key) {
            guard let key = ConfigKey.named(assignment.key) else {
                var fix = "one of the keys in `runner-build config example`"
                if let guess = closestKey(to: assignment.key) { fix = "did you mean \(guess)?" }
                problems.append(.init(line: assignment.line, key: assignment.key, message: "unknown key", fix: fix))
                continue
            }
            if let earlier = entries[key.name] {
                problems.append(
                    .init(
                        line: assignment.line, key: key.name,
                        message: "set again (first set on line \(earlier.line ?? 0)); systemd would silently use"
                            + " the last one", fix: "one assignment per key"))
                continue
            }
            entries[key.name] = Entry(value: assignment.value, line: assignment.line)
        }
        var config = RunnerConfig(source: source, entries: entries)
        config.warnings = file.warnings.map {
            ConfigProblem(line: $0.line, key: nil, message: $0.message, fix: $0.fix, isWarning: true)
        }
        problems += config.problems(options: options)
        problems.sort { ($0.line ?? Int.max, $0.key ?? "") < ($1.line ?? Int.max, $1.key ?? "") }
        return (config, problems)
    }

    /// Builds a config from values (tests, programs). Validate with ``validated(options:)``.
    public init(source: String, values: [String: String]) {
        self.init(source: source, entries: values.mapValues { Entry(value: $0, line: nil) })
    }

    init(source: String, entries: [String: Entry]) {
        self.source = source
        self.entries = entries
    }

    /// This config, checked; throws one error listing every problem.
    public func validated(options: Options) throws(RunnerError) -> RunnerConfig {
        var problems: [ConfigProblem] = []
        for name in entries.keys.sorted() where ConfigKey.named(name) == nil {
            problems.append(.init(line: entries[name]?.line, key: name, message: "unknown key", fix: nil))
        }
        problems += self.problems(options: options)
        guard problems.isEmpty else { throw RunnerConfig.error(source: source, problems: problems) }
        return self
    }

    /// This config with `values` pinned (as `runner-build userdata` pins the ref and bundle digest).
    /// A key already set to a different value is refused: the file and the flag disagree.
    public func pinning(_ values: [ConfigKey: String], by flag: (ConfigKey) -> String) throws(RunnerError)
        -> RunnerConfig
    {
        var copy = self
        for (key, value) in values.sorted(by: { $0.key.name < $1.key.name }) {
            if let existing = entries[key.name], existing.value != value {
                throw RunnerError(
                    .invalidConfig, input: "\(source):\(existing.line ?? 0)",
                    problem: "\(key.name) is \(existing.value) but \(flag(key)) says \(value)",
                    fix: "remove \(key.name) from \(source); \(flag(key)) pins it")
            }
            copy.entries[key.name] = Entry(value: value, line: existing(key)?.line)
        }
        return copy

        func existing(_ key: ConfigKey) -> Entry? { entries[key.name] }
    }

    static func error(source: String, problems: [ConfigProblem]) -> RunnerError {
        let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
        return RunnerError(
            .invalidConfig, input: source,
            problem: "\(count):\n" + problems.map { "  " + $0.description }.joined(separator: "\n"),
            fix: "edit \(source); `runner-build config example` documents every key")
    }

    // MARK: Values

    /// A config with no key set: every accessor gives its key's default (``ConfigKey/defaultValue``).
    public static let empty = RunnerConfig(source: "(defaults)", values: [:])

    /// Whether `key` is set in the file.
    public func isSet(_ key: ConfigKey) -> Bool { entries[key.name] != nil }

    /// The value of `key`: as set, else its default, else nil. An empty value counts as unset.
    public func value(_ key: ConfigKey) -> String? {
        if let entry = entries[key.name], !entry.value.isEmpty { return entry.value }
        return key.defaultValue
    }

    /// The line `key` was set on.
    public func line(_ key: ConfigKey) -> Int? { entries[key.name]?.line }

    /// A boolean key's value (false when unset and without default).
    public func bool(_ key: ConfigKey) -> Bool { value(key) == "true" }

    /// `RUNNER_GITHUB_URL`, parsed; nil only for an unvalidated config without it.
    public var githubURL: GitHubURL? { value(.githubURL).flatMap(GitHubURL.init) }
    /// `RUNNER_NAME`, or nil for the host name.
    public var runnerName: String? { value(.name) }
    /// `RUNNER_LABELS`, split and trimmed.
    public var labels: [String] { RunnerConfig.labels(value(.labels) ?? "") }
    /// `RUNNER_GROUP`, or nil for the default group.
    public var group: String? { value(.group) }
    public var ephemeral: Bool { bool(.ephemeral) }
    public var noDefaultLabels: Bool { bool(.noDefaultLabels) }
    /// `RUNNER_WORK_DIR` (a host path; join it with `HostLayout.path` in tests).
    public var workDirectory: String { value(.workDirectory) ?? ConfigKey.Defaults.workDirectory }
    /// `RUNNER_USER`: the unprivileged user the runner runs as.
    public var user: String { value(.user) ?? ConfigKey.Defaults.user }
    public var runnerVersion: String? { value(.runnerVersion) }
    public var tarballURL: String? { value(.tarballURL) }
    public var tarballSHA256: String? { value(.tarballSHA256)?.lowercased() }
    /// Where to download the GitHub runner: `RUNNER_TARBALL_URL`, else the actions/runner release
    /// asset of `RUNNER_VERSION` for `architecture` (`x64`, `arm64`); nil when neither is set.
    public func runnerTarballURL(architecture: String) -> String? {
        if let url = tarballURL { return url }
        guard let version = runnerVersion else { return nil }
        return
            "https://github.com/actions/runner/releases/download/v\(version)/actions-runner-linux-\(architecture)-\(version).tar.gz"
    }
    public var bundleURL: String? { value(.bundleURL) }
    public var bundleSHA256: String? { value(.bundleSHA256)?.lowercased() }
    /// How bootstrap.sh fetches the release.
    public enum BootstrapMode: String, Sendable { case bundle, git }
    public var bootstrapMode: BootstrapMode {
        value(.bootstrapMode).flatMap(BootstrapMode.init(rawValue:)) ?? ConfigKey.Defaults.bootstrapMode
    }
    public var bootstrapRepoURL: String? { value(.bootstrapRepoURL) }
    public var bootstrapRepoRef: String? { value(.bootstrapRepoRef) }
    /// `RUNNER_IMAGES`, parsed (invalid entries are refused by validation).
    public var images: [ImageSpec] { RunnerConfig.words(value(.images)).compactMap(ImageSpec.init) }
    /// `RUNNER_DEFAULT_IMAGE`: the baked image `doctor` boots to check systemd-nspawn. Job
    /// containers never fall back to it (an unknown image is pulled from its registry, or
    /// refused): the hook resolves an alias, a baked image's name, then the registry.
    public var defaultImage: String { value(.defaultImage) ?? ConfigKey.Defaults.defaultImage }
    /// `RUNNER_IMAGE_ALIASES`, parsed.
    public var imageAliases: [ImageAlias] { RunnerConfig.words(value(.imageAliases)).compactMap(ImageAlias.init) }
    public var requireJobContainer: Bool { bool(.requireJobContainer) }
    public var allowDockerSock: Bool { bool(.allowDockerSock) }
    /// `RUNNER_GUEST_MOUNT_ALLOW`: extra allowed mount-source roots.
    public var guestMountAllow: [String] { RunnerConfig.words(value(.guestMountAllow)) }
    /// `RUNNER_GUEST_USERNS`: guests run in a user namespace (default on).
    public var guestUserNamespace: Bool { value(.guestUserNamespace) != "off" }
    /// `RUNNER_GUEST_CAP_ADD`: capabilities (`CAP_X`) jobs may add with `--cap-add`.
    public var guestCapAdd: [String] {
        RunnerConfig.words(value(.guestCapAdd)).compactMap(LinuxCapability.canonicalName)
    }

    /// When registry images are pulled (`RUNNER_IMAGE_PULL`).
    public enum ImagePullPolicy: String, Sendable, Hashable, CaseIterable, Codable {
        /// Pull when the store does not have the reference yet.
        case missing
        /// Ask the registry every time (a moved tag is pulled again; unchanged layers are not).
        case always
        /// Never pull: the store only.
        case never
    }

    /// `RUNNER_IMAGE_PULL`.
    public var imagePull: ImagePullPolicy {
        value(.imagePull).flatMap(ImagePullPolicy.init(rawValue:)) ?? ConfigKey.Defaults.imagePull
    }
    /// `RUNNER_IMAGE_CACHE_MAX` in bytes; nil: no budget (`0`).
    public var imageCacheMax: Int64? {
        let bytes =
            RunnerConfig.byteSize(value(.imageCacheMax) ?? ConfigKey.Defaults.imageCacheMax)
            ?? RunnerConfig.byteSize(ConfigKey.Defaults.imageCacheMax) ?? 0
        return bytes > 0 ? Int64(clamping: bytes) : nil
    }
    /// `RUNNER_REGISTRIES`: registry names pulls may use (`*`: any).
    public var registries: [String] {
        RunnerConfig.labels(value(.registries) ?? ConfigKey.Defaults.registries).map { $0.lowercased() }
    }
    /// `RUNNER_REGISTRY_MIRRORS`: mirror base URLs per registry name, in order.
    public var registryMirrors: [String: [String]] {
        var mirrors: [String: [String]] = [:]
        for word in RunnerConfig.words(value(.registryMirrors)) {
            guard let (registry, urls) = RunnerConfig.mirror(word) else { continue }
            mirrors[registry, default: []] += urls
        }
        return mirrors
    }
    /// `RUNNER_REGISTRY_AUTH_FILE`.
    public var registryAuthFile: String? { value(.registryAuthFile) }

    /// `REGISTRY=URL[,URL]` → the registry and its mirror URLs; nil when malformed.
    static func mirror(_ word: String) -> (String, [String])? {
        guard let equals = word.firstIndex(of: "=") else { return nil }
        let registry = word[..<equals].lowercased()
        let urls = word[word.index(after: equals)...].split(separator: ",").map { String($0) }
        guard !registry.isEmpty, !urls.isEmpty, urls.allSatisfy(ConfigSyntax.isURL) else { return nil }
        return (registry, urls.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 })
    }

    /// `RUNNER_GUEST_NETWORK`: whether guests get a private network per job (default) or the host's.
    public var guestPrivateNetwork: Bool { value(.guestNetwork) != "host" }
    /// `RUNNER_GUEST_BLOCKED_NETS`: extra networks guests may not reach (addresses or CIDRs).
    public var guestBlockedNets: [String] { RunnerConfig.words(value(.guestBlockedNets)) }
    /// `RUNNER_JOB_MEMORY_MAX` in bytes, when set (and not 0).
    public var jobMemoryMax: UInt64? {
        value(.jobMemoryMax).flatMap(RunnerConfig.byteSize).flatMap { $0 > 0 ? $0 : nil }
    }
    /// `RUNNER_JOB_CPUS`, when set.
    public var jobCPUs: Double? { value(.jobCPUs).flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } }
    /// `RUNNER_JOB_TASKS_MAX`, when set.
    public var jobTasksMax: UInt64? { value(.jobTasksMax).flatMap { UInt64($0) }.flatMap { $0 > 0 ? $0 : nil } }

    /// A size with an optional K, M, G or T suffix (powers of 1024, a trailing `B` allowed), in
    /// bytes (`20G` → 21474836480, `0` → 0); nil when it is not one.
    public static func byteSize(_ text: String) -> UInt64? {
        var digits = Substring(text.uppercased())
        if digits.hasSuffix("B") { digits = digits.dropLast() }
        var factor: UInt64 = 1
        if let last = digits.last, let index = "KMGT".firstIndex(of: last) {
            factor = 1 << (10 * UInt64("KMGT".distance(from: "KMGT".startIndex, to: index) + 1))
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits)
        else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? nil : bytes
    }

    /// Whether `text` is an IPv4 or IPv6 address, optionally with a `/prefix` in range.
    public static func isNetwork(_ text: String) -> Bool {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        var v4 = in_addr()
        var v6 = in6_addr()
        let address = String(parts[0])
        let isV4 = inet_pton(AF_INET, address, &v4) == 1
        guard isV4 || inet_pton(AF_INET6, address, &v6) == 1 else { return false }
        guard parts.count == 2 else { return true }
        guard let prefix = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
        return prefix >= 0 && prefix <= (isV4 ? 32 : 128)
    }

    /// `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY` and their lowercase twins, for child processes.
    public var proxyEnvironment: [String: String] {
        var environment: [String: String] = [:]
        for key in [ConfigKey.httpProxy, .httpsProxy, .noProxy] {
            guard let value = value(key) else { continue }
            environment[key.name] = value
            environment[key.name.lowercased()] = value
        }
        return environment
    }

    /// How the runner registers; nil when no credential is set (validation requires one).
    public var credential: RunnerCredential? {
        if let source = secret(.registrationToken, .registrationTokenFile) { return .registrationToken(source) }
        if let source = secret(.jitConfig, .jitConfigFile) { return .jitConfig(source) }
        if let source = secret(.pat, .patFile) { return .pat(source) }
        if let id = value(.appID), let installation = value(.appInstallationID), let key = value(.appPrivateKeyFile) {
            return .app(appID: id, installationID: installation, privateKeyFile: key)
        }
        return nil
    }

    private func secret(_ inline: ConfigKey, _ file: ConfigKey) -> SecretSource? {
        if let value = value(inline) { return .inline(value) }
        if let path = value(file) { return .file(path) }
        return nil
    }

    static func labels(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false).map {
            String($0).trimmingSpaces()
        }.filter { !$0.isEmpty }
    }

    static func words(_ text: String?) -> [String] {
        (text ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    // MARK: Rendering

    /// The config as a config.env: every set key in ``ConfigKey/all`` order, one per line,
    /// quoted so that systemd reads back exactly these values. No comments.
    public func rendered() -> String {
        var text = ""
        for key in ConfigKey.all {
            guard let entry = entries[key.name] else { continue }
            text += EnvironmentFile.line(key: key.name, value: entry.value) + "\n"
        }
        return text
    }

    /// The config for logs: secrets replaced by `<redacted>`, proxy credentials hidden.
    public var redacted: String {
        var text = ""
        for key in ConfigKey.all {
            guard let entry = entries[key.name] else { continue }
            var shown = entry.value
            if key.isSecret && !shown.isEmpty {
                shown = "<redacted>"
            } else if key.kind == .proxyURL || key.kind == .url || key.kind == .imageSpecs {
                shown = RunnerConfig.hidingURLCredentials(shown)
            }
            text += EnvironmentFile.line(key: key.name, value: shown) + "\n"
        }
        return text
    }

    /// Replaces `user:pass@` in URLs with `<redacted>@`.
    static func hidingURLCredentials(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let range = rest.firstRange(of: "://") {
            out += rest[..<range.upperBound]
            rest = rest[range.upperBound...]
            let authority = rest.prefix(while: { $0 != "/" && $0 != " " && $0 != "?" && $0 != "#" })
            if let at = authority.lastIndex(of: "@") {
                out += "<redacted>"
                rest = rest[at...]
            }
        }
        return out + rest
    }
}

// MARK: Validation

extension RunnerConfig {
    func problems(options: Options) -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        func add(_ key: ConfigKey?, _ message: String, fix: String? = nil) {
            problems.append(.init(line: key.flatMap { line($0) }, key: key?.name, message: message, fix: fix))
        }
        for key in ConfigKey.all {
            guard let entry = entries[key.name] else { continue }
            if let problem = RunnerConfig.checkValue(entry.value, of: key) {
                add(key, problem, fix: key.kind.description)
            }
        }
        if value(.githubURL) == nil {
            add(nil, "RUNNER_GITHUB_URL is not set", fix: ConfigKey.githubURL.kind.description)
        }
        // Credentials: exactly one kind, not both inline and file.
        for (inline, file) in [
            (ConfigKey.registrationToken, ConfigKey.registrationTokenFile), (.jitConfig, .jitConfigFile),
            (.pat, .patFile),
        ] where value(inline) != nil && value(file) != nil {
            add(
                file, "set together with \(inline.name)",
                fix: "one of them; the _FILE form keeps the secret out of config.env")
        }
        let appKeys = [ConfigKey.appID, .appInstallationID, .appPrivateKeyFile]
        let appSet = appKeys.filter { value($0) != nil }
        if !appSet.isEmpty && appSet.count < appKeys.count {
            let missing = appKeys.filter { value($0) == nil }.map(\.name).joined(separator: ", ")
            add(appSet[0], "a GitHub App also needs \(missing)", fix: "all three App keys")
        }
        var kinds: [String] = []
        if value(.registrationToken) != nil || value(.registrationTokenFile) != nil {
            kinds.append("registration token")
        }
        if value(.jitConfig) != nil || value(.jitConfigFile) != nil { kinds.append("JIT config") }
        if value(.pat) != nil || value(.patFile) != nil { kinds.append("PAT") }
        if !appSet.isEmpty { kinds.append("GitHub App") }
        if kinds.count > 1 {
            add(nil, "more than one credential is set (\(kinds.joined(separator: ", ")))", fix: "exactly one")
        } else if kinds.isEmpty && options.requireCredential {
            add(
                nil, "no credential is set",
                fix: "RUNNER_REGISTRATION_TOKEN[_FILE], RUNNER_JIT_CONFIG[_FILE], RUNNER_PAT[_FILE] or the three"
                    + " RUNNER_APP_* keys")
        }
        if let url = githubURL {
            if case .enterprise = url.scope, !appSet.isEmpty {
                add(
                    .appID, "enterprise runners cannot register with a GitHub App", fix: "a PAT or a registration token"
                )
            }
            if case .repository = url.scope, value(.group) != nil {
                add(.group, "runner groups exist only for organization and enterprise runners", fix: "remove it")
            }
        }
        if noDefaultLabels && labels.isEmpty {
            add(.noDefaultLabels, "needs RUNNER_LABELS: a runner without labels gets no jobs", fix: "set RUNNER_LABELS")
        }
        // Without RUNNER_VERSION the release's bundle pins the runner (version and sha256), and
        // RUNNER_TARBALL_URL alone is a mirror of that tarball; a version of one's own needs its sha256.
        if value(.runnerVersion) != nil && value(.tarballSHA256) == nil {
            add(
                .runnerVersion, "the runner download is not pinned",
                fix: "RUNNER_TARBALL_SHA256 with the tarball's sha256 (without RUNNER_VERSION the bundle pins both)")
        }
        if value(.tarballSHA256) != nil && value(.runnerVersion) == nil && value(.tarballURL) == nil {
            add(.tarballSHA256, "pins nothing", fix: "RUNNER_VERSION or RUNNER_TARBALL_URL with it")
        }
        let imageNames = images.map(\.name)
        if Set(imageNames).count != imageNames.count {
            add(.images, "names an image twice", fix: "one entry per image name")
        }
        if options.requireBootstrap {
            if value(.bootstrapRepoRef) == nil && !options.pinnedByUserData {
                add(
                    nil, "RUNNER_BOOTSTRAP_REPO_REF is not set",
                    fix: "the release tag (runner-build userdata --ref pins it)")
            }
            switch bootstrapMode {
            case .bundle:
                if value(.bundleSHA256) == nil && !options.pinnedByUserData {
                    add(
                        nil, "RUNNER_BUNDLE_SHA256 is not set",
                        fix: "the bundle's sha256 (runner-build userdata pins it)")
                }
                if value(.bundleURL) == nil && value(.bootstrapRepoURL) == nil {
                    add(
                        nil, "neither RUNNER_BUNDLE_URL nor RUNNER_BOOTSTRAP_REPO_URL is set",
                        fix: "where bootstrap.sh downloads the bundle")
                }
            case .git:
                if value(.bootstrapRepoURL) == nil {
                    add(.bootstrapMode, "git mode needs RUNNER_BOOTSTRAP_REPO_URL", fix: "the repository to clone")
                }
            }
        }
        if let layout = options.secretFiles {
            for key in [ConfigKey.registrationTokenFile, .jitConfigFile, .patFile, .appPrivateKeyFile] {
                guard let path = value(key), path.hasPrefix("/") else { continue }
                if let problem = RunnerConfig.checkSecretFile(layout.path(path)) {
                    add(key, "\(path) \(problem)", fix: "a regular file with mode 0600 (chmod 600 \(path))")
                }
            }
        }
        return problems
    }

    /// Why `path` is not acceptable as a secret file, or nil.
    static func checkSecretFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return "does not exist or cannot be read" }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return "is not a regular file" }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else { return "has mode \(String(mode, radix: 8)), readable by others" }
        return nil
    }

    /// Why `value` is not acceptable for `key`, or nil.
    static func checkValue(_ value: String, of key: ConfigKey) -> String? {
        if ConfigSyntax.hasControlCharacters(value) && key.kind != .text {
            return "contains a control character (a newline inside quotes?)"
        }
        if value.isEmpty { return nil }  // an empty value means "unset", as in a shell
        let shown = key.isSecret ? "the value" : "\"\(value)\""
        switch key.kind {
        case .text:
            return ConfigSyntax.hasControlCharacters(value) ? "contains a control character" : nil
        case .githubURL:
            guard GitHubURL(value) == nil else { return nil }
            if value.hasPrefix("http://github.com") { return "github.com needs https://" }
            return "\(shown) is not a repository, organization or enterprise URL"
        case .url:
            return ConfigSyntax.isURL(value) ? nil : "\(shown) is not a URL"
        case .proxyURL:
            return ConfigSyntax.isURL(value) ? nil : "\(shown) is not a proxy URL"
        case .boolean:
            return value == "true" || value == "false" ? nil : "\(shown) is not a boolean"
        case .onOff:
            return value == "on" || value == "off" ? nil : "\(shown) is neither on nor off"
        case .runnerName:
            let ok =
                value.count <= 64
                && value.unicodeScalars.allSatisfy { ConfigSyntax.isAlnum($0) || "._-".unicodeScalars.contains($0) }
            return ok ? nil : "\(shown) is not a valid runner name"
        case .labels:
            let parts = value.split(separator: ",", omittingEmptySubsequences: false).map {
                String($0).trimmingSpaces()
            }
            if parts.contains(where: \.isEmpty) { return "has an empty label (two commas, or a trailing comma)" }
            if let bad = parts.first(where: { label in
                label.count > 256
                    || !label.unicodeScalars.allSatisfy {
                        ConfigSyntax.isAlnum($0) || "._-:/".unicodeScalars.contains($0)
                    }
            }) {
                return "label \"\(bad)\" has characters GitHub labels cannot have"
            }
            if parts.count > 100 { return "has \(parts.count) labels; GitHub allows 100" }
            return nil
        case .absolutePath:
            return isCleanAbsolutePath(value) ? nil : "\(shown) is not an absolute path without '..'"
        case .absolutePaths:
            if let bad = words(value).first(where: { !isCleanAbsolutePath($0) || $0 == "/" }) {
                return "\"\(bad)\" is not an absolute path without '..' (and not /)"
            }
            return nil
        case .userName:
            let ok =
                value != "root" && value.count <= 32
                && value.unicodeScalars.first.map({ ("a"..."z").contains($0) || $0 == "_" }) == true
                && value.unicodeScalars.allSatisfy { ConfigSyntax.isLowerAlnum($0) || $0 == "_" || $0 == "-" }
            return ok ? nil : "\(shown) is not a user name the runner can use"
        case .secret:
            return value.contains(" ") ? "contains a space; tokens never do (a copy-paste error?)" : nil
        case .numericID:
            return value.allSatisfy({ $0.isASCII && $0.isNumber }) && value.count <= 20
                ? nil : "\(shown) is not a number"
        case .version:
            let parts = value.split(separator: ".", omittingEmptySubsequences: false)
            let ok = parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
            return ok ? nil : "\(shown) is not a version X.Y.Z (no leading v)"
        case .sha256:
            return SHA256Digest.isValidHex(value) ? nil : "\(shown) is not 64 hex digits"
        case .bootstrapMode:
            return value == "bundle" || value == "git" ? nil : "\(shown) is not a bootstrap mode"
        case .gitRef:
            let ok =
                !value.hasPrefix("-") && !value.contains("..") && value.count <= 200
                && value.unicodeScalars.allSatisfy { ConfigSyntax.isAlnum($0) || "._-/+".unicodeScalars.contains($0) }
            return ok ? nil : "\(shown) is not a tag or branch name"
        case .imageSpecs:
            if let bad = words(value).first(where: { ImageSpec($0) == nil }) {
                return "\"\(bad)\" is not NAME=URL@sha256:HEX"
            }
            return nil
        case .imageName:
            return ConfigSyntax.isImageName(value) ? nil : "\(shown) is not an image name"
        case .imageAliases:
            if let bad = words(value).first(where: { ImageAlias($0) == nil }) {
                return "\"\(bad)\" is not ALIAS=NAME"
            }
            return nil
        case .hostList:
            return value.contains(where: { $0 == " " || $0 == "\t" })
                ? "contains spaces; separate hosts with commas" : nil
        case .capabilities:
            if let bad = words(value).first(where: { LinuxCapability.canonicalName($0) == nil }) {
                return "\"\(bad)\" is not a Linux capability name"
            }
            return nil
        case .imagePullPolicy:
            return ImagePullPolicy(rawValue: value) == nil ? "\(shown) is not missing, always or never" : nil
        case .byteSize:
            return byteSize(value) == nil ? "\(shown) is not a size (e.g. 512M or 20G)" : nil
        case .registries:
            let parts = value.split(separator: ",", omittingEmptySubsequences: false)
            if let bad = parts.first(where: { part in
                part.isEmpty
                    || (part != "*"
                        && !part.unicodeScalars.allSatisfy {
                            ConfigSyntax.isAlnum($0) || ".-:[]".unicodeScalars.contains($0)
                        })
            }) {
                return "\"\(bad)\" is not a registry name (HOST[:PORT])"
            }
            return nil
        case .registryMirrors:
            if let bad = words(value).first(where: { mirror($0) == nil }) {
                return "\"\(bad)\" is not REGISTRY=URL[,URL]"
            }
            return nil
        case .guestNetwork:
            return value == "private" || value == "host" ? nil : "\(shown) is neither private nor host"
        case .networks:
            if let bad = words(value).first(where: { !isNetwork($0) }) {
                return "\"\(bad)\" is not an IP address or CIDR network"
            }
            return nil
        case .cpus:
            guard let cpus = Double(value), cpus > 0, cpus <= 4096, value.allSatisfy({ $0.isNumber || $0 == "." })
            else { return "\(shown) is not a positive number of CPUs" }
            return nil
        case .count:
            return UInt64(value).map({ $0 > 0 }) == true ? nil : "\(shown) is not a positive whole number"
        }
    }

    static func isCleanAbsolutePath(_ path: String) -> Bool {
        path.hasPrefix("/") && !path.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
    }

    /// The known key closest to `name` by edit distance, when it is close enough to be a typo.
    static func closestKey(to name: String) -> String? {
        let upper = name.uppercased()
        var best: (String, Int)? = nil
        for key in ConfigKey.all {
            let distance = editDistance(Array(upper.utf8), Array(key.name.utf8))
            if distance < (best?.1 ?? Int.max) { best = (key.name, distance) }
        }
        guard let best, best.1 <= max(2, name.utf8.count / 4) else { return nil }
        return best.0
    }

    static func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}

extension ConfigKey {
    /// Why `value` is not acceptable for this key (naming the problem, not the key), or nil.
    /// An empty value is acceptable: it means unset.
    public func problem(with value: String) -> String? {
        RunnerConfig.checkValue(value, of: self)
    }
}
