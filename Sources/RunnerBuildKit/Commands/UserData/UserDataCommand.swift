import ArgumentParser
import Foundation
import RunnerCore

/// `runner-build userdata`: renders the cloud-init user-data for one release.
public struct UserDataCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "userdata",
        abstract: "Render #cloud-config user-data that installs the pinned release on first boot.",
        discussion: """
            The user-data writes /etc/runner/config.env (0600: the site config with RUNNER_BOOTSTRAP_REPO_REF \
            and RUNNER_BUNDLE_SHA256 pinned), runner-install.service and bootstrap.sh, installs the OS packages \
            and starts the unit. Same inputs, same bytes. The size goes to stderr; over the budget (EC2: \
            16384 bytes) it fails. It holds the site's secrets: --out writes it with mode 0600. \
            runner-install.service and bootstrap.sh are the ones built into this runner-build (from the \
            release's cloud-init/), so it runs from any directory; --cloud-init-dir reads them from a \
            directory instead (a checkout with local changes).
            """
    )

    @Option(help: "The release ref to install, e.g. v1.2.")
    var ref: String

    @Option(help: "The site config (config.env syntax; see `runner-build config example`).")
    var config: String

    @Option(help: "The bundle tarball: its sha256 is pinned.")
    var bundle: String?

    @Option(help: "The bundle's sha256, instead of --bundle.")
    var bundleSHA256: String?

    @Flag(help: "Compress with gzip (deterministic: no name, no timestamp); cloud-init decompresses it.")
    var gzip = false

    @Option(help: "Write here (mode 0600, atomically) instead of stdout.")
    var out: String?

    @Option(
        help: """
            A directory holding bootstrap.sh and runner-install.service to use instead of the copies built \
            into runner-build (e.g. cloud-init in a checkout with local changes).
            """)
    var cloudInitDir: String?

    @Option(help: "The size limit in bytes.")
    var budget = UserData.defaultBudget

    public init() {}

    public func validate() throws {
        if bundle != nil && bundleSHA256 != nil {
            throw ValidationError("give --bundle or --bundle-sha256, not both")
        }
        if budget <= 0 {
            throw ValidationError("--budget must be a positive number of bytes")
        }
    }

    public func run() throws {
        do {
            let siteConfig = try RunnerConfig.parse(FilePaths.read(config), source: config, options: .render)
            var digest = bundleSHA256
            if let bundle {
                digest = try SHA256Digest.hex(ofFile: bundle)
            }
            if digest == nil && siteConfig.bootstrapMode == .bundle && !siteConfig.isSet(.bundleSHA256) {
                throw RunnerError(
                    .invalidInput, input: "--bundle", problem: "no bundle digest to pin",
                    fix: "--bundle dist/runner-bundle-….tar.gz or --bundle-sha256 HEX")
            }
            var unit = EmbeddedCloudInit.runnerInstallService
            var bootstrap = EmbeddedCloudInit.bootstrapScript
            if let cloudInitDir {
                unit = try readText(cloudInitDir + "/runner-install.service")
                bootstrap = try readText(cloudInitDir + "/bootstrap.sh")
            }
            let output = try UserData.render(
                .init(
                    config: siteConfig, ref: ref, bundleSHA256: digest, unit: unit, bootstrap: bootstrap, gzip: gzip,
                    budget: budget))
            if let out {
                try AtomicFile.write(output.bytes, to: out, mode: 0o600)
            } else {
                FileHandle.standardOutput.write(Data(output.bytes))
            }
            var report = "user-data: \(output.bytes.count) bytes"
            if gzip { report += " gzip'd (\(output.plainSize) bytes plain)" }
            report += ", budget \(budget) bytes"
            if let out { report += ", written to \(out) (mode 0600)" }
            FileHandle.standardError.write(Data((report + "\n").utf8))
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func readText(_ path: String) throws(RunnerError) -> String {
        guard FilePaths.exists(path) else {
            throw RunnerError(
                .notFound, input: path, problem: "does not exist",
                fix: "give the directory holding bootstrap.sh and runner-install.service, or leave out"
                    + " --cloud-init-dir for the copies built into runner-build")
        }
        let bytes = try FilePaths.read(path)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw RunnerError(.invalidInput, input: path, problem: "is not UTF-8 text", fix: "restore it from git")
        }
        return text
    }
}
