import RunnerHookClient

/// `runner-hook`: the container hook's entry (`container-hooks.sh` execs it); see ``HookClient``.
/// No logging bootstrap, no argument parsing: it is on every hook call's path.
@main
struct Entrypoint {
    static func main() {
        HookClient.main()
    }
}
