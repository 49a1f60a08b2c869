import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerSystem

/// The nosuid,nodev mount units the installer writes, their names and the mountinfo check.
struct MountUnitTests {
    static let paths = [
        "/var/lib/runner/work", "/opt/actions-runner/externals", "/", "//a//b/", "/srv/.hidden/x", "/a b/c",
        "/a-b/c_d/e.f:g", "/ü/x", "/a\\b", "/.", "/a/./b",
    ]

    @Test func escapingMatchesSystemdEscape() {
        #expect(MountUnits.escapePath("/var/lib/runner/work") == "var-lib-runner-work")
        #expect(MountUnits.escapePath("/opt/actions-runner/externals") == "opt-actions\\x2drunner-externals")
        #expect(MountUnits.escapePath("/") == "-")
        #expect(MountUnits.escapePath("//a//b/") == "a-b")
        #expect(MountUnits.escapePath("/srv/.hidden/x") == "srv-.hidden-x")
        #expect(MountUnits.escapePath("/.x") == "\\x2ex")
        #expect(MountUnits.escapePath("/a b") == "a\\x20b")
        #expect(MountUnits.escapePath("/ü") == "\\xc3\\xbc")
        #expect(MountUnits.unitName(for: "/var/lib/runner/work") == "var-lib-runner-work.mount")
    }

    /// The same answers as the real `systemd-escape --path`, where it is installed.
    @Test(.requires("systemd-escape"), arguments: paths)
    func escapingAgreesWithTheRealTool(path: String) async throws {
        let command = Command("systemd-escape", ["--path", "--", path])
        let expected = try await SystemCommandRunner().output(command).trimmedWhitespace
        #expect(MountUnits.escapePath(path) == expected)
    }

    @Test func unitBindsTheDirectoryOntoItselfNosuidNodevBeforeTheRunner() {
        let text = MountUnits.unitText(for: "/var/lib/runner/work")
        #expect(text.contains("\n[Mount]\nWhat=/var/lib/runner/work\nWhere=/var/lib/runner/work\nType=none\n"))
        #expect(text.contains("\nOptions=bind,nosuid,nodev\n"))
        #expect(text.contains("\nDefaultDependencies=no\n"))
        #expect(text.contains("\nAfter=runner-install.service\n"))
        #expect(text.contains("\nBefore=runner.service umount.target\n"))
        #expect(text.contains("\n[Install]\nWantedBy=multi-user.target\n"))
        let dropIn = MountUnits.dropInText(for: ["/w", "/x"])
        #expect(dropIn.contains("\n[Unit]\nRequiresMountsFor=/w /x\n"))
    }

    @Test func pathsAUnitCannotCarryAreRefused() {
        for bad in ["relative", "/a b", "/a%b", "/a/../b", "/a\\b", "/a\"b", "/a\nb"] {
            #expect(throws: RunnerError.self) { try MountUnits.check(bad) }
        }
        #expect(throws: Never.self) { try MountUnits.check("/var/lib/runner/work") }
    }

    /// systemd-analyze accepts the unit under its escaped name (and would reject a wrong one).
    @Test(.requires("systemd-analyze"))
    func unitIsCleanUnderSystemdAnalyzeVerify() async throws {
        try await withTemporaryDirectory("mount") { dir in
            let target = dir.appending("work dir-x").replacing(" ", with: "_")
            try FilePaths.createDirectory(target)
            let unit = dir.appending(MountUnits.unitName(for: target))
            try AtomicFile.write(MountUnits.unitText(for: target), to: unit)
            let result = try await SystemCommandRunner().run(
                Command("systemd-analyze", ["verify", "--man=no", unit]))
            let complaints = result.standardError.split(separator: "\n").filter {
                $0.contains(FilePaths.basename(unit)) && !$0.contains("runner-install.service")
                    && !$0.contains("runner.service")
            }
            #expect(complaints.isEmpty, "\(result.standardError)")
        }
    }

    @Test func mountInfoTellsWhetherAPathIsNosuidNodev() {
        let info = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            30 22 0:25 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
            40 22 8:1 /var/lib/runner/work /var/lib/runner/work rw,nosuid,nodev,relatime shared:1 - ext4 /dev/sda1 rw
            41 22 8:1 /opt/actions-runner/externals /opt/actions-runner/externals rw,nosuid,relatime - ext4 /dev/sda1 rw
            42 22 0:30 / /srv/with\\040space rw,relatime - tmpfs tmpfs rw,nosuid,nodev
            """
        #expect(MountUnits.isNosuidNodev("/var/lib/runner/work", mountInfo: info))
        #expect(MountUnits.isNosuidNodev("/var/lib/runner/work/repo/x", mountInfo: info))
        #expect(!MountUnits.isNosuidNodev("/opt/actions-runner/externals", mountInfo: info), "nodev missing")
        #expect(!MountUnits.isNosuidNodev("/var/lib/runner", mountInfo: info))
        #expect(!MountUnits.isNosuidNodev("/var/lib/runner/workshop", mountInfo: info))
        #expect(MountUnits.isNosuidNodev("/srv/with space/a", mountInfo: info), "super-block options count")
    }
}
