import RunnerBuildKit
import RunnerCore
import RunnerTestSupport
import Testing

@Suite struct RootfsBakerTests {
    @Test func recipeBecomesGuestReadyCommand() throws {
        let recipe = try Recipe.parse(
            """
            suite = bookworm
            architecture = amd64
            variant = minbase
            mirror = http://snapshot.debian.org/archive/debian
            snapshot = 20250520T000000Z
            packages = git curl
            mask = extra.service
            path-exclude = /usr/share/man/*
            path-include = /usr/share/man/man1/git.1.gz
            customize = echo built > "$1/etc/built"
            """, file: "r", name: "demo", directory: "/r/demo")
        let command = RootfsBaker(effectiveUserID: 0).mmdebstrapCommand(
            for: recipe, target: "/out/.work/tree", sourceDateEpoch: 42)
        let args = command.arguments
        #expect(
            args.suffix(3) == [
                "bookworm", "/out/.work/tree", "http://snapshot.debian.org/archive/debian/20250520T000000Z",
            ])
        #expect(args.contains("--include=git,curl"))
        #expect(args.contains("--aptopt=Acquire::Check-Valid-Until \"false\""))
        #expect(args.contains("--dpkgopt=path-exclude=/usr/share/man/*"))
        #expect(args.contains("--dpkgopt=path-include=/usr/share/man/man1/git.1.gz"))
        #expect(args.contains("--extract-hook=apt-get --simulate --quiet=2 install git curl >/dev/null"))
        let hooks = args.filter { $0.hasPrefix("--customize-hook=") }
        #expect(hooks.first == "--customize-hook=echo built > \"$1/etc/built\"")
        #expect(hooks.contains { $0.contains("rm -f \"$1/etc/hostname\" \"$1/etc/resolv.conf\"") })
        #expect(hooks.contains { $0.contains(": > \"$1/etc/machine-id\"") })
        let mask = try #require(hooks.last)
        #expect(mask.contains("extra.service") && mask.contains("apt-daily.timer") && mask.contains("/dev/null"))
        #expect(command.environment["SOURCE_DATE_EPOCH"] == .some("42"))
    }

    @Test func overlayIsCopiedFirstAsRoot() async throws {
        try await withTemporaryDirectory("overlay") { dir in
            try FilePaths.createDirectory(dir.appending("files/etc"))
            try AtomicFile.write("x\n", to: dir.appending("files/etc/x.conf"))
            let recipe = try Recipe.parse(
                "suite = bookworm\narchitecture = amd64\nvariant = minbase\nmirror = http://m\noverlay = files",
                file: "r", name: "demo", directory: dir.path)
            let hooks = RootfsBaker.customizeHooks(for: recipe)
            #expect(hooks.first == "cp -R --no-preserve=ownership -T -- \(dir.path)/files \"$1\"")
        }
    }

    @Test func recipeDigestFollowsRecipeOverlayAndEpoch() async throws {
        try await withTemporaryDirectory("digest") { dir in
            let recipeDirectory = dir.appending("demo")
            try AtomicFile.write("a\n", to: recipeDirectory + "/files/a")
            try AtomicFile.write(
                "suite = bookworm\narchitecture = amd64\nvariant = minbase\nmirror = http://m\noverlay = files\n",
                to: recipeDirectory + "/" + Recipe.fileName)
            let recipe = try Recipe.load(directory: recipeDirectory)
            let first = try RootfsBaker.recipeDigest(recipe, sourceDateEpoch: 1)
            #expect(try RootfsBaker.recipeDigest(recipe, sourceDateEpoch: 1) == first)
            #expect(try RootfsBaker.recipeDigest(recipe, sourceDateEpoch: 2) != first)
            try AtomicFile.write("b\n", to: recipeDirectory + "/files/a")
            #expect(try RootfsBaker.recipeDigest(recipe, sourceDateEpoch: 1) != first)
        }
    }

    @Test func nonRootIsRefusedBeforeAnythingRuns() async throws {
        try await withTemporaryDirectory("nonroot") { dir in
            try AtomicFile.write(
                "suite = bookworm\narchitecture = amd64\nvariant = minbase\nmirror = http://m\n",
                to: dir.appending("demo/recipe.conf"))
            let recipe = try Recipe.load(directory: dir.appending("demo"))
            let runner = RecordingCommandRunner()
            let baker = RootfsBaker(runner: runner, effectiveUserID: 1000)
            await #expect {
                _ = try await baker.bake(
                    recipe, options: .init(version: "v1", outputDirectory: dir.appending("out"), sourceDateEpoch: 1),
                    progress: .silent)
            } throws: { error in
                guard let error = error as? RunnerError else { return false }
                return error.code == .permission && error.problem.contains("needs root")
            }
            #expect(runner.commands.isEmpty)
            #expect(!FilePaths.exists(dir.appending("out")))
        }
    }
}
