import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

/// `runner-agent image remove NAME`.
public struct ImageRemoveCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove image NAME and every version of it, or a pulled registry image by reference or digest."
    )

    @Argument(help: "The image to remove: a baked image's name, or a registry reference (node:20, name@sha256:…).")
    var name: String

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    /// A baked image's name has no `/`, `:` or `@`; anything else is a registry reference.
    var isRegistryReference: Bool { name.contains(where: { "/:@".contains($0) }) }

    public func validate() throws {
        guard !isRegistryReference else { return }
        do {
            try ImageName.validate(name, input: "NAME")
        } catch {
            throw ValidationError(error.description)
        }
    }

    public func run() async throws {
        let layout = try options.host.layout()
        if isRegistryReference {
            try RegistryImageStore(layout: layout).remove(
                try ImageReference(parsing: name), inUse: RegistryHost.treesInUse(layout: layout))
            return
        }
        let store = try options.store()
        if (try? store.resolve(name)) == nil, let reference = try? ImageReference(parsing: name),
            RegistryImageStore(layout: layout).lookup(reference) != nil
        {
            try RegistryImageStore(layout: layout).remove(reference, inUse: RegistryHost.treesInUse(layout: layout))
            return
        }
        try store.remove(name)
    }
}
