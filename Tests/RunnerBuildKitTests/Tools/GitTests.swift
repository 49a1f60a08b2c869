import RunnerBuildKit
import RunnerCore
import Testing

@Suite struct GitTests {
    @Test func revParse() {
        #expect(
            Git().revParse(.init(repository: "/src")).argv == [
                "git", "-C", "/src", "rev-parse", "--verify", "--quiet", "HEAD^{commit}",
            ])
        #expect(
            Git(executable: "/usr/bin/git").revParse(.init(repository: "/src", revision: "v1.2")).argv == [
                "/usr/bin/git", "-C", "/src", "rev-parse", "--verify", "--quiet", "v1.2^{commit}",
            ])
    }
}
