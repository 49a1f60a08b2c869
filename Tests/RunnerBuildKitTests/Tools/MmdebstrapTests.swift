import RunnerBuildKit
import RunnerCore
import Testing

@Suite struct MmdebstrapTests {
    @Test func buildArgvInOrder() {
        var options = Mmdebstrap.BuildOptions(
            variant: "minbase", architecture: "amd64", suite: "bookworm", target: "/w/tree",
            mirror: "http://deb.debian.org/debian")
        options.components = ["main", "contrib"]
        options.packages = ["systemd", "dbus"]
        options.aptOptions = ["Acquire::Check-Valid-Until \"false\""]
        options.dpkgOptions = ["path-exclude=/usr/share/doc/*"]
        options.extractHooks = ["true"]
        options.customizeHooks = ["rm -f \"$1/etc/hostname\""]
        options.sourceDateEpoch = 1_747_699_200
        let command = Mmdebstrap().build(options)
        #expect(
            command.argv == [
                "mmdebstrap", "--mode=root", "--format=directory", "--variant=minbase", "--architectures=amd64",
                "--components=main,contrib", "--include=systemd,dbus",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                "--aptopt=Acquire::Check-Valid-Until \"false\"", "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--extract-hook=true", "--customize-hook=rm -f \"$1/etc/hostname\"",
                "bookworm", "/w/tree", "http://deb.debian.org/debian",
            ])
        #expect(command.environment["SOURCE_DATE_EPOCH"] == .some("1747699200"))
        #expect(command.environment["LC_ALL"] == .some("C.UTF-8"))
    }

    @Test func bareTarBuildForTheBenchmark() {
        var options = Mmdebstrap.BuildOptions(
            variant: "minbase", architecture: "amd64", suite: "bookworm", target: "/w/bare.tar", mirror: "http://m")
        options.format = "tar"
        options.components = []
        let command = Mmdebstrap(executable: "/usr/bin/mmdebstrap").build(options)
        #expect(
            command.argv == [
                "/usr/bin/mmdebstrap", "--mode=root", "--format=tar", "--variant=minbase", "--architectures=amd64",
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "bookworm", "/w/bare.tar", "http://m",
            ])
        #expect(command.environment["SOURCE_DATE_EPOCH"] == nil)
    }

    @Test func version() {
        #expect(Mmdebstrap().version().argv == ["mmdebstrap", "--version"])
    }
}
