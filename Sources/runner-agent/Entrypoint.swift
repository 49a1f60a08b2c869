import ArgumentParser
import RunnerAgentKit
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

@main
struct Entrypoint {
    static func main() async {
        RunnerLogging.bootstrap(program: "runner-agent")
        if CommandLine.arguments.count == 2, CommandLine.arguments[1] == "hook" {
            await HookCommand.handleAndExit()
        }
        if FilePaths.basename(CommandLine.arguments.first ?? "") == "ci-nspawn-run" {
            await GuestCommand.mainAsHelper(Array(CommandLine.arguments.dropFirst()))
            return
        }
        await RunnerAgentCommand.main()
    }
}
