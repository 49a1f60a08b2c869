import Foundation
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit

/// Issue #12, defect 6: `runner-build userdata` needs no repository. The files it embeds ship
/// in the binary (`Sources/RunnerBuildKit/UserData/EmbeddedCloudInit.swift`, generated); these
/// tests keep that copy equal to `cloud-init/`.
@Suite struct EmbeddedCloudInitTests {
    static let generatedPath = "Sources/RunnerBuildKit/UserData/EmbeddedCloudInit.swift"

    /// The generated source for the files of `cloud-init/`: each as a raw string literal.
    static func generatedSource() throws -> String {
        var text = """
            // Generated from cloud-init/ by
            //   RUNNER_RECORD_EMBEDDED=1 swift test --filter EmbeddedCloudInitTests
            // Do not edit: EmbeddedCloudInitTests fails when this differs from the files in cloud-init/.
            // swift-format-ignore-file

            /// The files `runner-build userdata` embeds in the user-data, shipped inside the binary so
            /// that it works from any directory, without the repository.
            public enum EmbeddedCloudInit {

            """
        for (name, file) in EmbeddedCloudInit.files {
            let content = try Repo.text("cloud-init/" + file)
            var hashes = "#"
            while content.contains("\"\"\"" + hashes) || content.contains("\\" + hashes) { hashes += "#" }
            text += "    /// `cloud-init/\(file)`.\n"
            text += "    public static let \(name) = \(hashes)\"\"\"\n\(content)\n\"\"\"\(hashes)\n\n"
        }
        text += """
                /// The property name and file name of each embedded file.
                static let files = [("runnerInstallService", "runner-install.service"), ("bootstrapScript", "bootstrap.sh")]
            }

            """
        return text
    }

    @Test func theEmbeddedCopiesAreTheRepositorysFiles() throws {
        #expect(EmbeddedCloudInit.runnerInstallService == (try Repo.text("cloud-init/runner-install.service")))
        #expect(EmbeddedCloudInit.bootstrapScript == (try Repo.text("cloud-init/bootstrap.sh")))
        // Every file userdata reads from cloud-init/ is embedded.
        let files = try FileManager.default.contentsOfDirectory(atPath: Repo.root + "/cloud-init").sorted()
        #expect(EmbeddedCloudInit.files.map(\.1).sorted() == files)
    }

    @Test func theGeneratedSourceIsUpToDate() throws {
        let expected = try Self.generatedSource()
        if ProcessInfo.processInfo.environment["RUNNER_RECORD_EMBEDDED"] == "1" {
            try AtomicFile.write(expected, to: Repo.root + "/" + Self.generatedPath)
        }
        let actual = try Repo.text(Self.generatedPath)
        #expect(
            actual == expected,
            "\(Self.generatedPath) is stale: RUNNER_RECORD_EMBEDDED=1 swift test --filter EmbeddedCloudInitTests")
    }

    /// The default works from any directory: no cloud-init/ there, the embedded files are used.
    @Test func userdataRendersFromAnyDirectory() async throws {
        let tool = BuiltProducts.directory + "/runner-build"
        try #require(FilePaths.exists(tool), "build runner-build first (swift build --build-tests)")
        try await withTemporaryDirectory("anydir") { dir in
            try AtomicFile.write(SiteConfigs.minimal, to: dir.appending("site.env"), mode: 0o600)
            let result = try await runTool(
                "/bin/sh",
                [
                    "-c", "cd \"$1\" && exec \"$2\" userdata --ref v1.2 --config site.env --bundle-sha256 \"$3\"", "sh",
                    dir.path, tool, SiteConfigs.hex,
                ])
            #expect(result.status.isSuccess, "\(result.standardError)")
            // The same bytes as rendering with the repository's files.
            let config = try RunnerConfig.parse(Array(SiteConfigs.minimal.utf8), source: "site.env", options: .render)
            let expected = try UserData.render(
                .init(
                    config: config, ref: "v1.2", bundleSHA256: SiteConfigs.hex,
                    unit: Repo.text("cloud-init/runner-install.service"),
                    bootstrap: Repo.text("cloud-init/bootstrap.sh"),
                    gzip: false))
            #expect(Array(result.standardOutput.utf8) == expected.bytes)
            // --cloud-init-dir still reads the given directory, and names it when a file is missing.
            let missing = try await runTool(
                tool,
                [
                    "userdata", "--ref", "v1.2", "--config", dir.appending("site.env"), "--bundle-sha256",
                    SiteConfigs.hex, "--cloud-init-dir", dir.path,
                ])
            #expect(missing.status == .exited(1))
            #expect(missing.standardError.contains("\(dir.path)/runner-install.service: does not exist"))
        }
    }
}
