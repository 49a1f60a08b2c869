import RunnerCore
import RunnerTestSupport
import Testing

@Suite struct EnvironmentFileTests {
    @Test(arguments: EnvironmentFileCase.all)
    func readsWhatSystemdReads(_ testCase: EnvironmentFileCase) {
        let file = EnvironmentFile.parse(testCase.bytes)
        let environment = file.environment.filter { $0.key.hasPrefix("T_") }
        #expect(environment == testCase.expected)
        #expect(file.problems.isEmpty == !testCase.flagged, "problems: \(file.problems)")
    }

    @Test func reportsLineNumbersOfAssignmentsAndProblems() {
        let text = "# header\nT_A=1\n\nT_B=\"two\nlines\"\nbroken line\nT_C=3\n"
        let file = EnvironmentFile.parse(text)
        #expect(file.assignments.map(\.line) == [2, 4, 7])
        #expect(file.problems.map(\.line) == [6])
        #expect(file.problems.first?.message.contains("has no '='") == true)
    }

    @Test func flagsNulAndInvalidUTF8WithTheirLines() {
        let nul = EnvironmentFile.parse(Array("T_A=1\nT_B=x".utf8) + [0] + Array("y\n".utf8))
        #expect(nul.problems.map(\.line) == [2])
        #expect(nul.environment["T_B"] == "x")
        let latin1 = EnvironmentFile.parse(Array("T_A=1\nT_B=".utf8) + [0xE9] + [0x0A])
        #expect(latin1.problems.map(\.line) == [2])
        #expect(latin1.problems.first?.message.contains("UTF-8") == true)
    }

    @Test(arguments: [
        "plain", "", "with space", "quote\"s", "back\\slash", "dollar $HOME", "`tick`", "#hash", ";semi",
        "  padded  ", "grüße", "a=b", "tab\there", "'single'",
    ])
    func renderedLinesReadBackExactly(_ value: String) {
        let line = EnvironmentFile.line(key: "T_A", value: value)
        let file = EnvironmentFile.parse(line + "\n")
        #expect(file.problems.isEmpty)
        #expect(file.environment == ["T_A": value], "rendered as \(line)")
    }

    @Test func aPastedSecretOnItsOwnLineIsNotEchoed() {
        let file = EnvironmentFile.parse("T_A=1\nghp_abcdefSECRET123\nRUNNER_LABELS\n")
        #expect(file.problems.map(\.line) == [2, 3])
        #expect(!file.problems.description.contains("SECRET"))
        #expect(file.problems[1].message.contains("'RUNNER_LABELS' has no '='"))
    }
}
