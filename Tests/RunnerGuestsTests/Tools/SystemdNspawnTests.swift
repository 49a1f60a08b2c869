import RunnerCore
import Testing

@testable import RunnerGuests
@testable import RunnerImages

@Suite struct SystemdNspawnTests {
    @Test func bootWithoutMachined() {
        var options = SystemdNspawn.BootOptions(directory: "/img/rootfs", machine: "rg-0123456789ab")
        options.binds = [
            GuestBind(source: "/w/_temp", target: "/__w/_temp"),
            GuestBind(source: "/w", target: "/__w"),
            GuestBind(source: "/e", target: "/__e", readOnly: true),
            GuestBind(source: nil, target: "/anon"),
            GuestBind(source: "/odd:path", target: "/t"),
        ]
        options.setenv = ["container_ttys": "0", "A": "1"]
        #expect(
            SystemdNspawn().boot(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/img/rootfs",
                "--machine=rg-0123456789ab", "--boot", "--volatile=overlay", "--notify-ready=yes",
                "--console=passive", "--setenv=A=1", "--setenv=container_ttys=0", "--bind=/w:/__w",
                "--bind-ro=/e:/__e", "--bind=:/anon", "--bind=/odd\\:path:/t", "--bind=/w/_temp:/__w/_temp",
            ])
    }

    @Test func bootRegisteredWithMachined() {
        var options = SystemdNspawn.BootOptions(directory: "/r", machine: "rg-0123456789ab")
        options.register = true
        #expect(
            SystemdNspawn(executable: "/usr/bin/systemd-nspawn").boot(options).argv == [
                "/usr/bin/systemd-nspawn", "--quiet", "--keep-unit", "--directory=/r", "--machine=rg-0123456789ab",
                "--boot", "--volatile=overlay", "--notify-ready=yes", "--console=passive",
            ])
    }

    @Test func bootHasThePrivateUsersRangeAndIdmappedBinds() {
        var options = SystemdNspawn.BootOptions(directory: "/img/rootfs", machine: "rg-0123456789ab")
        options.userNamespace = GuestUserNamespace.standard
        options.binds = [
            GuestBind(source: "/w", target: "/__w", ownerMapping: .rootIDMap),
            GuestBind(source: "/e", target: "/__e", readOnly: true, ownerMapping: .rootIDMap),
            GuestBind(source: "/run/runner/guests/rg-0123456789ab.hosts", target: "/etc/hosts", readOnly: true),
            GuestBind(source: nil, target: "/anon", ownerMapping: .rootIDMap),
        ]
        #expect(
            SystemdNspawn().boot(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/img/rootfs",
                "--machine=rg-0123456789ab", "--boot", "--volatile=overlay", "--notify-ready=yes",
                "--console=passive", "--private-users=2147352576:65536", "--private-users-ownership=off",
                "--bind=/w:/__w:rootidmap", "--bind-ro=/e:/__e:rootidmap",
                "--bind=:/anon", "--bind-ro=/run/runner/guests/rg-0123456789ab.hosts:/etc/hosts",
            ])
    }

    @Test func bootOnAPrivateNetworkJoinsTheJobsBridge() {
        var options = SystemdNspawn.BootOptions(directory: "/r", machine: "rg-0123456789ab")
        options.networkBridge = "rn-0123abcd"
        #expect(
            SystemdNspawn().boot(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/r",
                "--machine=rg-0123456789ab", "--boot", "--volatile=overlay", "--notify-ready=yes",
                "--console=passive", "--network-bridge=rn-0123abcd", "--resolv-conf=off",
            ])
    }

    @Test func probeBootsStraightToPoweroff() {
        #expect(
            SystemdNspawn().probe(.init(directory: "/var/lib/runner/images/x/current/rootfs")).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--volatile=overlay",
                "--directory=/var/lib/runner/images/x/current/rootfs", "--boot", "--", "--unit=poweroff.target",
            ])
        #expect(
            SystemdNspawn().probe(.init(directory: "/r", userNamespace: GuestUserNamespace.standard)).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--volatile=overlay", "--directory=/r",
                "--boot", "--private-users=2147352576:65536", "--private-users-ownership=off", "--",
                "--unit=poweroff.target",
            ])
    }

    @Test func containerRunsTheImagesProgramUnderTheStubInit() {
        var options = SystemdNspawn.ContainerOptions(
            directory: "/img/.oci/trees/ab/rootfs", machine: "rg-0123456789ab",
            command: ["/bin/sh", "-c", ". /run/runner-service.env && exec \"$@\"", "sh", "/entry.sh", "serve"])
        options.userNamespace = GuestUserNamespace.standard
        options.workingDirectory = "/srv"
        options.user = "postgres"
        options.binds = [
            GuestBind(source: "/w/_temp", target: "/__w/_temp", ownerMapping: .rootIDMap),
            GuestBind(source: "/w", target: "/__w", ownerMapping: .rootIDMap),
            GuestBind(
                source: "/run/runner/guests/rg-0123456789ab.env.conf", target: "/run/runner-service.env", readOnly: true
            ),
        ]
        #expect(
            SystemdNspawn().container(options).argv == [
                "systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--directory=/img/.oci/trees/ab/rootfs",
                "--machine=rg-0123456789ab", "--as-pid2", "--volatile=overlay", "--console=read-only", "--chdir=/srv",
                "--user=postgres", "--private-users=2147352576:65536", "--private-users-ownership=off",
                "--bind=/w:/__w:rootidmap", "--bind=/w/_temp:/__w/_temp:rootidmap",
                "--bind-ro=/run/runner/guests/rg-0123456789ab.env.conf:/run/runner-service.env", "--", "/bin/sh", "-c",
                ". /run/runner-service.env && exec \"$@\"",
                "sh", "/entry.sh", "serve",
            ])
    }

    @Test func containerRegisteredWithMachinedKeepsOnlyTheCommand() {
        var options = SystemdNspawn.ContainerOptions(
            directory: "/r", machine: "rg-0123456789ab", command: ["tail", "-f", "/dev/null"])
        options.register = true
        #expect(
            SystemdNspawn().container(options).argv == [
                "systemd-nspawn", "--quiet", "--keep-unit", "--directory=/r", "--machine=rg-0123456789ab", "--as-pid2",
                "--volatile=overlay", "--console=read-only", "--", "tail", "-f", "/dev/null",
            ])
    }
}
