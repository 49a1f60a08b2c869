import RunnerCore
import RunnerTestSupport
import Testing

/// `runner-build rootfs` as an administrator runs it: a typo in a recipe is named with its file,
/// line and key.
@Suite(.enabled(if: RootfsBakes.available, "needs the repository checkout and the runner-build binary"))
struct RootfsCommandLineTests {
    @Test func typoedKeyNamesFileLineAndKey() async throws {
        try await withTemporaryDirectory("rootfs-typo") { dir in
            let recipe = dir.appending("typo")
            try AtomicFile.write(
                "suite = bookworm\narchitecture = amd64\nvariant = minbase\nmirror = http://m\npakages = git\n",
                to: recipe + "/recipe.conf")
            let result = try await RootfsBakes.bake(recipe: recipe, out: dir.appending("out"))
            #expect(result.status == .exited(1))
            #expect(result.standardError.contains("\(recipe)/recipe.conf:5: key 'pakages': unknown key"))
            #expect(result.standardError.contains("did you mean 'packages'"))
            #expect(!FilePaths.exists(dir.appending("out")))
        }
    }
}
