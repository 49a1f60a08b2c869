import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

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
