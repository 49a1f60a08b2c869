import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

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
