import Foundation
import RunnerCore
import RunnerTestSupport
import Testing

@testable import RunnerBuildKit

/// `runner-build userdata` as an administrator runs it.
@Suite struct UserDataCommandTests {
    @Test func writesA0600FileAndNeverPrintsSecrets() async throws {
        let tool = BuiltProducts.directory + "/runner-build"
        try #require(FilePaths.exists(tool), "build runner-build first (swift build --build-tests)")
        try await withTemporaryDirectory("ud") { dir in
            try AtomicFile.write(SiteConfigs.minimal, to: dir.appending("site.env"), mode: 0o600)
            try AtomicFile.write(Array("not really a bundle".utf8), to: dir.appending("bundle.tar.gz"))
            let out = dir.appending("out/user-data")
            let result = try await runTool(
                tool,
                [
                    "userdata", "--ref", "v1.2", "--config", dir.appending("site.env"), "--bundle",
                    dir.appending("bundle.tar.gz"), "--gzip", "--out", out, "--cloud-init-dir",
                    Repo.root + "/cloud-init",
                ])
            #expect(result.status.isSuccess, "\(result.standardError)")
            #expect(result.standardOutput.isEmpty)
            #expect(result.standardError.contains("bytes gzip'd"))
            #expect(result.standardError.contains("budget 16384 bytes"))
            #expect(!result.standardError.contains("SECRET-TOKEN"))
            var st = stat()
            #expect(stat(out, &st) == 0 && st.st_mode & 0o777 == 0o600)
            let plain = try await runTool("gzip", ["-dc", out])
            let digest = SHA256Digest.hex(of: Array("not really a bundle".utf8))
            #expect(plain.standardOutput.contains("RUNNER_BUNDLE_SHA256=\(digest)"))
            #expect(plain.standardOutput.contains("RUNNER_REGISTRATION_TOKEN=AAAA-SECRET-TOKEN-0001"))

            // A bad secret value is reported without echoing it.
            try AtomicFile.write(
                SiteConfigs.minimal.replacing("AAAA-SECRET-TOKEN-0001", with: "\"AAAA SECRET\""),
                to: dir.appending("bad.env"))
            let bad = try await runTool(
                tool,
                ["userdata", "--ref", "v1.2", "--config", dir.appending("bad.env"), "--bundle-sha256", SiteConfigs.hex])
            #expect(bad.status == .exited(1))
            #expect(bad.standardError.contains("line 3: RUNNER_REGISTRATION_TOKEN"))
            #expect(!bad.standardError.contains("AAAA SECRET"))
            #expect(bad.standardOutput.isEmpty)
        }
    }

    @Test func configExampleAndCheck() async throws {
        let build = BuiltProducts.directory + "/runner-build"
        let agent = BuiltProducts.directory + "/runner-agent"
        try #require(FilePaths.exists(build) && FilePaths.exists(agent), "build the executables first")
        let example = try await runTool(build, ["config", "example"])
        #expect(example.status.isSuccess)
        #expect(example.standardOutput == RunnerConfig.example)
        try await withTemporaryDirectory("check") { dir in
            try AtomicFile.write(
                example.standardOutput + "RUNNER_LABEL=x\nRUNNER_EPHEMERAL=yes\n", to: dir.appending("c.env"))
            let check = try await runTool(agent, ["config", "check", dir.appending("c.env"), "--root", dir.path])
            #expect(check.status == .exited(1))
            let lines = example.standardOutput.split(separator: "\n", omittingEmptySubsequences: false).count
            #expect(
                check.standardOutput.contains(
                    "c.env:\(lines): RUNNER_LABEL: unknown key (did you mean RUNNER_LABELS?)"))
            #expect(check.standardOutput.contains("c.env:\(lines + 1): RUNNER_EPHEMERAL: \"yes\" is not a boolean"))
            #expect(check.standardOutput.contains("RUNNER_BOOTSTRAP_REPO_REF is not set"))
            #expect(!check.standardOutput.contains("AABBCCDDEEFF"))
        }
    }

    /// Issue #12, defects 7 and 10: a site file checks clean in site mode (naming what userdata
    /// pins), and `KEY=value # note` is a warning with exit 0.
    @Test func configCheckSiteModeAndHashWarning() async throws {
        let build = BuiltProducts.directory + "/runner-build"
        let agent = BuiltProducts.directory + "/runner-agent"
        try #require(FilePaths.exists(build) && FilePaths.exists(agent), "build the executables first")
        try await withTemporaryDirectory("check-site") { dir in
            let site = dir.appending("site.env")
            try AtomicFile.write(
                SiteConfigs.minimal + "RUNNER_WORK_DIR=/var/lib/runner/work # not a comment\n", to: site, mode: 0o600)
            let lines = SiteConfigs.minimal.split(separator: "\n", omittingEmptySubsequences: false).count
            for argv in [["config", "check", site], ["config", "check", "--site", site]] {
                let tool = argv.contains("--site") ? agent : build
                let result = try await runTool(tool, argv)
                #expect(result.status.isSuccess, "\(argv): \(result.standardOutput)\(result.standardError)")
                #expect(
                    result.standardOutput.contains(
                        "site.env:\(lines): warning: RUNNER_WORK_DIR: the unquoted value contains ' #'"))
                #expect(
                    result.standardOutput.contains(
                        "RUNNER_BOOTSTRAP_REPO_REF: not needed here: pinned by `runner-build userdata --ref`"))
                #expect(result.standardOutput.contains("RUNNER_BUNDLE_SHA256: not needed here: pinned by"))
                #expect(result.standardOutput.hasSuffix("site.env: ok (1 warning)\n"))
                #expect(!result.standardOutput.contains("SECRET-TOKEN"))
            }
            // Without --site, runner-agent checks a host's config.env: the pinned keys are required.
            let host = try await runTool(agent, ["config", "check", site, "--root", dir.path])
            #expect(host.status == .exited(1))
            #expect(host.standardOutput.contains("RUNNER_BOOTSTRAP_REPO_REF is not set"))
            #expect(host.standardOutput.contains("warning: RUNNER_WORK_DIR"))
        }
    }
}
