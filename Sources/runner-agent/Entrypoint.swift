import ArgumentParser
import RunnerAgentKit
import RunnerCore

@main
struct Entrypoint {
    static func main() async {
        RunnerLogging.bootstrap(program: "runner-agent")
        if FilePaths.basename(CommandLine.arguments.first ?? "") == "ci-nspawn-run" {
            await GuestCommand.mainAsHelper(Array(CommandLine.arguments.dropFirst()))
            return
        }
        await RunnerAgentCommand.main()
    }
}
