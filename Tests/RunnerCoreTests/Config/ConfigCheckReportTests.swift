import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

/// Issue #12, defects 10 and 7: `config check`'s warnings and its site mode.
@Suite struct ConfigCheckReportTests {
    static let site = """
        RUNNER_GITHUB_URL=https://github.com/acme/widgets
        RUNNER_REGISTRATION_TOKEN=AABBCC
        RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner

        """

    @Test func aHashAfterAValueIsAWarningNotAnError() throws {
        let text = Self.site + "RUNNER_WORK_DIR=/var/lib/runner/work # not a comment\n"
        let config = try RunnerConfig.parse(Array(text.utf8), source: "site.env", options: .render)
        #expect(config.workDirectory == "/var/lib/runner/work # not a comment")
        #expect(config.warnings.map(\.line) == [4])
        #expect(config.warnings.allSatisfy { $0.isWarning })
        let report = ConfigCheckReport.make(Array(text.utf8), path: "site.env", options: .site)
        #expect(report.isValid)
        #expect(report.warningCount == 1)
        #expect(
            report.lines.contains(
                "site.env:4: warning: RUNNER_WORK_DIR: the unquoted value contains ' #': systemd keeps the '#' and"
                    + " everything after it in the value (a comment starts only at the beginning of a line)"
                    + " (expected: put the comment on its own line, or quote the whole value if the '#' belongs to it)"
            ), "\(report.lines)")
        #expect(report.lines.last == "site.env: ok (1 warning)")
    }

    @Test func aWarningDoesNotHideAnErrorOfTheSameKey() {
        let text = Self.site + "RUNNER_EPHEMERAL=true # yes\n"
        let report = ConfigCheckReport.make(Array(text.utf8), path: "site.env", options: .site)
        #expect(!report.isValid)
        #expect(report.errorCount == 1 && report.warningCount == 1)
        #expect(report.lines.contains { $0.hasPrefix("site.env:4: warning: RUNNER_EPHEMERAL:") })
        #expect(report.lines.contains { $0.hasPrefix("site.env:4: RUNNER_EPHEMERAL: \"true # yes\" is not a boolean") })
        #expect(!report.lines.contains { $0.hasSuffix(": ok") })
    }

    @Test func theExampleIsAValidSiteFile() {
        let report = ConfigCheckReport.make(Array(RunnerConfig.example.utf8), path: "site.env", options: .site)
        #expect(report.isValid && report.warningCount == 0, "\(report.lines)")
    }

    @Test func siteModeNamesTheKeysUserdataPinsInsteadOfRequiringThem() {
        let host = ConfigCheckReport.make(
            Array(Self.site.utf8), path: "site.env", options: .host(HostLayout(root: "/nonexistent")))
        #expect(!host.isValid)
        #expect(
            host.lines.contains(
                "site.env: RUNNER_BOOTSTRAP_REPO_REF is not set (expected: the release tag (runner-build userdata --ref pins it))"
            ))
        let site = ConfigCheckReport.make(Array(Self.site.utf8), path: "site.env", options: .site)
        #expect(site.isValid, "\(site.lines)")
        #expect(
            site.lines == [
                "site.env: RUNNER_BOOTSTRAP_REPO_REF: not needed here: pinned by `runner-build userdata --ref`",
                "site.env: RUNNER_BUNDLE_SHA256: not needed here: pinned by `runner-build userdata --bundle/--bundle-sha256`",
                "site.env: ok",
            ])
        // git mode pins only the ref; what bootstrap.sh needs beyond the pins is still required.
        let git = Self.site + "RUNNER_BOOTSTRAP_MODE=git\n"
        #expect(
            ConfigCheckReport.make(Array(git.utf8), path: "s", options: .site).lines == [
                "s: RUNNER_BOOTSTRAP_REPO_REF: not needed here: pinned by `runner-build userdata --ref`", "s: ok",
            ])
        let noSource = Self.site.replacing("RUNNER_BOOTSTRAP_REPO_URL=https://github.com/acme/runner\n", with: "")
        let missing = ConfigCheckReport.make(Array(noSource.utf8), path: "s", options: .site)
        #expect(!missing.isValid)
        #expect(missing.lines.contains { $0.contains("neither RUNNER_BUNDLE_URL nor RUNNER_BOOTSTRAP_REPO_URL") })
        // A pinned key the site sets itself is not named as pinned.
        let pinned = Self.site + "RUNNER_BOOTSTRAP_REPO_REF=v1.2\n"
        #expect(
            !ConfigCheckReport.make(Array(pinned.utf8), path: "s", options: .site).lines.contains {
                $0.contains("REPO_REF")
            })
    }
}
