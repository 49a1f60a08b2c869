import FoundationEssentials
import Logging
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests
@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

extension GuestSuites {
    /// A registry image is anyone's: its files are read on the host only by descriptor, never
    /// through a link it planted, and nothing from it runs with the host's privileges.
    @Suite(.serialized, .ociGuests)
    struct OCIGuestRedTeamTests {
        @Test func aHostileImageCannotMakeTheHostReadOrWriteTheCanary() async throws {
            try await OCIHarness.with { h in
                // Canaries the test owns: a passwd that would make "canary" root, an os-release
                // that would say alpine, a secret.
                let canaryPasswd = h.dir.appending("canary-passwd")
                try AtomicFile.write("canary:x:0:0::/root:/bin/sh\n", to: canaryPasswd, mode: 0o600)
                let canaryRelease = h.dir.appending("canary-os-release")
                try AtomicFile.write("ID=alpine\n", to: canaryRelease, mode: 0o600)
                let secret = h.dir.appending("canary-secret")
                try AtomicFile.write("host-secret\n", to: secret, mode: 0o600)

                // 1. /etc/passwd and /etc/group are links to the host's canary: the user named
                // by USER is refused, never looked up through the link.
                try await h.addImage(
                    "registry.test/hostile-user:1", config: #"{"config":{"User":"canary"}}"#
                ) { rootfs in
                    for file in ["etc/passwd", "etc/group"] {
                        unlink(rootfs + "/" + file)
                        symlink(canaryPasswd, rootfs + "/" + file)
                    }
                }
                let (refused, _) = try await h.prepare(image: "registry.test/hostile-user:1")
                #expect(refused.status == .exited(1))
                let error = try #require(refused.stdout.split(separator: "\n").first { $0.hasPrefix("::error::") })
                #expect(error.contains("USER canary") && error.contains("cannot be read safely"), "\(error)")
                #expect(GuestManager(policy: GuestPolicy(layout: h.layout), logger: Logger(label: "t")).list().isEmpty)

                // 2. /etc/os-release is a link to the host's canary (which says alpine): the
                // image's own /usr/lib/os-release answers (debian), and a setuid-root program of
                // the image grants nothing outside the guest.
                try await h.addImage(
                    "registry.test/hostile-release:1", config: #"{"config":{"User":"app"}}"#, osID: "debian"
                ) { rootfs in
                    try FilePaths.createDirectory(rootfs + "/usr/lib")
                    try AtomicFile.write("ID=debian\n", to: rootfs + "/usr/lib/os-release")
                    unlink(rootfs + "/etc/os-release")
                    symlink(canaryRelease, rootfs + "/etc/os-release")
                    let copy = Command("cp", [OCIHarness.busybox, rootfs + "/bin/suid-busybox"])
                    #expect(try Spawner.spawn(copy).waitBlocking() == .exited(0))
                    chmod(rootfs + "/bin/suid-busybox", 0o4755)
                }
                let (prepared, response) = try await h.prepare(image: "registry.test/hostile-release:1")
                #expect(prepared.status == .exited(0), "\(prepared.stdout)\(prepared.stderr)")
                #expect(response.contains("\"isAlpine\":false"), "\(response)")
                let state = try HookPayloads.state(of: response)
                let guest = try #require(state.firstMatch(of: /"guest":"(rg-[0-9a-f]+)"/)?.1).description
                // The step (as the image's user, through the setuid copy of busybox, and as guest
                // root) goes for the host's canary by its host path and through /proc.
                let attack = """
                    id -u
                    /bin/suid-busybox sh -c 'cat \(secret); echo pwned > \(secret)' 2>&1 | head -n 3
                    cat /proc/1/root\(secret) 2>&1 | head -n 1
                    ls /proc | grep -c '^[0-9]'
                    """
                let step = try await h.hook(h.step(["-c", attack], guest: guest, stateEnvironment: "{}"))
                #expect(!step.stdout.contains("host-secret"), "\(step.stdout)")
                #expect(String(decoding: try FilePaths.read(secret), as: UTF8.self) == "host-secret\n")
                // Only the guest's own processes are visible (its init, the keep-alive, the step).
                let count = step.stdout.split(separator: "\n").last.flatMap { Int($0) } ?? 1000
                #expect(count < 10, "\(step.stdout)")
                #expect(String(decoding: try FilePaths.read(canaryRelease), as: UTF8.self) == "ID=alpine\n")
                #expect(String(decoding: try FilePaths.read(canaryPasswd), as: UTF8.self).hasPrefix("canary:x:0:0"))
                _ = try await h.cleanup(state: state)
            }
        }
    }
}
