import Foundation
import Logging
import RunnerCore
import RunnerSockets
import RunnerTestSupport
import Testing

@testable import RunnerAgentKit
@testable import RunnerGuests

/// A step that reaches the relay through `runner-hook` (the runner's JSON as it came) runs the
/// same command, environment and directory as one the agent sends.
@Suite struct HookStepTests {
    static let guest = "rg-0123456789ab"

    /// The runner's `run_script_step` fixture with our state (`guest`, the image's environment,
    /// the relay).
    func payload(guest: String = Self.guest, command: String = "run_script_step") throws -> [UInt8] {
        var object = try #require(
            try JSONSerialization.jsonObject(with: Data(try Fixtures.hook("runner-run_script_step.json")))
                as? [String: Any])
        object["command"] = command
        object["state"] = [
            "guest": guest, "services": [], "environment": ["PATH": "/opt/img/bin:/usr/bin", "FROM_IMAGE": "1"],
            "relay": "/run/runner/relay/\(guest).sock",
        ]
        return Array(try JSONSerialization.data(withJSONObject: object)) + [UInt8(ascii: "\n")]
    }

    func relay() -> GuestRelay {
        GuestRelay(
            manager: GuestManager(
                policy: GuestPolicy(layout: HostLayout(root: "/nonexistent")), logger: .init(label: "t")),
            name: Self.guest, allowedUID: 1001, hookSteps: HookStep.relayRequest)
    }

    @Test func aStepThroughTheClientIsTheStepTheAgentRuns() throws {
        let payload = try payload()
        let expected = try HookStep.request(try HookInput.decode(payload))
        #expect(expected.guest == Self.guest)
        let step = try relay().decodeRequest(RelayWire.hookRequest(payload))
        #expect(step == expected.step)
        #expect(step.command.first == "bash")
        #expect(step.command.last?.hasSuffix(".sh") == true)
        #expect(step.environment["FROM_IMAGE"] == "1")
        #expect(
            step.environment["PATH"] == "/__w/_tool/node/20.11.1/x64/bin:/github/home/.local/bin:/opt/img/bin:/usr/bin")
        #expect(step.workingDirectory == expected.step.workingDirectory)
    }

    @Test func theRelayRefusesAnotherGuestsStep() throws {
        #expect {
            try relay().decodeRequest(RelayWire.hookRequest(try payload(guest: "rg-ffffffffffff")))
        } throws: { error in
            (error as? RunnerError)?.input == "state.guest"
                && (error as? RunnerError)?.problem.contains("rg-ffffffffffff") == true
        }
    }

    @Test func theRelayRunsOnlySteps() throws {
        for command in ["prepare_job", "cleanup_job", "run_container_step"] {
            #expect(throws: RunnerError.self) {
                try relay().decodeRequest(RelayWire.hookRequest(try payload(command: command)))
            }
        }
    }

    @Test func aRelayWithoutTheDecoderRefusesHookCalls() throws {
        var plain = relay()
        plain.hookSteps = nil
        #expect {
            try plain.decodeRequest(RelayWire.hookRequest(try payload()))
        } throws: { error in
            (error as? RunnerError)?.problem.contains("does not take") == true
        }
    }

    @Test func plainRequestsStillDecode() throws {
        let request = GuestRelay.Request(command: ["true"], environment: ["A": "1"], workingDirectory: "/w")
        let bytes = Array(try JSONEncoder().encode(request))
        #expect(try relay().decodeRequest(bytes) == request)
        #expect(throws: RunnerError.self) { try relay().decodeRequest(Array("{\"nope\":1}".utf8)) }
        #expect(throws: RunnerError.self) {
            try relay().decodeRequest(Array(#"{"hook":{"command":"run_script_step""#.utf8))
        }
    }

    @Test func prepareJobRecordsTheRelayInTheState() throws {
        let state = HookState(guest: Self.guest, relay: "/run/runner/relay/\(Self.guest).sock")
        let decoded = try JSONDecoder().decode(HookState.self, from: JSONEncoder().encode(state))
        #expect(decoded.relay == state.relay)
        // A state from before runner-hook decodes without one.
        #expect(try JSONDecoder().decode(HookState.self, from: Data(#"{"guest":"g"}"#.utf8)).relay == nil)
    }
}
