import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `Tests/Fixtures` of this repository (see its README for where the files come from).
let fixturesDirectory: String = {
    var path = #filePath
    for _ in 0..<2 { path = FilePaths.parent(of: path) }
    return path + "/Fixtures"
}()

/// A hook payload from `Tests/Fixtures/hooks`.
func fixture(_ name: String) throws -> [UInt8] {
    try FilePaths.read(fixturesDirectory + "/hooks/" + name)
}

@Suite
struct HookDecodingTests {
    @Test func prepareJobFixture() throws {
        let input = try HookInput.decode(try fixture("runner-prepare_job.json"))
        #expect(input.command == "prepare_job")
        #expect(input.state == nil)
        let container = try #require(input.args.container)
        #expect(container.image == "ghcr.io/octo-org/ci-image:1.4")
        #expect(container.environmentVariables["HOME"] == "/github/home")
        #expect(container.portMappings == ["8080:80"])
        #expect(container.systemMountVolumes.count == 8)
        #expect(container.systemMountVolumes[2].readOnly)
        #expect(container.userMountVolumes.map(\.sourceVolumePath) == ["my_docker_volume", "/srv/cache"])
        #expect(input.args.services.map(\.image) == ["redis:7-alpine", "postgres:16"])
        #expect(input.args.services[1].environmentVariables["POSTGRES_DB"] == "app")
    }

    @Test func runScriptStepFixture() throws {
        let input = try HookInput.decode(try fixture("runner-run_script_step.json"))
        #expect(input.command == "run_script_step")
        #expect(input.args.entryPoint == "bash")
        #expect(input.args.entryPointArgs.first == "--noprofile")
        #expect(input.args.prependPath == ["/__w/_tool/node/20.11.1/x64/bin", "/github/home/.local/bin"])
        #expect(input.args.workingDirectory == "/__w/octo-repo/octo-repo")
        #expect(input.args.environmentVariables["GITHUB_ACTION"] == "__run_2")
        // A docker-hook-shaped state has none of our keys: decoded, but names no guest.
        #expect(input.state?.guest == nil)
    }

    @Test func runContainerStepFixture() throws {
        let input = try HookInput.decode(try fixture("runner-run_container_step.json"))
        #expect(input.command == "run_container_step")
        #expect(input.args.image == nil)
        #expect(input.args.dockerfile?.hasSuffix("/Dockerfile") == true)
        #expect(input.args.entryPointArgs == ["\"Mona", "the", "Octocat\""])
    }

    @Test func cleanupJobFixture() throws {
        let input = try HookInput.decode(try fixture("runner-cleanup_job.json"))
        #expect(input.command == "cleanup_job")
        #expect(input.args.services.isEmpty)
    }

    @Test(arguments: ["prepare-job.json", "run-container-step.json", "run-script-step.json"])
    func upstreamExamplesDecodeLeniently(_ name: String) throws {
        let input = try HookInput.decode(try fixture("upstream-examples/" + name))
        #expect(!input.command.isEmpty)
    }
}

@Suite struct HookLenientDecodingTests {
    func decode(_ json: String) throws -> HookInput {
        try HookInput.decode(Array(json.utf8))
    }

    @Test func prependPathAsSingleString() throws {
        let input = try decode(#"{"command":"run_script_step","args":{"prependPath":"/opt/bin"},"state":null}"#)
        #expect(input.args.prependPath == ["/opt/bin"])
    }

    @Test func nullsAndUnknownFieldsAreTolerated() throws {
        let input = try decode(
            #"{"command":"prepare_job","responseFile":null,"extra":1,"args":{"container":{"image":"x","#
                + #""environmentVariables":null,"portMappings":null,"systemMountVolumes":[null],"new":true},"#
                + #""services":null},"state":{"guest":"rg-000000000000","other":{"a":1}}}"#)
        #expect(input.responseFile == nil)
        #expect(input.args.container?.environmentVariables == [:])
        #expect(input.args.container?.portMappings == [])
        #expect(input.args.services.isEmpty)
        #expect(input.state?.guest == "rg-000000000000")
    }

    @Test func portMappingsAsTheDocsMap() throws {
        let input = try decode(#"{"command":"prepare_job","args":{"container":{"portMappings":{"80":"801"}}}}"#)
        #expect(input.args.container?.portMappings == ["80:801"])
    }

    @Test(arguments: ["", "not json", "{\"args\":{}}", "[1,2]"])
    func malformedInputIsRefused(_ text: String) {
        #expect(throws: RunnerError.self) { try decode(text) }
    }

    @Test func lastLineWins() throws {
        let input = try decode("garbage\n{\"command\":\"cleanup_job\",\"args\":{},\"state\":null}\n")
        #expect(input.command == "cleanup_job")
    }
}

@Suite struct HookPieceTests {
    @Test(arguments: [
        ("redis:7-alpine", "redis"), ("postgres:16", "postgres"), ("ghcr.io/octo/my_svc:1", "my-svc"),
        ("docker://nginx@sha256:abc", "nginx"),
    ])
    func serviceAlias(_ image: String, _ alias: String) {
        #expect(ContainerHook.serviceAlias(image) == alias)
    }

    /// The prepare_job response, byte for byte as the runner has always read it: compact, keys
    /// sorted, `/` unescaped, every service with `ports`.
    @Test func prepareJobResponseBytes() throws {
        let response = HookResponse(
            state: HookState(
                guest: "rg-000000000001", services: ["rg-000000000002", "rg-000000000003"],
                environment: ["HOME": "/github/home", "GITHUB_ACTIONS": "true", "CI": "true"]),
            isAlpine: false,
            context: .init(
                container: .init(id: "rg-000000000001", network: "host"),
                services: [
                    .init(id: "rg-000000000002", network: "host", ports: ["80": "8080", "6379": "6379"]),
                    .init(id: "rg-000000000003", network: "host"),
                ]))
        let text = String(decoding: try response.encoded(), as: UTF8.self)
        #expect(
            text
                == #"{"context":{"container":{"id":"rg-000000000001","network":"host"},"services":[{"id":"rg-000000000002","network":"host","ports":{"6379":"6379","80":"8080"}},{"id":"rg-000000000003","network":"host","ports":{}}]},"isAlpine":false,"state":{"environment":{"CI":"true","GITHUB_ACTIONS":"true","HOME":"/github/home"},"guest":"rg-000000000001","services":["rg-000000000002","rg-000000000003"]}}"#
        )
        #expect(try JSONDecoder().decode(HookResponse.self, from: Data(text.utf8)) == response)
    }

    /// A services-only job: no `context.container` (the runner would write into a job container
    /// that does not exist), no `guest` in the state.
    @Test func servicesOnlyResponseHasNoContainer() throws {
        let response = HookResponse(
            state: HookState(services: ["rg-000000000002"]), isAlpine: false,
            context: .init(services: [.init(id: "rg-000000000002", network: "host")]))
        #expect(
            String(decoding: try response.encoded(), as: UTF8.self)
                == #"{"context":{"services":[{"id":"rg-000000000002","network":"host","ports":{}}]},"isAlpine":false,"state":{"environment":{},"services":["rg-000000000002"]}}"#
        )
        #expect(String(decoding: try HookResponse().encoded(), as: UTF8.self) == "{}")
    }

    /// Values from the workflow are escaped as JSON wants (quotes, backslashes, control
    /// characters), `/` and non-ASCII are written as they are, and they read back unchanged.
    @Test func responseValuesAreEscaped() throws {
        let value = "x\"\\\n\r\t\u{1}/é😀"
        let response = HookResponse(state: HookState(environment: ["A/B": value]))
        let text = String(decoding: try response.encoded(), as: UTF8.self)
        #expect(text == #"{"state":{"environment":{"A/B":"x\"\\\n\r\t\u0001/é😀"},"services":[]}}"#)
        #expect(try JSONDecoder().decode(HookResponse.self, from: Data(text.utf8)).state?.environment["A/B"] == value)
    }

    @Test func settingsParse() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            try AtomicFile.write(
                "# c\nRUNNER_IMAGE_ALIASES=\"ubuntu:22.04=debian-bookworm node=node-img\"\n"
                    + "RUNNER_ALLOW_DOCKER_SOCK=true\nRUNNER_GUEST_MOUNT_ALLOW=/srv/a /srv/b\n",
                to: layout.configFile)
            let settings = try HookSettings.load(layout: layout)
            #expect(settings.imageAliases == ["ubuntu:22.04": "debian-bookworm", "node": "node-img"])
            #expect(settings.allowDockerSock)
            #expect(settings.mountAllow == [layout.path("/srv/a"), layout.path("/srv/b")])
            let policy = settings.guestPolicy(layout: layout, backend: .direct)
            #expect(policy.allowedMountRoots.contains(layout.path("/var/run/docker.sock")))
        }
    }

    @Test func guestNames() throws {
        let name = GuestName.generate()
        try GuestName.check(name)
        for bad in ["rg-", "rg-../../etc", "rg-ABCDEF012345", "x-0123456789ab", "rg-0123456789abc"] {
            #expect(throws: RunnerError.self) { try GuestName.check(bad) }
        }
    }

    @Test func policyRefusesOutsideSourcesAndBadImages() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            let policy = GuestPolicy(layout: layout)
            try FilePaths.createDirectory(layout.workDirectory + "/repo")
            try FilePaths.createDirectory(dir.appending("outside"))
            let inside = try policy.check(GuestBind(source: layout.workDirectory + "/repo", target: "/__w/repo"))
            #expect(inside.bind.source?.hasSuffix("/var/lib/runner/work/repo") == true)
            #expect(inside.workRelative == "repo")
            #expect(throws: RunnerError.self) {
                try policy.check(GuestBind(source: dir.appending("outside"), target: "/x"))
            }
            // A symlink inside the work directory that points out is refused too.
            symlink(dir.appending("outside"), layout.workDirectory + "/escape")
            #expect(throws: RunnerError.self) {
                try policy.check(GuestBind(source: layout.workDirectory + "/escape", target: "/x"))
            }
            #expect(throws: RunnerError.self) {
                try policy.check(GuestBind(source: layout.workDirectory + "/repo", target: "/a/../etc"))
            }
            for image in ["../etc", "", "a/b", ".hidden", "missing"] {
                #expect(throws: RunnerError.self) { try policy.imageRootfs(image) }
            }
        }
    }

    @Test func workspaceOwnershipFixesEverythingButFollowsNoLinks() throws {
        try withTemporaryDirectoryHelper { dir in
            let root = dir.appending("work")
            try FilePaths.createDirectory(root + "/a/b")
            try AtomicFile.write("x", to: root + "/a/b/file")
            try AtomicFile.write("y", to: dir.appending("victim"))
            symlink(dir.appending("victim"), root + "/a/link")
            let anchor = try TrustedPath.openAnchor(root, layout: dir.layout)
            let result = WorkspaceOwnership.fix(anchor, uid: 4242, gid: 4343)
            #expect(result.visited == 5)
            var st = stat()
            stat(root + "/a/b/file", &st)
            #expect(st.st_uid == 4242 && st.st_gid == 4343)
            lstat(root + "/a/link", &st)
            #expect(st.st_uid == 4242)
            stat(dir.appending("victim"), &st)
            #expect(st.st_uid == geteuid())
        }
    }
}

func withTemporaryDirectoryHelper(_ body: (TemporaryDirectory) throws -> Void) throws {
    let dir = try TemporaryDirectory("hook")
    defer { dir.remove() }
    try body(dir)
}

@Suite struct GuestCommandLineTests {
    @Test func backendDetection() throws {
        try withTemporaryDirectoryHelper { dir in
            let layout = dir.layout
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try FilePaths.createDirectory(layout.path("/run/systemd/system"))
            #expect(GuestBackend.detect(layout: layout) == .direct)
            try AtomicFile.write("", to: layout.path("/usr/lib/systemd/systemd-machined"))
            #expect(GuestBackend.detect(layout: layout) == .machined)
        }
    }

    @Test func helperGoesThroughSudo() {
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout())
        #expect(
            helper.sudo(["stop", "rg-0123456789ab"]).argv == [
                "sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "stop", "rg-0123456789ab",
            ])
    }

    /// The unprivileged hook's settings come from `sudo -n ci-nspawn-run settings` (config.env is
    /// root's), as the JSON the helper prints.
    @Test func unprivilegedHookAsksTheHelperForItsSettings() async throws {
        var settings = HookSettings()
        settings.imageAliases = ["ubuntu:22.04": "debian-bookworm"]
        settings.mountAllow = ["/srv/cache"]
        settings.workDirectory = "/srv/work"
        let runner = RecordingCommandRunner()
        runner.answer(
            "sudo",
            with: CommandResult(
                status: .exited(0), standardOutput: String(decoding: try JSONEncoder().encode(settings), as: UTF8.self))
        )
        let helper = HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: runner)
        #expect(try await helper.settings() == settings)
        #expect(runner.commands.map(\.argv) == [["sudo", "-n", "--", "/usr/local/bin/ci-nspawn-run", "settings"]])

        let refused = RecordingCommandRunner()
        refused.answer("sudo", with: CommandResult(status: .exited(1), standardError: "sudo: a password is required"))
        await #expect(throws: RunnerError.self) {
            try await HelperGuests(helper: "/usr/local/bin/ci-nspawn-run", layout: HostLayout(), runner: refused)
                .settings()
        }
    }
}

/// The cached test trees: their keys are shared with `ci/bench.d/hook.sh`, their argv is mmdebstrap's.
struct CachedTreeTests {
    @Test func guestTreeKeyMatchesTheBenchmarksOwn() {
        // ci/bench.d/hook.sh: printf 'bookworm minbase systemd,dbus,bash,coreutils,python3 v1' | sha256sum
        #expect(CachedTree.guest.cacheDirectory == "/var/cache/runner-tests/rootfs-31e610a037bbfbfc")
    }

    @Test func hostTreeResolvesItsOwnName() {
        let argv = CachedTree.host.mmdebstrap(target: "/t").argv
        #expect(argv.contains("--include=systemd,dbus,systemd-container,bash,coreutils,python3,libarchive13,sudo"))
        #expect(argv.contains("--customize-hook=echo host > \"$1/etc/hostname\""))
        #expect(
            argv.contains(
                "--customize-hook=printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\thost\\n::1\\tlocalhost ip6-localhost\\n' > \"$1/etc/hosts\""
            ))
        #expect(Array(argv.suffix(2)) == ["bookworm", "/t"])
        #expect(CachedTree.host.cacheDirectory == "/var/cache/runner-tests/host-1c7ca77aabc93bf8")
    }
}
