import ArgumentParser
import RunnerCLI
import RunnerCore

/// `runner-agent config check [--site] [FILE]`.
public struct AgentConfigCheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a config.env and print every problem with its line number.",
        discussion: """
            Checks what systemd would read (quotes, escapes, comments), unknown and duplicate keys, each \
            value's form, the combinations (exactly one credential, …) and that *_FILE secrets are 0600 \
            files. Warns (without failing) where systemd reads something rarely meant, such as \
            `KEY=value # note`, whose ` # note` systemd keeps in the value. Exits 0 when the file has no \
            errors, 1 otherwise. Never prints secret values.

            --site checks a site file, the input of `runner-build userdata`, instead of a host's \
            config.env: the keys userdata pins (RUNNER_BOOTSTRAP_REPO_REF, by --ref; RUNNER_BUNDLE_SHA256 \
            in bundle mode, by --bundle) are not required and are named as such, and *_FILE secrets are \
            not looked for (they live on the host).
            """
    )

    @Argument(help: "The file to check (default: /etc/runner/config.env under --root).")
    var file: String?

    @Flag(help: "Check a site file for `runner-build userdata` (the keys it pins are not required).")
    var site = false

    /// `--root`: the host root the file and its `*_FILE` paths are relative to (tests).
    @OptionGroup var host: HostRootOptions

    public init() {}

    public func validate() throws {
        if site && file == nil { throw ValidationError("--site needs the site file to check") }
    }

    public func run() throws {
        let layout = try host.layout()
        try ConfigCheckOutput.check(file ?? layout.configFile, options: site ? .site : .host(layout))
    }
}
