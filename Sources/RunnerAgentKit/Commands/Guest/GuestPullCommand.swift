import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `ci-nspawn-run pull`: pulls a registry image into the store for the hook (runner user, through
/// sudo). The request is one JSON object on stdin, `{"reference": "…", "credentials":
/// {"username", "password", "serverUrl"}}` (credentials optional: never argv, never disk, never
/// logged); progress goes to stderr as plain lines; stdout is one JSON line
/// `{"reference", "digest", "tree"}`.
struct GuestPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a registry image into the store (request JSON on stdin); print reference, digest and tree.",
        discussion: """
            Reads {"reference": "node:20", "credentials": {"username": "…", "password": "…", \
            "serverUrl": "…"}} on stdin. RUNNER_IMAGE_PULL, RUNNER_REGISTRIES, RUNNER_REGISTRY_MIRRORS, \
            RUNNER_REGISTRY_AUTH_FILE and RUNNER_IMAGE_CACHE_MAX apply.
            """)

    func run() async throws {
        guard geteuid() == 0 else {
            throw RunnerError(
                .permission, input: "ci-nspawn-run pull", problem: "images can only be pulled as root",
                fix: "run it through sudo (the runner user has a rule for it)")
        }
        signal(SIGPIPE, SIG_IGN)
        let bytes = await StandardInput.read()
        let request: RegistryPullRequest
        do {
            request = try JSONDecoder().decode(RegistryPullRequest.self, from: Data(bytes))
        } catch {
            throw RunnerError(
                .invalidInput, input: "stdin",
                problem: "is not a pull request ({\"reference\": \"…\", \"credentials\": {…}})")
        }
        let progress = ProgressReporter(isTerminal: false, plainInterval: 2) { StandardError.write($0) }
        let image = try await RegistryHost.pull(
            request, layout: try AgentHost.layout(), progress: progress, logger: Logger(label: "runner.registry"))
        let json = try JSONEncoder().encode(RegistryPullResponse(image))
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }
}
