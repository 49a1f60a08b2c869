import FoundationEssentials
import RunnerCore
import RunnerTestSupport
import Testing

/// The hook payloads of `Tests/Fixtures/hooks/runner-*.json` (one line of JSON each, as the
/// GitHub runner sends them) with the runner's paths moved to `work` and `externals`: what
/// ``HookHarness`` feeds the hook directly and what the appliance suite's fake worker sends.
struct HookPayloads {
    /// The runner's work directory (`_work`), as the hook sees it.
    var work: String
    /// The runner's `externals` directory.
    var externals: String
    /// The port the test service (``HookHarness/addTestHTTPService(rootfs:port:)``) listens on.
    var servicePort: UInt16

    /// The prepare_job fixture with its paths moved into this tree, its /srv/cache volume moved
    /// under the work directory, and `services` replaced.
    func prepareJob(responseFile: String, services: String? = nil, image: String? = nil) throws -> String {
        var text = String(decoding: try Fixtures.hook("runner-prepare_job.json"), as: UTF8.self)
        text = text.trimmingSuffixNewline()
        text = try Self.replacing(
            text,
            "/home/runner/actions-runner/_work/_temp/_runner_hook_responses/3f2b8c1e-9d4a-4e7b-8c2f-1a6d5e9b0c47.json",
            responseFile)
        text = try Self.replacing(text, "/home/runner/actions-runner/_work", work)
        text = try Self.replacing(text, "/home/runner/actions-runner/externals", externals)
        text = try Self.replacing(
            text, "\"sourceVolumePath\":\"/srv/cache\"", "\"sourceVolumePath\":\"\(work)/_srv_cache\"")
        if let image {
            text = try Self.replacing(text, "\"image\":\"ghcr.io/octo-org/ci-image:1.4\"", "\"image\":\"\(image)\"")
        }
        let start = try #require(text.firstRange(of: "\"services\":["))
        let end = try #require(text.firstRange(of: "]},\"state\":null}"))
        let list = services ?? serviceJSON()
        return String(text[..<start.lowerBound]) + "\"services\":[" + list + String(text[end.lowerBound...])
    }

    /// One service: the `svc` image (its unit serves HTTP on ``servicePort``), by default with
    /// that port mapped to itself.
    func serviceJSON(
        image: String = "svc:1", ports: [String]? = nil, environment: [String: String] = [:], options: String? = nil
    ) -> String {
        struct Service: Encodable {
            var image: String
            var entryPointArgs: [String] = []
            var environmentVariables: [String: String]
            var portMappings: [String]
            var systemMountVolumes: [String] = []
            var userMountVolumes: [String] = []
        }
        let service = Service(
            image: image, environmentVariables: environment,
            portMappings: ports ?? ["\(servicePort):\(servicePort)"])
        var json = TestJSON.encode(service)
        json.removeLast()
        return json + ",\"createOptions\":" + (options.map(TestJSON.quote) ?? "null")
            + ",\"dockerfile\":null,\"entryPoint\":null,\"registry\":null,\"workingDirectory\":null}"
    }

    /// The run_script_step fixture running the script at `scriptPath` (a guest path) with bash,
    /// with `state` (JSON) and, when given, `prependPath` (a `"prependPath":[…]` member).
    func runScriptStep(scriptPath: String, state: String, prependPath: String? = nil) throws -> String {
        var text = String(decoding: try Fixtures.hook("runner-run_script_step.json"), as: UTF8.self)
            .trimmingSuffixNewline()
        text = try Self.replacing(text, "/__w/_temp/7c1e5a0e-3b2f-4d0e-9a51-0e6f2c8b9d41.sh", scriptPath)
        if let prependPath {
            text = try Self.replacing(
                text, #""prependPath":["/__w/_tool/node/20.11.1/x64/bin","/github/home/.local/bin"]"#, prependPath)
        }
        let start = try #require(text.ranges(of: ",\"state\":").last)
        return String(text[..<start.lowerBound]) + ",\"state\":" + state + "}"
    }

    /// The cleanup_job fixture with `state` (JSON).
    func cleanupJob(state: String) throws -> String {
        var text = String(decoding: try Fixtures.hook("runner-cleanup_job.json"), as: UTF8.self).trimmingSuffixNewline()
        let start = try #require(text.ranges(of: ",\"state\":").last)
        text = String(text[..<start.lowerBound]) + ",\"state\":" + state + "}"
        return text
    }

    /// The state object from a prepare_job response.
    static func state(of response: String) throws -> String {
        let start = try #require(response.firstRange(of: "\"state\":{"))
        var depth = 0
        var index = response.index(before: start.upperBound)
        while index < response.endIndex {
            let c = response[index]
            if c == "{" { depth += 1 }
            if c == "}" {
                depth -= 1
                if depth == 0 { break }
            }
            index = response.index(after: index)
        }
        return String(response[response.index(before: start.upperBound)...index])
    }

    static func replacing(_ text: String, _ old: String, _ new: String) throws -> String {
        try #require(text.contains(old), "fixture no longer contains \(old)")
        return text.replacing(old, with: new)
    }
}
