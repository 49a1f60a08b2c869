import FoundationEssentials
import Logging
import RunnerArchive
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit

#if canImport(Glibc)
    import Glibc
#endif

/// Pulls from a real registry (Debian's `docker-registry`) on 127.0.0.1, at a port unique to the
/// run, with images built by umoci from busybox-static and pushed by skopeo: plain, and behind
/// htpasswd basic auth. Each failure (tampered blob, wrong password, registry down, unknown tag)
/// is a clear error and leaves no tree in the store.
@Suite(
    .requiresRoot, .requires("docker-registry"), .requires("umoci"), .requires("skopeo"), .requires("htpasswd"),
    .requires("busybox"), .requires("curl"), .serialized)
struct RegistryPullTests {
    /// A registry process with its storage and config in `dir`.
    struct Registry {
        let port: Int
        let storage: String
        let process: any ProcessHandle

        func stop() async {
            process.signal(SIGTERM)
            _ = await process.wait()
        }
    }

    static func port() -> Int { 20000 + Int(getpid() % 20000) + Int.random(in: 0..<5000) }

    static func sh(_ script: String) async throws -> String {
        try await SystemCommandRunner().output(Command("/bin/sh", ["-ec", script]))
    }

    /// Starts a registry (with htpasswd basic auth when `user` is set, or token auth with the
    /// realm `tokenRealm` when given) and waits for it.
    static func startRegistry(
        _ dir: TemporaryDirectory, user: (String, String)? = nil, token: TokenServer? = nil
    ) async throws -> Registry {
        let port = port()
        let storage = dir.appending("registry-\(port)")
        try FilePaths.createDirectory(storage)
        var auth = ""
        if let token {
            auth = """
                auth:
                  token:
                    realm: http://127.0.0.1:\(token.port)/token
                    service: runner-test-registry
                    issuer: runner-test
                    rootcertbundle: \(token.certificate)

                """
        } else if let (name, password) = user {
            _ = try await sh("htpasswd -Bbc '\(storage)/htpasswd' '\(name)' '\(password)'")
            auth = "auth:\n  htpasswd:\n    realm: test\n    path: \(storage)/htpasswd\n"
        }
        let config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(storage)/data
            http:
              addr: 127.0.0.1:\(port)
            \(auth)
            """
        try AtomicFile.write(config, to: storage + "/config.yml")
        let process = try SystemCommandRunner().start(
            Command("docker-registry", ["serve", storage + "/config.yml"]),
            options: StartOptions(output: .file(storage + "/log")))
        for _ in 0..<100 {
            if (try? await sh("curl -s -o /dev/null http://127.0.0.1:\(port)/v2/")) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return Registry(port: port, storage: storage, process: process)
    }

    /// A small token service (python3, signing with openssl): a JWT with the certificate in
    /// `x5c`, granting what the scope asks when the basic credentials are right; 401 otherwise.
    struct TokenServer {
        let port: Int
        let certificate: String
        let process: any ProcessHandle

        func stop() async {
            process.signal(SIGTERM)
            _ = await process.wait()
        }
    }

    static let tokenServerScript = #"""
        import base64, http.server, json, os, subprocess, sys, time
        from urllib.parse import urlparse, parse_qs
        key, cert, port, user, password = sys.argv[1:6]
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout
        def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args): pass
            def do_GET(self):
                query = parse_qs(urlparse(self.path).query)
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization", "") != expected:
                    self.send_response(401); self.end_headers(); return
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(der).decode()]}
                claims = {"iss": "runner-test", "sub": user, "aud": query.get("service", [""])[0], "exp": now + 300,
                          "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
                signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
                signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(),
                                           capture_output=True, check=True).stdout
                body = json.dumps({"token": signing + "." + b64(signature)}).encode()
                self.send_response(200); self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        http.server.HTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
        """#

    static func startTokenServer(_ dir: TemporaryDirectory, user: String, password: String) async throws -> TokenServer
    {
        let port = port()
        let work = dir.appending("token-\(port)")
        try FilePaths.createDirectory(work)
        try AtomicFile.write(tokenServerScript, to: work + "/token.py")
        _ = try await sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout '\(work)/key.pem' -out '\(work)/cert.pem' -days 2 "
                + "-subj /CN=runner-test-token 2>/dev/null")
        let process = try SystemCommandRunner().start(
            Command(
                "python3",
                [work + "/token.py", work + "/key.pem", work + "/cert.pem", "\(port)", user, password]),
            options: StartOptions(output: .file(work + "/log")))
        for _ in 0..<100 {
            if (try? await sh("curl -s -o /dev/null http://127.0.0.1:\(port)/token")) != nil { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return TokenServer(port: port, certificate: work + "/cert.pem", process: process)
    }

    /// Builds `busybox` in an OCI layout: layer 1 busybox-static, `/bin/sh` a hard link,
    /// `/etc/os-release` (alpine), files to delete; layer 2 deletes a file and replaces a
    /// directory (whiteouts). Pushes it as `test/busybox:1`.
    static func pushImage(_ dir: TemporaryDirectory, registry: Registry, credentials: String = "") async throws {
        let work = dir.appending("image-\(registry.port)")
        let destCreds = credentials.isEmpty ? "" : "--dest-creds '\(credentials)'"
        _ = try await sh(
            """
            mkdir -p '\(work)' && cd '\(work)'
            umoci init --layout oci
            umoci new --image oci:img
            umoci unpack --image oci:img bundle >/dev/null
            r=bundle/rootfs
            mkdir -p $r/bin $r/etc $r/opt/d
            cp /bin/busybox $r/bin/busybox && ln $r/bin/busybox $r/bin/sh
            printf 'NAME="Alpine Linux"\\nID=alpine\\nVERSION_ID=3.20.0\\n' > $r/etc/os-release
            echo gone > $r/etc/gone && echo old > $r/opt/d/old
            umoci repack --image oci:img bundle >/dev/null
            rm $r/etc/gone && rm -r $r/opt/d && mkdir $r/opt/d && echo new > $r/opt/d/new
            umoci repack --image oci:img bundle >/dev/null
            umoci config --image oci:img --config.cmd /bin/sh --config.env PATH=/bin >/dev/null
            skopeo copy --quiet --dest-tls-verify=false \(destCreds) oci:oci:img docker://127.0.0.1:\(registry.port)/test/busybox:1
            """)
    }

    static func store(_ dir: TemporaryDirectory, registry: Registry) -> RegistryImageStore {
        RegistryImageStore(
            layout: HostLayout(root: dir.appending("host")),
            settings: RegistrySettings(allowed: ["127.0.0.1:\(registry.port)"], retryDelays: [0.1, 0.1]))
    }

    static func trees(_ store: RegistryImageStore) -> [String] {
        FilePaths.entries(of: store.layout.ociTreesDirectory).sorted()
    }

    @Test func pullsUnpacksWithWhiteoutsAndShiftsOwners() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir)
            defer { Task { await registry.stop() } }
            try await Self.pushImage(dir, registry: registry)
            let store = Self.store(dir, registry: registry)
            let reference = try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:1")
            #expect(store.lookup(reference) == nil)
            let image = try await store.pull(reference, credentials: nil)
            let rootfs = image.rootfs
            #expect(fileText(rootfs + "/etc/os-release")?.contains("ID=alpine") == true)
            #expect(!FilePaths.exists(rootfs + "/etc/gone"))
            #expect(FilePaths.entries(of: rootfs + "/opt/d") == ["new"])
            let busybox = try #require(lstatOf(rootfs + "/bin/busybox"))
            let sh = try #require(lstatOf(rootfs + "/bin/sh"))
            #expect(busybox.st_ino == sh.st_ino)
            #expect(busybox.st_uid == GuestUserNamespace.standard.base)
            #expect(try ImageOwnership.marker(version: image.treeDirectory) == .standard)
            let config = try FilePaths.read(image.configPath)
            #expect(String(decoding: config, as: UTF8.self).contains("/bin/sh"))
            #expect(image.manifestDigest.hasPrefix("sha256:"))
            #expect(store.lookup(reference)?.treeDirectory == image.treeDirectory)
            #expect(store.list().count == 1)
            // Pulled again: nothing new is downloaded or unpacked.
            let again = try await store.pull(reference, credentials: nil)
            #expect(again.treeDirectory == image.treeDirectory)
            // By digest, and removed.
            let pinned = try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox@\(image.manifestDigest)")
            #expect(store.lookup(pinned)?.treeDirectory == image.treeDirectory)
            try store.remove(reference)
            #expect(store.list().isEmpty)
            #expect(FilePaths.entries(of: store.layout.ociBlobsDirectory).isEmpty)
        }
    }

    @Test func tamperedBlobUnknownTagAndDownRegistryLeaveNothing() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir)
            try await Self.pushImage(dir, registry: registry)
            let store = Self.store(dir, registry: registry)
            let base = "127.0.0.1:\(registry.port)/test/busybox"

            let unknown = await #expect(throws: RunnerError.self) {
                try await store.pull(try ImageReference(parsing: base + ":nope"), credentials: nil)
            }
            #expect(unknown?.code == .notFound)

            // Flip a byte of the largest blob (a layer) in the registry's storage.
            _ = try await Self.sh(
                """
                f=$(find '\(registry.storage)/data' -path '*/blobs/*' -name data -type f -printf '%s %p\\n' | sort -n | tail -1 | cut -d' ' -f2)
                printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
                """)
            let tampered = await #expect(throws: RunnerError.self) {
                try await store.pull(try ImageReference(parsing: base + ":1"), credentials: nil)
            }
            #expect(tampered?.code == .integrity)
            #expect(tampered?.problem.contains("arrived as sha256:") == true)
            #expect(Self.trees(store).isEmpty)
            #expect(!FilePaths.entries(of: store.layout.ociBlobsDirectory).contains { $0.hasPrefix(".") })

            await registry.stop()
            let down = await #expect(throws: RunnerError.self) {
                try await store.pull(try ImageReference(parsing: base + ":1"), credentials: nil)
            }
            #expect(down?.code == .network)
            #expect(Self.trees(store).isEmpty)

            let refused = await #expect(throws: RunnerError.self) {
                try await store.pull(try ImageReference(parsing: "quay.io/x/y:1"), credentials: nil)
            }
            #expect(refused?.code == .permission)
        }
    }

    @Test func basicAuthWithTheJobsCredentials() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir, user: ("ci", "right-password"))
            defer { Task { await registry.stop() } }
            try await Self.pushImage(dir, registry: registry, credentials: "ci:right-password")
            let store = Self.store(dir, registry: registry)
            let reference = try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:1")

            let anonymous = await #expect(throws: RunnerError.self) {
                try await store.pull(reference, credentials: nil)
            }
            #expect(anonymous?.code == .permission)
            let wrong = await #expect(throws: RunnerError.self) {
                try await store.pull(
                    reference, credentials: RegistryCredentials(username: "ci", password: Secret("wrong")))
            }
            #expect(wrong?.code == .permission)
            #expect(wrong?.description.contains("wrong") == false)
            #expect(Self.trees(store).isEmpty)

            let image = try await store.pull(
                reference, credentials: RegistryCredentials(username: "ci", password: Secret("right-password")))
            #expect(FilePaths.exists(image.rootfs + "/bin/busybox"))
        }
    }

    @Test(.requires("openssl"), .requires("python3"))
    func bearerTokensFromTheChallengesRealm() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let token = try await Self.startTokenServer(dir, user: "ci", password: "token-password")
            let registry = try await Self.startRegistry(dir, token: token)
            defer {
                Task {
                    await registry.stop()
                    await token.stop()
                }
            }
            try await Self.pushImage(dir, registry: registry, credentials: "ci:token-password")
            let store = Self.store(dir, registry: registry)
            let reference = try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:1")
            let anonymous = await #expect(throws: RunnerError.self) {
                try await store.pull(reference, credentials: nil)
            }
            #expect(anonymous?.code == .permission)
            let wrong = await #expect(throws: RunnerError.self) {
                try await store.pull(
                    reference, credentials: RegistryCredentials(username: "ci", password: Secret("nope")))
            }
            #expect(wrong?.code == .permission)
            #expect(wrong?.problem.contains("token service") == true)
            #expect(Self.trees(store).isEmpty)
            let image = try await store.pull(
                reference, credentials: RegistryCredentials(username: "ci", password: Secret("token-password")))
            #expect(FilePaths.exists(image.rootfs + "/bin/busybox"))
        }
    }

    /// `ci-nspawn-run pull` as the hook calls it: the request (with credentials) on stdin, one
    /// JSON line on stdout, progress on stderr, the password nowhere in either.
    @Test(.enabled(if: BuiltProducts.runnerAgent != nil, "needs .build/debug/runner-agent (swift build)"))
    func helperPullReadsStdinAndAnswersOneJSONLine() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir, user: ("ci", "helper-password"))
            defer { Task { await registry.stop() } }
            try await Self.pushImage(dir, registry: registry, credentials: "ci:helper-password")
            let root = dir.appending("host")
            try AtomicFile.write(
                "RUNNER_REGISTRIES=127.0.0.1:\(registry.port)\nRUNNER_IMAGE_CACHE_MAX=1G\n",
                to: root + "/etc/runner/config.env", mode: 0o600)
            let agent = try #require(BuiltProducts.runnerAgent)
            let request = RegistryPullRequest(
                reference: "127.0.0.1:\(registry.port)/test/busybox:1",
                credentials: RegistryCredentials(username: "ci", password: Secret("helper-password")))
            let result = try await SystemCommandRunner().run(
                Command(agent, ["guest", "pull"], environment: ["RUNNER_HOST_ROOT": root]),
                input: Array(try JSONEncoder().encode(request)), output: .captured)
            #expect(result.status.isSuccess, "\(result.standardError)")
            let lines = result.standardOutput.split(separator: "\n")
            #expect(lines.count == 1)
            let response = try JSONDecoder().decode(RegistryPullResponse.self, from: Data((lines.first ?? "").utf8))
            #expect(response.reference == request.reference)
            #expect(response.digest.hasPrefix("sha256:"))
            #expect(FilePaths.exists(response.tree + "/rootfs/bin/busybox"))
            #expect(result.standardError.contains("pulling"))
            #expect(!result.standardError.contains("helper-password"))
            #expect(!result.standardOutput.contains("helper-password"))
        }
    }

    /// An index names the image for several platforms: the host's is chosen; an index without
    /// it fails naming what it has, and leaves nothing.
    @Test func multiPlatformIndexResolvesToThisHost() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir)
            defer { Task { await registry.stop() } }
            try await Self.pushImage(dir, registry: registry)
            let host = OCIPlatform.host
            let base = "http://127.0.0.1:\(registry.port)/v2/test/busybox/manifests"
            _ = try await Self.sh(
                "curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' -o '\(dir.appending("m.json"))' '\(base)/1'"
            )
            let digest = "sha256:" + (try SHA256Digest.hex(ofFile: dir.appending("m.json")))
            let size = try FilePaths.read(dir.appending("m.json")).count
            func entry(_ platform: OCIPlatform) -> OCIDescriptor {
                OCIDescriptor(
                    mediaType: OCIMediaType.ociManifest, digest: digest, size: Int64(size), platform: platform)
            }
            let s390x = OCIPlatform(os: "linux", architecture: "s390x")
            for (tag, entries) in [("multi", [entry(s390x), entry(host)]), ("other", [entry(s390x)])] {
                try AtomicFile.write(
                    Array(try JSONEncoder().encode(OCIIndex(manifests: entries))), to: dir.appending(tag))
                _ = try await Self.sh(
                    "curl -sf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' "
                        + "--data-binary @'\(dir.appending(tag))' '\(base)/\(tag)'")
            }
            let store = Self.store(dir, registry: registry)
            let single = try await store.pull(
                try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:1"), credentials: nil)
            let multi = try await store.pull(
                try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:multi"), credentials: nil)
            #expect(multi.manifestDigest == single.manifestDigest)
            #expect(multi.record.references.count == 2)
            // The index it was reached through stays with the tree (the blob collector keeps it).
            #expect(multi.record.blobs.count == single.record.blobs.count + 1)
            let missing = await #expect(throws: RunnerError.self) {
                try await store.pull(
                    try ImageReference(parsing: "127.0.0.1:\(registry.port)/test/busybox:other"), credentials: nil)
            }
            #expect(missing?.code == .notFound)
            #expect(missing?.problem.contains("linux/s390x") == true)
            #expect(store.list().count == 1)
        }
    }

    /// `prepare_job`'s image resolution through the real helper (the built agent's `guest pull`
    /// at the layout's `ci-nspawn-run`, as root): the first job pulls, the second finds the
    /// image in the store without the registry (stopped by then); the job's owner pins it; with
    /// `RUNNER_IMAGE_PULL=never` an image the store lacks fails naming the reference.
    @Test(.enabled(if: BuiltProducts.runnerAgent != nil, "needs .build/debug/runner-agent (swift build)"))
    func aJobPreparedTwicePullsOnce() async throws {
        try await withTemporaryDirectory("registry") { dir in
            let registry = try await Self.startRegistry(dir)
            try await Self.pushImage(dir, registry: registry)
            let layout = HostLayout(root: dir.appending("host"))
            try AtomicFile.write(
                "RUNNER_REGISTRIES=127.0.0.1:\(registry.port)\n", to: layout.configFile, mode: 0o600)
            let agent = try #require(BuiltProducts.runnerAgent)
            let calls = dir.appending("helper.log")
            try AtomicFile.write(
                "#!/bin/sh\necho \"$*\" >> '\(calls)'\nRUNNER_HOST_ROOT='\(layout.root)' exec '\(agent)' guest \"$@\"\n",
                to: layout.guestHelper, mode: 0o755)
            let owner = try Spawner.spawn(
                Command("sleep", ["600"]), options: SpawnOptions(standardOutput: .devNull, standardError: .devNull))
            defer { owner.signal(SIGKILL) }
            func hook(_ pull: RunnerConfig.ImagePullPolicy) -> ContainerHook {
                var settings = HookSettings()
                settings.imagePull = pull
                let policy = GuestPolicy(layout: layout)
                return ContainerHook(
                    settings: settings, policy: policy,
                    guests: LocalGuests(manager: GuestManager(policy: policy, logger: Logger(label: "test"))),
                    logger: Logger(label: "test"), ownerPID: owner.pid)
            }
            func log() -> String { String(decoding: (try? FilePaths.read(calls)) ?? [], as: UTF8.self) }
            let reference = "127.0.0.1:\(registry.port)/test/busybox:1"

            let first = try await hook(.missing).resolveImage(reference, credentials: nil)
            #expect(first.hasPrefix("sha256:"))
            #expect(log() == "pull --store-only\npull\n")
            await registry.stop()
            let second = try await hook(.missing).resolveImage(reference, credentials: nil)
            #expect(second == first)
            #expect(log() == "pull --store-only\npull\npull --store-only\n")
            // Held by the job's owner (its pull and its lookup), and by nothing else.
            let store = RegistryImageStore(layout: layout)
            #expect(try store.pins().trees == [String(first.dropFirst("sha256:".count))])
            let pinFiles = FilePaths.entries(of: layout.ociPinsDirectory)
            #expect(pinFiles.count == 2 && pinFiles.allSatisfy { $0.contains(".\(owner.pid).") }, "\(pinFiles)")
            #expect(try store.enforceBudget(maxBytes: 1).isEmpty)

            // The runner user's hook: its settings call brings the store's answers (the image, and
            // none for one the store lacks), so resolving asks the helper nothing more.
            let missing = "127.0.0.1:\(registry.port)/test/missing:1"
            // (Without sudo: under sudo the helper ignores RUNNER_HOST_ROOT, as on a host.)
            let helper = HelperGuests(helper: layout.guestHelper, layout: layout, runner: WithoutSudo())
            let answer = try await helper.settings(lookingUp: [reference, missing, "bad ref"], owner: owner.pid)
            #expect(log().hasSuffix("pull --store-only\nsettings --lookup-stdin\n"), "\(log())")
            #expect(answer.lookups.map(\.reference) == [reference, missing])
            #expect(answer.lookups.first?.image?.digest == first)
            #expect(answer.lookups.last?.image == nil)
            let helperCalls = log()
            let prefetched = ContainerHook(
                settings: HookSettings(), policy: GuestPolicy(layout: layout),
                guests: LocalGuests(
                    manager: GuestManager(policy: GuestPolicy(layout: layout), logger: Logger(label: "test"))),
                logger: Logger(label: "test"), ownerPID: owner.pid,
                registry: PrefetchedRegistryImages(
                    answer.lookups,
                    base: HelperRegistryImages(helper: layout.guestHelper, throughSudo: false, owner: owner.pid)))
            #expect(try await prefetched.resolveImage(reference, credentials: nil) == first)
            #expect(log() == helperCalls)
            // RUNNER_IMAGE_PULL=always: the registry is asked in any case, so nothing is looked up.
            let config = try FilePaths.read(layout.configFile)
            try AtomicFile.write(config + Array("RUNNER_IMAGE_PULL=always\n".utf8), to: layout.configFile, mode: 0o600)
            #expect(try await helper.settings(lookingUp: [reference], owner: owner.pid).lookups.isEmpty)
            try AtomicFile.write(config, to: layout.configFile, mode: 0o600)
            // An owner the helper cannot accept (here one that is gone) pins nothing: every
            // lookup is left to the hook, which asks again and reports it.
            let gone = try Spawner.spawn(Command("true"), options: SpawnOptions(standardOutput: .devNull))
            _ = await gone.wait()
            let pinsBefore = FilePaths.entries(of: layout.ociPinsDirectory).sorted()
            let unowned = try await helper.settings(lookingUp: [reference], owner: gone.pid)
            #expect(unowned.lookups.isEmpty)
            #expect(FilePaths.entries(of: layout.ociPinsDirectory).sorted() == pinsBefore)
            // A request naming more than a job's images is refused whole.
            let flood = SettingsLookupRequest(references: (0...32).map { "\(reference)-\($0)" }, ownerPID: owner.pid)
            let refused = try await SystemCommandRunner().run(
                Command(
                    agent, ["guest", "settings", "--lookup-stdin"], environment: ["RUNNER_HOST_ROOT": layout.root]),
                input: Array(try JSONEncoder().encode(flood)), output: .captured)
            #expect(!refused.status.isSuccess && refused.standardOutput.isEmpty)
            #expect(refused.standardError.contains("names 33 references (at most 32)"), "\(refused.standardError)")
            // So is a request that is not one, naming what one looks like and the fix.
            let garbled = try await SystemCommandRunner().run(
                Command(
                    agent, ["guest", "settings", "--lookup-stdin"], environment: ["RUNNER_HOST_ROOT": layout.root]),
                input: Array("not json".utf8), output: .captured)
            #expect(!garbled.status.isSuccess && garbled.standardOutput.isEmpty)
            #expect(
                garbled.standardError.contains("is not a settings request")
                    && garbled.standardError.contains("send one JSON object of that shape"),
                "\(garbled.standardError)")

            // The store only: what it has is used, what it lacks is a clear error.
            #expect(try await hook(.never).resolveImage(reference, credentials: nil) == first)
            let absent = "127.0.0.1:\(registry.port)/test/absent:1"
            let error = await #expect(throws: RunnerError.self) {
                try await hook(.never).resolveImage(absent, credentials: nil)
            }
            #expect(error?.input == absent)
            #expect(error?.problem.contains("RUNNER_IMAGE_PULL=never") == true)
            #expect(!log().hasSuffix("pull\n"))

            // The job ends (its owner exits): nothing holds the image any more.
            owner.signal(SIGKILL)
            _ = await owner.wait()
            #expect(try store.pins().trees.isEmpty)
            #expect(store.list().count == 1)
        }
    }
}

/// Runs `sudo -n -- COMMAND…` as `COMMAND…` (the tests run as root, and their helper must keep
/// the test's root, which a helper under sudo ignores).
struct WithoutSudo: CommandRunner {
    let system = SystemCommandRunner()

    static func unwrapped(_ command: Command) -> Command {
        guard command.executable == "sudo", let dashes = command.arguments.firstIndex(of: "--"),
            dashes + 1 < command.arguments.count
        else { return command }
        var plain = command
        plain.executable = command.arguments[dashes + 1]
        plain.arguments = Array(command.arguments[(dashes + 2)...])
        return plain
    }

    func run(_ command: Command, input: [UInt8]?, output: OutputMode) async throws(RunnerError) -> CommandResult {
        try await system.run(Self.unwrapped(command), input: input, output: output)
    }

    func start(_ command: Command, options: StartOptions) throws(RunnerError) -> any ProcessHandle {
        try system.start(Self.unwrapped(command), options: options)
    }
}
