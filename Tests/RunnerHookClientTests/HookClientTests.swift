import Foundation
import RunnerSockets
import RunnerTestSupport
import Testing

@testable import RunnerHookClient

@Suite struct HookClientTests {
    /// The runner's `run_script_step` fixture with `state` as our prepare_job writes it.
    func step(state: [String: Any]?) throws -> [UInt8] {
        var object = try #require(
            try JSONSerialization.jsonObject(with: Data(try Fixtures.hook("runner-run_script_step.json")))
                as? [String: Any])
        object["state"] = state ?? NSNull()
        return Array(try JSONSerialization.data(withJSONObject: object)) + [UInt8(ascii: "\n")]
    }

    @Test func aStepWhoseStateNamesItsRelayGoesToTheRelay() throws {
        let payload = try step(state: ["guest": "rg-0123456789ab", "relay": "/run/runner/relay/rg-0123456789ab.sock"])
        #expect(HookClient.route(payload) == .relay(socket: "/run/runner/relay/rg-0123456789ab.sock"))
    }

    @Test func everythingElseGoesToTheAgent() throws {
        // A state from before runner-hook (no relay), no state, a relative or oversized path.
        #expect(HookClient.route(try step(state: ["guest": "rg-0123456789ab"])) == .agent)
        #expect(HookClient.route(try step(state: nil)) == .agent)
        #expect(HookClient.route(try step(state: ["guest": "g", "relay": "relay.sock"])) == .agent)
        #expect(
            HookClient.route(try step(state: ["guest": "g", "relay": "/" + String(repeating: "a", count: 200)]))
                == .agent)
        #expect(HookClient.route(try step(state: ["guest": "g", "relay": 7])) == .agent)
        // Other commands, whatever their state.
        for name in ["runner-prepare_job.json", "runner-cleanup_job.json", "runner-run_container_step.json"] {
            #expect(HookClient.route(try Fixtures.hook(name)) == .agent, "\(name)")
        }
        let cleanup = Array(#"{"command":"cleanup_job","state":{"guest":"g","relay":"/r.sock"}}"#.utf8)
        #expect(HookClient.route(cleanup) == .agent)
        // Input it cannot read: the agent reports it (and reads the last line, as the hooklib does).
        #expect(HookClient.route([]) == .agent)
        #expect(HookClient.route(Array("not json\n".utf8)) == .agent)
        let twoLines = Array("noise\n".utf8) + (try step(state: ["guest": "g", "relay": "/r.sock"]))
        #expect(HookClient.route(twoLines) == .agent)
    }

    @Test func aPayloadOverTheRelaysLimitGoesToTheAgent() throws {
        let big = String(repeating: "x", count: HookClient.relayPayloadLimit)
        let payload = Array(
            #"{"command":"run_script_step","state":{"guest":"g","relay":"/r.sock"},"args":{"entryPoint":"\#(big)"}}"#
                .utf8)
        #expect(HookClient.route(payload) == .agent)
    }

    @Test func theRelayRequestCarriesThePayloadUnchanged() throws {
        let payload = try step(state: ["guest": "g", "relay": "/r.sock"])
        let request = RelayWire.hookRequest(payload)
        #expect(request.starts(with: Array(#"{"hook":"#.utf8)))
        #expect(Array(request.dropFirst(8).dropLast()) == payload)
        #expect(request.last == UInt8(ascii: "}"))
        // Still one JSON value, with the runner's JSON under "hook"; the relay gets it back whole.
        let parsed = try JSONValue.parse(request)
        #expect(parsed["hook"]?["command"]?.string == "run_script_step")
        #expect(RelayWire.hookJSON(request) == payload)
        // A plain step request, or a cut-off one, carries no runner JSON.
        #expect(RelayWire.hookJSON(Array(#"{"command":["true"],"environment":{}}"#.utf8)) == nil)
        #expect(RelayWire.hookJSON(Array(request.dropLast())) == nil)
        #expect(RelayWire.hookJSON(RelayWire.hookRequestPrefix) == nil)
        // The client's limit leaves room for the wrapping within the relay's.
        #expect(
            RelayWire.hookRequest(Array(repeating: 0, count: HookClient.relayPayloadLimit)).count
                == RelayWire.requestLimit)
    }

    @Test func theRelaysAnswerBecomesTheExitCodeOrAnError() {
        func outcome(_ text: String) -> HookClient.Outcome { HookClient.outcome(reply: Array(text.utf8)) }
        #expect(outcome(#"{"exited":0}"#) == .exit(0))
        #expect(outcome(#"{"exited":3}"#) == .exit(3))
        #expect(outcome(#"{"signaled":9}"#) == .exit(137))
        #expect(
            outcome(
                #"{"error":{"code":"invalidInput","input":"args.entryPoint","problem":"is missing","text":"args.entryPoint: is missing"}}"#
            )
                == .error("args.entryPoint: is missing"))
        #expect(outcome(#"{"error":{"code":"x","input":"in","problem":"bad"}}"#) == .error("in: bad"))
        // A lost status is never success.
        for lost in ["", "{", "garbage"] {
            guard case .error = outcome(lost) else {
                Issue.record("\(lost) was taken as a status")
                continue
            }
        }
        // An answer without a status is no success either.
        guard case .error(let text) = outcome("{}") else {
            Issue.record("an answer without a status was taken as one")
            return
        }
        #expect(text.contains("without the step's exit status"))
    }

    @Test func errorsBecomeOneWorkflowCommandLine() {
        #expect(HookClient.workflowMessage("a%b\nc\r\nd") == "a%25b%0Ac%0D%0Ad")
    }

    @Test func theAgentIsTheOneBesideTheClient() {
        #expect(
            HookClient.agentPath(executable: "/usr/local/lib/runner/releases/v1.3/bin/runner-hook")
                == "/usr/local/lib/runner/releases/v1.3/bin/runner-agent")
        #expect(HookClient.agentPath(executable: "runner-hook") == "runner-agent")
    }
}
