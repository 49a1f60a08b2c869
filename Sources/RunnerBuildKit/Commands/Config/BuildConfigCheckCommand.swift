import ArgumentParser
import RunnerCLI
import RunnerCore

/// `runner-build config check FILE`: a site file, as `runner-build userdata` will take it.
public struct BuildConfigCheckCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a site file (the --config of `runner-build userdata`) with every problem's line.",
        discussion: """
            Checks the site file as `runner-agent config check --site` does: what systemd would read \
            (quotes, escapes, comments), unknown and duplicate keys, each value's form, the combinations and \
            what bootstrap.sh needs, except the keys `runner-build userdata` pins (RUNNER_BOOTSTRAP_REPO_REF \
            by --ref; RUNNER_BUNDLE_SHA256 in bundle mode by --bundle), which it names instead of requiring. \
            Warns (without failing) about `KEY=value # note`: systemd keeps ` # note` in the value. Exits 0 \
            when the file has no errors, 1 otherwise. Never prints secret values. A host's config.env is \
            checked on the host with `runner-agent config check`.
            """
    )

    @Argument(help: "The site file to check.")
    var file: String

    public init() {}

    public func run() throws {
        try ConfigCheckOutput.check(file, options: .site)
    }
}
