import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct RunnerConfigTests {
    static let minimal = """
        RUNNER_GITHUB_URL=https://github.com/acme/widgets
        RUNNER_REGISTRATION_TOKEN=AABBCC
        """

    func problems(_ text: String, options: RunnerConfig.Options = .render) -> [ConfigProblem] {
        RunnerConfig.check(Array(text.utf8), source: "site.env", options: options).1
    }

    @Test func everyKeyIsDefinedOnceWithASummaryAndAValidExample() {
        #expect(Set(ConfigKey.all.map(\.name)).count == ConfigKey.all.count)
        let required = [
            "RUNNER_GITHUB_URL", "RUNNER_NAME", "RUNNER_LABELS", "RUNNER_GROUP", "RUNNER_EPHEMERAL",
            "RUNNER_NO_DEFAULT_LABELS", "RUNNER_WORK_DIR", "RUNNER_USER", "RUNNER_REGISTRATION_TOKEN",
            "RUNNER_REGISTRATION_TOKEN_FILE", "RUNNER_JIT_CONFIG", "RUNNER_JIT_CONFIG_FILE", "RUNNER_PAT",
            "RUNNER_PAT_FILE", "RUNNER_APP_ID", "RUNNER_APP_INSTALLATION_ID", "RUNNER_APP_PRIVATE_KEY_FILE",
            "RUNNER_VERSION", "RUNNER_TARBALL_URL", "RUNNER_TARBALL_SHA256", "RUNNER_BUNDLE_URL",
            "RUNNER_BUNDLE_SHA256",
            "RUNNER_BOOTSTRAP_MODE", "RUNNER_BOOTSTRAP_REPO_URL", "RUNNER_BOOTSTRAP_REPO_REF", "RUNNER_IMAGES",
            "RUNNER_DEFAULT_IMAGE", "RUNNER_IMAGE_ALIASES", "RUNNER_REQUIRE_JOB_CONTAINER", "RUNNER_ALLOW_DOCKER_SOCK",
            "RUNNER_GUEST_MOUNT_ALLOW", "RUNNER_GUEST_USERNS", "RUNNER_GUEST_CAP_ADD",
            "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
        ]
        #expect(Set(required).isSubset(of: ConfigKey.all.map(\.name)))
        for key in ConfigKey.all {
            #expect(!key.summary.isEmpty)
            #expect(key.problem(with: key.example) == nil, "\(key.name)'s example \(key.example)")
            if let value = key.defaultValue { #expect(key.problem(with: value) == nil, "\(key.name) default") }
        }
        #expect(
            ConfigKey.all.filter(\.isSecret).map(\.name) == [
                "RUNNER_REGISTRATION_TOKEN", "RUNNER_JIT_CONFIG", "RUNNER_PAT",
            ])
        #expect(ConfigKey.named("RUNNER_USER")?.defaultValue == "runner")
        #expect(ConfigKey.named("RUNNER_WORK_DIR")?.defaultValue == "/var/lib/runner/work")
        #expect(ConfigKey.named("RUNNER_DEFAULT_IMAGE")?.defaultValue == "debian-bookworm")
    }

    @Test func exampleDocumentsEveryKeyAndValidates() throws {
        let example = RunnerConfig.example
        for key in ConfigKey.all {
            #expect(example.contains("\(key.name)="), "\(key.name) missing from the example")
        }
        #expect(problems(example).isEmpty, "\(problems(example))")
    }

    /// Each key has one default, its ``ConfigKey/defaultValue``: the typed accessors of a config
    /// that sets nothing give exactly those, and ``ConfigKey/Defaults`` are the same values.
    @Test func accessorsGiveTheDefaultsDeclaredInConfigKey() {
        let empty = RunnerConfig.empty
        for key in ConfigKey.all { #expect(empty.value(key) == key.defaultValue, "\(key.name)") }
        #expect(empty.workDirectory == ConfigKey.workDirectory.defaultValue)
        #expect(empty.user == ConfigKey.user.defaultValue)
        #expect(empty.defaultImage == ConfigKey.defaultImage.defaultValue)
        #expect(empty.bootstrapMode.rawValue == ConfigKey.bootstrapMode.defaultValue)
        #expect(empty.guestUserNamespace == (ConfigKey.guestUserNamespace.defaultValue == "on"))
        #expect(ConfigKey.Defaults.workDirectory == ConfigKey.workDirectory.defaultValue)
        #expect(ConfigKey.Defaults.user == ConfigKey.user.defaultValue)
        #expect(ConfigKey.Defaults.defaultImage == ConfigKey.defaultImage.defaultValue)
        #expect(ConfigKey.Defaults.bootstrapMode.rawValue == ConfigKey.bootstrapMode.defaultValue)
        for key in [ConfigKey.ephemeral, .noDefaultLabels, .requireJobContainer, .allowDockerSock] {
            #expect(empty.bool(key) == (key.defaultValue == "true"), "\(key.name)")
        }
        // An empty value is unset: the default again.
        let blank = RunnerConfig(source: "c", values: ["RUNNER_WORK_DIR": "", "RUNNER_USER": ""])
        #expect(blank.workDirectory == ConfigKey.Defaults.workDirectory && blank.user == ConfigKey.Defaults.user)
        #expect(HostLayout(root: "/tmp/t").workDirectory == "/tmp/t" + ConfigKey.Defaults.workDirectory)
    }

    /// A `*_FILE` secret is read without surrounding whitespace; an unreadable or empty file is a
    /// configuration error naming it.
    @Test func secretFilesAreReadTrimmed() async throws {
        try await withTemporaryDirectory("secret") { dir in
            let layout = dir.layout
            try AtomicFile.write("\n  tok\t\r\n", to: layout.path("/etc/runner/token"), mode: 0o600)
            #expect(try SecretSource.file("/etc/runner/token").read(layout: layout) == "tok")
            try AtomicFile.write(" \r\n", to: layout.path("/etc/runner/token"), mode: 0o600)
            let empty = #expect(throws: RunnerError.self) {
                try SecretSource.file("/etc/runner/token").read(layout: layout)
            }
            #expect(
                empty?.code == .invalidConfig && empty?.input == "/etc/runner/token" && empty?.problem == "is empty")
            let missing = #expect(throws: RunnerError.self) {
                try SecretSource.file("/etc/runner/x").read(layout: layout)
            }
            #expect(missing?.code == .invalidConfig && missing?.problem == "cannot be read")
        }
    }

    @Test func minimalConfigHasDefaults() throws {
        let config = try RunnerConfig.parse(Array(Self.minimal.utf8), source: "site.env", options: .render)
        #expect(config.user == "runner")
        #expect(config.workDirectory == "/var/lib/runner/work")
        #expect(config.defaultImage == "debian-bookworm")
        #expect(config.ephemeral == false)
        #expect(config.bootstrapMode == .bundle)
        #expect(config.labels.isEmpty)
        #expect(config.credential == .registrationToken(.inline("AABBCC")))
        #expect(config.githubURL?.apiBaseURL == "https://api.github.com")
    }

    @Test(arguments: [
        ("https://github.com/acme/widgets", "repos/acme/widgets", "https://api.github.com"),
        ("https://github.com/acme/widgets.git/", "repos/acme/widgets", "https://api.github.com"),
        ("https://github.com/acme", "orgs/acme", "https://api.github.com"),
        ("https://github.com/enterprises/big-co", "enterprises/big-co", "https://api.github.com"),
        ("https://ghes.example.com/acme/widgets", "repos/acme/widgets", "https://ghes.example.com/api/v3"),
        ("https://ghes.example.com:8443/acme", "orgs/acme", "https://ghes.example.com:8443/api/v3"),
        ("https://octo.ghe.com/acme", "orgs/acme", "https://api.octo.ghe.com"),
        ("http://127.0.0.1:8080/acme/widgets", "repos/acme/widgets", "http://127.0.0.1:8080/api/v3"),
    ])
    func githubURLKinds(_ text: String, _ scope: String, _ api: String) throws {
        let url = try #require(GitHubURL(text))
        #expect(url.apiScopePath == scope)
        #expect(url.apiBaseURL == api)
        #expect(url.registrationTokenURL == "\(api)/\(scope)/actions/runners/registration-token")
    }

    @Test(arguments: [
        "github.com/acme", "https://github.com", "https://github.com/a/b/c", "http://github.com/acme",
        "https://github.com/enterprises", "ftp://github.com/acme", "https://github.com/ac me",
    ])
    func badGitHubURLs(_ text: String) {
        #expect(GitHubURL(text) == nil)
    }

    @Test func unknownKeySuggestsTheClosest() {
        let found = problems(Self.minimal + "\nRUNNER_LABEL=linux\nRUNER_EPHEMERAL=true\nFOO=1\n")
        #expect(found.map(\.line) == [3, 4, 5])
        #expect(found[0].key == "RUNNER_LABEL" && found[0].fix == "did you mean RUNNER_LABELS?")
        #expect(found[1].fix == "did you mean RUNNER_EPHEMERAL?")
        #expect(found[2].fix?.contains("did you mean") == false)
    }

    @Test(arguments: [
        ("RUNNER_EPHEMERAL=yes", "RUNNER_EPHEMERAL", "true or false"),
        ("RUNNER_WORK_DIR=work", "RUNNER_WORK_DIR", "an absolute path"),
        ("RUNNER_USER=root", "RUNNER_USER", "a Unix user name"),
        ("RUNNER_LABELS=linux,,gpu", "RUNNER_LABELS", "comma-separated labels"),
        ("RUNNER_LABELS=\"linux, big gpu\"", "RUNNER_LABELS", "comma-separated labels"),
        ("RUNNER_VERSION=v2.336.0", "RUNNER_VERSION", "X.Y.Z"),
        ("RUNNER_BUNDLE_SHA256=abc", "RUNNER_BUNDLE_SHA256", "64 hex digits"),
        ("RUNNER_BOOTSTRAP_MODE=tarball", "RUNNER_BOOTSTRAP_MODE", "bundle or git"),
        ("RUNNER_IMAGES=debian=https://x/rootfs.tar.zst", "RUNNER_IMAGES", "NAME=URL@sha256:HEX"),
        ("RUNNER_IMAGE_ALIASES=ubuntu:22.04", "RUNNER_IMAGE_ALIASES", "ALIAS=NAME"),
        ("RUNNER_DEFAULT_IMAGE=Debian", "RUNNER_DEFAULT_IMAGE", "lowercase"),
        ("HTTP_PROXY=proxy:3128", "HTTP_PROXY", "http://HOST:PORT"),
        ("RUNNER_GUEST_MOUNT_ALLOW=\"/srv ../up\"", "RUNNER_GUEST_MOUNT_ALLOW", "absolute paths"),
        ("RUNNER_NAME=\"my runner\"", "RUNNER_NAME", "letters, digits"),
        ("RUNNER_GUEST_CAP_ADD=\"NET_ADMIN ALL\"", "RUNNER_GUEST_CAP_ADD", "capability names"),
    ])
    func badValuesNameKeyLineAndForm(_ line: String, _ key: String, _ form: String) {
        let found = problems(Self.minimal + "\n" + line + "\n").filter { $0.fix?.contains(form) == true }
        #expect(found.count == 1, "\(found)")
        #expect(found.first?.line == 3)
        #expect(found.first?.key == key)
        #expect(found.first?.description.hasPrefix("line 3: \(key): ") == true)
    }

    @Test func duplicateKeysAreRefusedNamingBothLines() {
        let found = problems(Self.minimal + "\nRUNNER_LABELS=a\nRUNNER_LABELS=b\n")
        #expect(found.count == 1)
        #expect(found.first?.line == 4)
        #expect(found.first?.message.contains("first set on line 3") == true)
    }

    @Test func parserProblemsBecomeConfigProblems() {
        let found = problems(Self.minimal + "\nRUNNER_LABELS\n# trailing \\\nRUNNER_NAME=x\n")
        #expect(found.map(\.line) == [3, 4])
    }

    @Test func credentialsMustBeExactlyOne() {
        let url = "RUNNER_GITHUB_URL=https://github.com/acme\n"
        #expect(problems(url).contains { $0.message == "no credential is set" })
        #expect(problems(url, options: .syntax).isEmpty)
        #expect(
            problems(url + "RUNNER_PAT=x\nRUNNER_REGISTRATION_TOKEN=y\n").contains {
                $0.message.contains("more than one credential")
            })
        #expect(
            problems(url + "RUNNER_PAT=x\nRUNNER_PAT_FILE=/etc/runner/pat\n").contains {
                $0.key == "RUNNER_PAT_FILE" && $0.line == 3
            })
        #expect(
            problems(url + "RUNNER_APP_ID=1\nRUNNER_APP_INSTALLATION_ID=2\n").contains {
                $0.message.contains("RUNNER_APP_PRIVATE_KEY_FILE")
            })
        let app =
            url + "RUNNER_APP_ID=1\nRUNNER_APP_INSTALLATION_ID=2\nRUNNER_APP_PRIVATE_KEY_FILE=/etc/runner/app.pem\n"
        #expect(problems(app).isEmpty)
        let enterprise = app.replacing("https://github.com/acme", with: "https://github.com/enterprises/acme")
        #expect(problems(enterprise).contains { $0.message.contains("enterprise runners cannot") })
    }

    @Test func combinationsAreChecked() {
        #expect(problems(Self.minimal + "\nRUNNER_NO_DEFAULT_LABELS=true\n").first?.key == "RUNNER_NO_DEFAULT_LABELS")
        #expect(problems(Self.minimal + "\nRUNNER_GROUP=ci\n").first?.key == "RUNNER_GROUP")
        #expect(problems(Self.minimal + "\nRUNNER_VERSION=2.336.0\n").first?.message.contains("not pinned") == true)
        let hex = String(repeating: "a", count: 64)
        let images = "RUNNER_IMAGES=\"a=https://x/a.tar.zst@sha256:\(hex) a=https://x/b.tar.zst@sha256:\(hex)\"\n"
        #expect(problems(Self.minimal + "\n" + images).first?.message.contains("twice") == true)
        let host = problems(Self.minimal, options: .host(HostLayout(root: "/nonexistent")))
        #expect(host.map(\.message).contains("RUNNER_BOOTSTRAP_REPO_REF is not set"))
        #expect(host.map(\.message).contains("RUNNER_BUNDLE_SHA256 is not set"))
    }

    @Test func typedAccessors() throws {
        let hex = String(repeating: "B", count: 64)
        let text =
            Self.minimal + """

                RUNNER_LABELS=" linux , nspawn,gpu "
                RUNNER_EPHEMERAL=true
                RUNNER_IMAGES="debian-bookworm=https://u:p@x.example/a.tar.zst@sha256:\(hex) alpine=https://x.example/b@sha256:\(hex)"
                RUNNER_IMAGE_ALIASES="ubuntu:22.04=debian-bookworm ghcr.io/acme/build:1=alpine"
                RUNNER_GUEST_MOUNT_ALLOW="/srv/cache /data"
                HTTPS_PROXY=http://user:secret@proxy:3128
                NO_PROXY=localhost,.internal
                """
        let config = try RunnerConfig.parse(Array(text.utf8), source: "site.env", options: .render)
        #expect(config.labels == ["linux", "nspawn", "gpu"])
        #expect(config.ephemeral)
        #expect(config.images.map(\.name) == ["debian-bookworm", "alpine"])
        #expect(config.images.first?.url == "https://u:p@x.example/a.tar.zst")
        #expect(config.images.first?.sha256 == String(repeating: "b", count: 64))
        #expect(config.imageAliases.map(\.alias) == ["ubuntu:22.04", "ghcr.io/acme/build:1"])
        #expect(config.guestMountAllow == ["/srv/cache", "/data"])
        #expect(config.proxyEnvironment["https_proxy"] == "http://user:secret@proxy:3128")
        #expect(config.proxyEnvironment["NO_PROXY"] == "localhost,.internal")
    }

    @Test func runnerTarballURLIsExplicitOrDerivedFromTheVersion() throws {
        let hex = String(repeating: "c", count: 64)
        let derived = try RunnerConfig.parse(
            Array((Self.minimal + "\nRUNNER_VERSION=2.336.0\nRUNNER_TARBALL_SHA256=\(hex)\n").utf8), source: "s",
            options: .render)
        #expect(
            derived.runnerTarballURL(architecture: "x64")
                == "https://github.com/actions/runner/releases/download/v2.336.0/actions-runner-linux-x64-2.336.0.tar.gz"
        )
        #expect(derived.tarballSHA256 == hex)
        let minimal = try RunnerConfig.parse(Array(Self.minimal.utf8), source: "s", options: .render)
        #expect(minimal.runnerTarballURL(architecture: "x64") == nil)
    }

    @Test func redactedHidesSecretsAndProxyCredentials() throws {
        let text = Self.minimal + "\nHTTPS_PROXY=http://user:hunter2@proxy:3128\n"
        let config = try RunnerConfig.parse(Array(text.utf8), source: "site.env", options: .render)
        #expect(!config.redacted.contains("AABBCC"))
        #expect(!config.redacted.contains("hunter2"))
        #expect(config.redacted.contains("RUNNER_REGISTRATION_TOKEN=\"<redacted>\""))
        #expect(config.redacted.contains("RUNNER_GITHUB_URL=https://github.com/acme/widgets"))
        #expect(SecretSource.inline("AABBCC").description == "<redacted>")
    }

    @Test func renderedReadsBackToTheSameValues() throws {
        let text =
            "RUNNER_GITHUB_URL=https://github.com/acme\nRUNNER_LABELS=\"a, b\"\nRUNNER_GROUP=\"Team \\\"Q\\\" $x\"\n"
        let config = try RunnerConfig.parse(Array(text.utf8), source: "site.env", options: .syntax)
        let again = try RunnerConfig.parse(Array(config.rendered().utf8), source: "rendered", options: .syntax)
        #expect(again.entries.mapValues(\.value) == config.entries.mapValues(\.value))
        #expect(config.group == "Team \"Q\" $x")
    }

    @Test func pinningRefusesAConflictingValue() throws {
        let config = try RunnerConfig.parse(
            Array((Self.minimal + "\nRUNNER_BOOTSTRAP_REPO_REF=v1.1\n").utf8), source: "site.env", options: .render)
        #expect(throws: RunnerError.self) { try config.pinning([.bootstrapRepoRef: "v1.2"]) { _ in "--ref" } }
        let same = try config.pinning([.bootstrapRepoRef: "v1.1"]) { _ in "--ref" }
        #expect(same.bootstrapRepoRef == "v1.1")
    }

    @Test func secretFilesMustBe0600() async throws {
        try await withTemporaryDirectory("cfg") { dir in
            let layout = dir.layout
            try FilePaths.createDirectory(layout.configDirectory)
            try AtomicFile.write("tok\n", to: layout.path("/etc/runner/token"), mode: 0o644)
            let hex = String(repeating: "0", count: 64)
            let text = """
                RUNNER_GITHUB_URL=https://github.com/acme
                RUNNER_REGISTRATION_TOKEN_FILE=/etc/runner/token
                RUNNER_BOOTSTRAP_REPO_REF=v1.2
                RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner
                RUNNER_BUNDLE_SHA256=\(hex)

                """
            try AtomicFile.write(text, to: layout.configFile, mode: 0o600)
            let loose = RunnerConfig.check(Array(text.utf8), source: "c", options: .host(layout)).1
            #expect(loose.count == 1)
            #expect(loose.first?.key == "RUNNER_REGISTRATION_TOKEN_FILE" && loose.first?.line == 2)
            #expect(loose.first?.message.contains("mode 644") == true)
            chmod(layout.path("/etc/runner/token"), 0o600)
            let config = try RunnerConfig.load(layout: layout)
            #expect(
                try config.credential.map { cred -> String in
                    guard case .registrationToken(let source) = cred else { return "" }
                    return try source.read(layout: layout)
                } == "tok")
        }
    }

    @Test func errorListsEveryProblemWithLines() {
        do {
            _ = try RunnerConfig.parse(
                Array("RUNNER_EPHEMERAL=maybe\nX=1\n".utf8), source: "site.env", options: .render)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidConfig)
            #expect(error.input == "site.env")
            #expect(
                error.problem.contains("line 1: RUNNER_EPHEMERAL: \"maybe\" is not a boolean (expected: true or false)")
            )
            #expect(error.problem.contains("line 2: X: unknown key"))
            #expect(error.problem.contains("RUNNER_GITHUB_URL is not set"))
        }
    }
}
