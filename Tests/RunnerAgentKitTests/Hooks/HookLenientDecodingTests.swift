import RunnerCore
import Testing

@testable import RunnerAgentKit

@Suite struct HookLenientDecodingTests {
    func decode(_ json: String) throws -> HookInput {
        try HookInput.decode(Array(json.utf8))
    }

    @Test func prependPathAsSingleString() throws {
        let input = try decode(#"{"command":"run_script_step","args":{"prependPath":"/opt/bin"},"state":null}"#)
        #expect(input.args.prependPath == ["/opt/bin"])
    }

    @Test func nullsAndUnknownFieldsAreTolerated() throws {
        let input = try decode(
            #"{"command":"prepare_job","responseFile":null,"extra":1,"args":{"container":{"image":"x","#
                + #""environmentVariables":null,"portMappings":null,"systemMountVolumes":[null],"new":true},"#
                + #""services":null},"state":{"guest":"rg-000000000000","other":{"a":1}}}"#)
        #expect(input.responseFile == nil)
        #expect(input.args.container?.environmentVariables == [:])
        #expect(input.args.container?.portMappings == [])
        #expect(input.args.services.isEmpty)
        #expect(input.state?.guest == "rg-000000000000")
    }

    @Test func portMappingsAsTheDocsMap() throws {
        let input = try decode(#"{"command":"prepare_job","args":{"container":{"portMappings":{"80":"801"}}}}"#)
        #expect(input.args.container?.portMappings == ["80:801"])
    }

    @Test(arguments: ["", "not json", "{\"args\":{}}", "[1,2]"])
    func malformedInputIsRefused(_ text: String) {
        #expect(throws: RunnerError.self) { try decode(text) }
    }

    @Test func lastLineWins() throws {
        let input = try decode("garbage\n{\"command\":\"cleanup_job\",\"args\":{},\"state\":null}\n")
        #expect(input.command == "cleanup_job")
    }
}
