import RunnerCore
import RunnerImages
import Testing

@Suite struct AuthChallengeTests {
    @Test func bearerWithQuotedParameters() throws {
        let challenge = try #require(
            AuthChallenge(
                header:
                    #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull,push""#
            ))
        #expect(challenge.scheme == "bearer")
        #expect(challenge.realm == "https://auth.docker.io/token")
        #expect(challenge.service == "registry.docker.io")
        #expect(challenge.scope == "repository:library/node:pull,push")
    }

    @Test func basicAndUnquotedAndEscapes() throws {
        let basic = try #require(AuthChallenge(header: #"Basic realm="Registry Realm""#))
        #expect(basic.scheme == "basic")
        #expect(basic.realm == "Registry Realm")
        let odd = try #require(AuthChallenge(header: #"BEARER Realm=http://127.0.0.1:1/t , service="a\"b""#))
        #expect(odd.scheme == "bearer")
        #expect(odd.realm == "http://127.0.0.1:1/t")
        #expect(odd.service == #"a"b"#)
        #expect(AuthChallenge(header: "") == nil)
    }

    @Test func credentialsMatchTheirRegistry() throws {
        let job = RegistryCredentials(username: "u", password: Secret("p"), serverURL: "https://index.docker.io/v1/")
        #expect(job.apply(to: "docker.io"))
        #expect(!job.apply(to: "ghcr.io"))
        #expect(RegistryCredentials(username: "u", password: Secret("p")).apply(to: "ghcr.io"))
        #expect("\(job.password)" == "<redacted>")
    }

    @Test func authFileEntries() throws {
        let json =
            #"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpwOnc="}, "ghcr.io": {"username": "a", "password": "b"}}}"#
        let file = try RegistryAuthFile.parse(Array(json.utf8), source: "test")
        let docker = try #require(file.credentials(for: "docker.io"))
        #expect(docker.username == "u")
        #expect(docker.password.value == "p:w")
        #expect(file.credentials(for: "ghcr.io")?.password.value == "b")
        #expect(file.credentials(for: "quay.io") == nil)
    }

    /// A config.env with only the keys given (the credential and URL a host needs are not).
    static func config(_ bytes: [UInt8], source: String = "test") throws -> RunnerConfig {
        let (config, problems) = RunnerConfig.check(bytes, source: source, options: .syntax)
        let ours = problems.filter {
            $0.key?.hasPrefix("RUNNER_IMAGE") == true || $0.key?.hasPrefix("RUNNER_REGISTR") == true
        }
        guard let config, ours.isEmpty else {
            throw RunnerError(.invalidConfig, input: source, problem: ours.map(\.description).joined(separator: "; "))
        }
        return config
    }

    @Test func configKeys() throws {
        let config = try Self.config(
            Array(
                """
                RUNNER_IMAGE_PULL=always
                RUNNER_IMAGE_CACHE_MAX=512M
                RUNNER_REGISTRIES=docker.io,127.0.0.1:5000
                RUNNER_REGISTRY_MIRRORS="docker.io=https://mirror.gcr.io,http://127.0.0.1:5001"
                """.utf8), source: "test")
        #expect(config.imagePull == .always)
        #expect(config.imageCacheMax == 512 << 20)
        #expect(config.registries == ["docker.io", "127.0.0.1:5000"])
        #expect(config.registryMirrors == ["docker.io": ["https://mirror.gcr.io", "http://127.0.0.1:5001"]])
        let defaults = try Self.config([])
        #expect(defaults.imagePull == .missing)
        #expect(defaults.imageCacheMax == 20 << 30)
        #expect(RegistrySettings(config: defaults).allows("ghcr.io"))
        #expect(!RegistrySettings(config: defaults).allows("evil.example"))
        #expect(throws: RunnerError.self) {
            try Self.config(Array("RUNNER_IMAGE_PULL=sometimes\n".utf8))
        }
    }
}
