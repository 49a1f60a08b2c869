import RunnerBuildKit
import RunnerCore
import Testing

@Suite struct DpkgQueryTests {
    @Test func dpkgQueryArgvAndParsing() {
        let command = DpkgQuery().installedPackages(tree: "/t")
        #expect(
            command.argv == [
                "dpkg-query", "--admindir=/t/var/lib/dpkg", "-W",
                "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
            ])
        #expect(command.environment["LC_ALL"] == .some("C.UTF-8"))
        let parsed = DpkgQuery.parseInstalled(
            "ii \tzlib1g\t1:1.2.13\tamd64\nrc \tgone\t1\tamd64\nii \tbash\t5.2\tamd64\n")
        #expect(parsed.map(\.name) == ["bash", "zlib1g"])
        #expect(parsed.last?.version == "1:1.2.13")
    }
}
