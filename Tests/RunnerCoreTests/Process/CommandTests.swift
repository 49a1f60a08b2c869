import RunnerCore
import Testing

@Suite("Command values")
struct CommandTests {
    @Test(arguments: [
        ("plain", "plain"),
        ("with space", "'with space'"),
        ("it's", "'it'\\''s'"),
        ("", "''"),
        ("--opt=/a/b", "--opt=/a/b"),
    ])
    func shellQuoting(word: String, expected: String) {
        #expect(Command.shellQuoted(word) == expected)
    }

    @Test func descriptionNamesEnvironmentKeysButNeverValues() {
        let command = Command("config.sh", ["--unattended"], environment: ["ACTIONS_RUNNER_INPUT_TOKEN": "s3cr3t"])
        #expect(command.description == "[env: ACTIONS_RUNNER_INPUT_TOKEN] config.sh --unattended")
        #expect(!command.description.contains("s3cr3t"))
    }
}
