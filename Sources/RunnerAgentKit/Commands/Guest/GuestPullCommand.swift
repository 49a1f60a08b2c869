import ArgumentParser
import FoundationEssentials
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages
import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// `ci-nspawn-run pull [--store-only]`: pulls a registry image into the store for the hook
/// (runner user, through sudo). The request is one JSON object on stdin, `{"reference": "…",
/// "credentials": {"username", "password", "serverUrl"}, "ownerPID": N}` (credentials optional:
/// never argv, never disk, never logged; `ownerPID` the job's owner, checked as for a guest's
/// owner, pins the image until the job ends); progress goes to stderr as plain lines; stdout is
/// one JSON line `{"reference", "digest", "tree"}`. With `--store-only` the store alone answers:
/// nothing is pulled, and stdout is empty when the store does not have the image.
struct GuestPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull a registry image into the store (request JSON on stdin); print reference, digest and tree.",
        discussion: """
            Reads {"reference": "node:20", "credentials": {"username": "…", "password": "…", \
            "serverUrl": "…"}} on stdin. RUNNER_IMAGE_PULL, RUNNER_REGISTRIES, RUNNER_REGISTRY_MIRRORS, \
            RUNNER_REGISTRY_AUTH_FILE and RUNNER_IMAGE_CACHE_MAX apply. With --store-only, only the \
            store is asked (empty output: not there).
            """)

    @Flag(help: "Answer from the content store only: never pull (empty output when the image is not there).")
    var storeOnly = false

    func run() async throws {
        let request = try await AgentHost.rootRequest(
            RegistryPullRequest.self, command: "ci-nspawn-run pull", problem: "images can only be pulled as root",
            shape: "a pull request ({\"reference\": \"…\", \"credentials\": {…}})")
        let progress = ProgressReporter(isTerminal: false, plainInterval: 2) { StandardError.write($0) }
        let holder = try RegistryHost.holder(ownerPID: request.ownerPID)
        let found = try await RegistryHost.pull(
            request, layout: try AgentHost.layout(), storeOnly: storeOnly, holder: holder, progress: progress,
            logger: Logger(label: "runner.registry"))
        guard let image = found else { return }
        let json = try JSONEncoder().encode(RegistryPullResponse(image))
        StandardOutput.write(String(decoding: json, as: UTF8.self) + "\n")
    }
}
