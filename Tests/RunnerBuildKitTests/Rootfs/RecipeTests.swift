import RunnerBuildKit
import RunnerCore
import RunnerTestSupport
import Testing

@Suite struct RecipeTests {
    static let minimal = """
        suite = bookworm
        architecture = amd64
        variant = minbase
        mirror = http://deb.debian.org/debian
        """

    func parse(_ text: String, directory: String = "/nonexistent/images/demo") throws(RunnerError) -> Recipe {
        try Recipe.parse(text, file: "images/demo/recipe.conf", name: "demo", directory: directory)
    }

    @Test func minimalRecipeHasDefaults() throws {
        let recipe = try parse(Self.minimal)
        #expect(recipe.suite == "bookworm")
        #expect(recipe.architecture == "amd64")
        #expect(recipe.components == ["main"])
        #expect(recipe.packages.isEmpty)
        #expect(recipe.snapshot == nil)
        #expect(recipe.effectiveMirror == "http://deb.debian.org/debian")
    }

    @Test func listKeysAppendAndDeduplicate() throws {
        let recipe = try parse(
            Self.minimal + """

                # comment
                packages = bash git, curl
                packages = git zstd
                mask = foo.service
                customize = echo hi > "$1/etc/motd"
                customize = true
                """)
        #expect(recipe.packages == ["bash", "git", "curl", "zstd"])
        #expect(recipe.maskedUnits == ["foo.service"])
        #expect(recipe.customize == ["echo hi > \"$1/etc/motd\"", "true"])
    }

    @Test func snapshotBuildsTheSnapshotURL() throws {
        let recipe = try parse(
            """
            suite = bookworm
            architecture = arm64
            variant = apt
            mirror = http://snapshot.debian.org/archive/debian/
            snapshot = 20250520T000000Z
            """)
        #expect(recipe.effectiveMirror == "http://snapshot.debian.org/archive/debian/20250520T000000Z")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        let text: String
        let input: String
        let problem: String
        var testDescription: String { input + " " + problem }
    }

    static let bad: [Bad] = [
        Bad(
            text: minimal + "\npakages = bash", input: "recipe.conf:5: key 'pakages'",
            problem: "did you mean 'packages'"),
        Bad(
            text: "suite = bookworm\nvariant = minbase\nmirror = http://x", input: "key 'architecture'",
            problem: "missing"),
        Bad(
            text: minimal.replacing("amd64", with: "amd65"), input: "key 'architecture'",
            problem: "'amd65' is not a Debian"),
        Bad(
            text: minimal.replacing("minbase", with: "tiny"), input: "key 'variant'",
            problem: "not an mmdebstrap variant"),
        Bad(text: minimal.replacing("http://deb", with: "ftp://deb"), input: "key 'mirror'", problem: "not an http://"),
        Bad(text: minimal + "\nsuite = trixie", input: ":5: key 'suite'", problem: "set twice (first on line 1)"),
        Bad(
            text: minimal + "\npackages = Bad_Name", input: "key 'packages'",
            problem: "'Bad_Name' is not a Debian package"),
        Bad(text: minimal + "\nmask = nonsense", input: "key 'mask'", problem: "not a systemd unit"),
        Bad(text: minimal + "\nsnapshot = 2025-05-20", input: "key 'snapshot'", problem: "not a snapshot timestamp"),
        Bad(
            text: minimal + "\nsnapshot = 20250520T000000Z", input: "key 'snapshot'",
            problem: "needs a snapshot.debian.org"),
        Bad(text: minimal + "\noverlay = ../elsewhere", input: "key 'overlay'", problem: "inside the recipe directory"),
        Bad(text: minimal + "\noverlay = files", input: "key 'overlay'", problem: "not a directory"),
        Bad(
            text: minimal + "\npath-exclude = usr/share/doc", input: "key 'path-exclude'", problem: "absolute path glob"
        ),
        Bad(text: minimal + "\njust some words", input: "recipe.conf:5", problem: "expected 'key = value'"),
        Bad(text: minimal + "\ncustomize =", input: "key 'customize'", problem: "empty command"),
        Bad(text: minimal.replacing("bookworm", with: ""), input: "key 'suite'", problem: "empty value"),
    ]

    @Test(arguments: bad) func badInputIsRefusedWithFileKeyAndReason(_ bad: Bad) {
        #expect {
            _ = try parse(bad.text)
        } throws: { error in
            guard let error = error as? RunnerError else { return false }
            return error.code == .invalidConfig && error.input.contains("images/demo/recipe.conf")
                && error.input.contains(bad.input) && error.problem.contains(bad.problem)
        }
    }

    @Test func loadNamesAMissingRecipe() async throws {
        _ = try await withTemporaryDirectory("recipe") { dir in
            #expect {
                _ = try Recipe.load(directory: dir.path)
            } throws: { error in
                (error as? RunnerError)?.problem.contains("no recipe") == true
            }
        }
    }

    @Test func shippedDebianBookwormRecipeParses() throws {
        let recipe = try Recipe.load(directory: Repo.root + "/images/debian-bookworm")
        #expect(recipe.name == "debian-bookworm")
        #expect(recipe.variant == "minbase")
        for package in [
            "systemd", "dbus", "bash", "git", "curl", "ca-certificates", "tar", "gzip", "xz-utils", "zstd", "unzip",
            "procps", "libc6", "libstdc++6", "libgcc-s1",
        ] {
            #expect(recipe.packages.contains(package), "debian-bookworm installs \(package)")
        }
        #expect(recipe.overlay == "overlay")
    }

    /// The appliance suite's cloud VM preinstalls what the user-data installs, so its first boot
    /// needs no archive, and has what the appliance needs of a host (systemd, machined, sudo).
    @Test func applianceHostRecipeHasWhatTheUserDataInstalls() throws {
        let recipe = try Recipe.load(directory: Repo.root + "/images/appliance-host")
        for package in UserData.packages + ["systemd", "dbus", "cloud-init", "python3"] {
            #expect(recipe.packages.contains(package), "images/appliance-host lacks \(package)")
        }
        #expect(recipe.overlay == "overlay")
    }
}
