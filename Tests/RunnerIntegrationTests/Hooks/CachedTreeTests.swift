import RunnerCore
import Testing

/// The cached test trees: their keys are shared with `ci/bench.d/hook.sh`, their argv is mmdebstrap's.
struct CachedTreeTests {
    @Test func guestTreeKeyMatchesTheBenchmarksOwn() {
        // ci/bench.d/hook.sh: printf 'bookworm minbase systemd,dbus,bash,coreutils,python3 v1' | sha256sum
        #expect(CachedTree.guest.cacheDirectory == "/var/cache/runner-tests/rootfs-31e610a037bbfbfc")
    }

    @Test func hostTreeResolvesItsOwnName() {
        let argv = CachedTree.host.mmdebstrap(target: "/t").argv
        #expect(
            argv.contains(
                "--include=systemd,dbus,systemd-container,bash,coreutils,python3,libarchive13,sudo,nftables,iproute2"))
        #expect(argv.contains("--customize-hook=echo host > \"$1/etc/hostname\""))
        #expect(
            argv.contains(
                "--customize-hook=printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\thost\\n::1\\tlocalhost ip6-localhost\\n' > \"$1/etc/hosts\""
            ))
        #expect(Array(argv.suffix(2)) == ["bookworm", "/t"])
        #expect(CachedTree.host.cacheDirectory == "/var/cache/runner-tests/host-a4bc854f5020a8bc")
    }
}
