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
        #expect(GuestName.isValid(name) && GuestName.isValid("rg-0123456789ab"))
        let bad = [
            "rg-", "rg-../../etc", "rg-ABCDEF012345", "x-0123456789ab", "rg-0123456789abc", "rg-0123456789a",
            "rg-0123456789ag", "rg-0123456789a\u{0}", "rg-0123456789aé", "RG-0123456789ab", "",
        ]
        for bad in bad {
            #expect(throws: RunnerError.self) { try GuestName.check(bad) }
            #expect(!GuestName.isValid(bad), "\(bad)")
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
