import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

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
