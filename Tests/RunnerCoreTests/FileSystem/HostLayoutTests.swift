import RunnerCore
import Testing

@Suite("Host layout")
struct HostLayoutTests {
    @Test func productionPathsAreTheDesignPaths() {
        let layout = HostLayout()
        #expect(layout.configFile == "/etc/runner/config.env")
        #expect(layout.installedMarker == "/var/lib/runner/installed")
        #expect(layout.guestHelper == "/usr/local/bin/ci-nspawn-run")
        #expect(layout.releaseDirectory("v1.2") == "/usr/local/lib/runner/releases/v1.2")
        #expect(layout.imageDirectory("debian-bookworm") == "/var/lib/runner/images/debian-bookworm")
    }

    @Test func everyPathMovesWithTheRoot() {
        let layout = HostLayout(root: "/tmp/x/")
        #expect(layout.configFile == "/tmp/x/etc/runner/config.env")
        #expect(layout.currentRelease == "/tmp/x/usr/local/lib/runner/current")
        #expect(HostLayout(root: "/tmp/x///").root == "/tmp/x")
        #expect(HostLayout(root: "/").root == "/")
        #expect(HostLayout(root: "///").root == "/")
        #expect(HostLayout(root: "/tmp/é/").root == "/tmp/é")
    }
}
