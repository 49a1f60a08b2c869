import ArgumentParser
import RunnerAgentKit
import RunnerCore

@main
struct Entrypoint {
    static func main() async {
        RunnerLogging.bootstrap(program: "runner-agent")
        await RunnerAgentCommand.main()
    }
}
