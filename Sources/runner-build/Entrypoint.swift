import ArgumentParser
import RunnerBuildKit
import RunnerCore

@main
struct Entrypoint {
    static func main() async {
        RunnerLogging.bootstrap(program: "runner-build")
        await RunnerBuildCommand.main()
    }
}
