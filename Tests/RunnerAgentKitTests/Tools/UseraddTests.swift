import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct UseraddTests {
    @Test func systemUser() {
        #expect(
            Useradd().systemUser(.init(name: "runner", home: "/home/runner", layout: HostLayout())).argv == [
                "useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/home/runner", "--shell",
                "/bin/bash", "runner",
            ])
    }

    @Test func systemUserUnderATestRootJoiningItsGroup() {
        var options = Useradd.SystemUserOptions(
            name: "runner", home: "/home/runner", layout: HostLayout(root: "/tmp/r"))
        options.existingGroup = true
        #expect(
            Useradd().systemUser(options).argv == [
                "useradd", "--prefix", "/tmp/r", "--system", "--gid", "runner", "--no-create-home", "--home-dir",
                "/home/runner", "--shell", "/bin/bash", "runner",
            ])
    }
}
