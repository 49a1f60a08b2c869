import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

/// `runner-agent image`: the host's store of guest base images.
public struct ImageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Import, list and remove guest base images (rootfs-*.tar.zst from runner-build rootfs).",
        discussion: """
            Images live under /var/lib/runner/images/<name>/<digest>/rootfs; <name>/current points \
            at the active version. An import keeps the version it replaces until the next import \
            succeeds.
            """,
        subcommands: [ImageImportCommand.self, ImageListCommand.self, ImageRemoveCommand.self]
    )

    public init() {}
}

/// Options every `image` subcommand shares.
struct ImageStoreOptions: ParsableArguments {
    /// `--root`: the host root the store lives under (tests, chroots; default `RUNNER_HOST_ROOT`, else /).
    @OptionGroup var host: HostRootOptions

    /// The store, shifting imports into the guests' UID range unless config.env says
    /// `RUNNER_GUEST_USERNS=off` (an unreadable config: the key's default; a guest start
    /// shifts again when the setting differs).
    func store() throws(RunnerError) -> ImageStore {
        let layout = try host.layout()
        let settings = (try? HookSettings.load(layout: layout)) ?? HookSettings()
        return ImageStore(layout: layout, userNamespace: settings.guestUserNamespace ? .standard : nil)
    }
}

/// `runner-agent image import FILE --name NAME [--manifest M]`.
public struct ImageImportCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Unpack an image archive into the store and make it the active version of NAME."
    )

    @Argument(help: ArgumentHelp("The rootfs-<name>-<version>.tar.zst to import.", valueName: "file"))
    var file: String

    @Option(help: "The image name guests ask for (e.g. debian-bookworm).")
    var name: String

    @Option(help: ArgumentHelp("The manifest written with the archive; its sha256 must match.", valueName: "file"))
    var manifest: String?

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    public func validate() throws {
        do {
            try ImageName.validate(name, input: "--name")
        } catch {
            throw ValidationError(error.description)
        }
    }

    public func run() async throws {
        let progress = ProgressReporter()
        let image = try await options.store().importArchive(file, name: name, manifest: manifest, progress: progress)
        StandardOutput.write("\(image.name) \(image.digest) \(image.rootfs)\n")
    }
}

/// `runner-agent image list`.
public struct ImageListCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List imported images: name, active digest, version and rootfs path."
    )

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    public func run() async throws {
        for image in try options.store().list() {
            let version = image.manifest?.version ?? "-"
            StandardOutput.write("\(image.name)\t\(image.digest)\t\(version)\t\(image.rootfs)\n")
        }
    }
}

/// `runner-agent image remove NAME`.
public struct ImageRemoveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove image NAME and every version of it from the store."
    )

    @Argument(help: "The image to remove.")
    var name: String

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    public func validate() throws {
        do {
            try ImageName.validate(name, input: "NAME")
        } catch {
            throw ValidationError(error.description)
        }
    }

    public func run() async throws {
        try options.store().remove(name)
    }
}
