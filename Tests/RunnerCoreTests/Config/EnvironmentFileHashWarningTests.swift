import RunnerCore
import Testing

/// Issue #12, defect 10: `KEY=value # note` keeps ` # note` in the value; say so, without failing.
@Suite struct EnvironmentFileHashWarningTests {
    @Test(arguments: [
        ("T_A=/var/lib/runner/work # not a comment\n", "/var/lib/runner/work # not a comment"),
        ("T_A=\"/srv\" # quoted, then a note\n", "/srv# quoted, then a note"),
        ("T_A= # only a note\n", "# only a note"),
        ("T_A=x\t# tab before\n", "x\t# tab before"),
    ])
    func warnsAboutAHashAfterWhitespaceOutsideQuotes(_ text: String, _ value: String) {
        let file = EnvironmentFile.parse(text)
        #expect(file.environment == ["T_A": value])
        #expect(file.problems.isEmpty)
        #expect(file.warnings.count == 1)
        let warning = file.warnings.first
        #expect(warning?.line == 1)
        #expect(warning?.message.hasPrefix("T_A: the unquoted value contains ' #'") == true)
        #expect(warning?.message.contains("systemd keeps the '#' and everything after it in the value") == true)
        #expect(warning?.fix.contains("own line") == true && warning?.fix.contains("quote") == true)
    }

    @Test(arguments: [
        "T_A=b#c\n", "T_A=\"b # c\"\n", "T_A='b # c'\n", "# T_A=1 # c\n", "T_A=1\n  # note\n", "T_A=#c\n",
        "T_A=\"a\\\" # b\"\n",
    ])
    func doesNotWarnWhereTheHashIsMeantOrQuoted(_ text: String) {
        #expect(EnvironmentFile.parse(text).warnings.isEmpty, "\(text)")
    }

    @Test func warnsOncePerAssignmentWithItsLineAndNeverShowsTheValue() {
        let file = EnvironmentFile.parse("T_A=1\nT_B=SECRET # a # b\nT_C=2 # c\n")
        #expect(file.warnings.map(\.line) == [2, 3])
        #expect(!file.warnings.description.contains("SECRET"))
    }
}
