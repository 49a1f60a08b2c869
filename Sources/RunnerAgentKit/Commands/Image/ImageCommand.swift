import ArgumentParser

/// `runner-agent image`: the host's store of guest base images.
public struct ImageCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Import, pull, list and remove guest images (baked rootfs-*.tar.zst, or registry images).",
        discussion: """
            Images live under /var/lib/runner/images/<name>/<digest>/rootfs; <name>/current points \
            at the active version. An import keeps the version it replaces until the next import \
            succeeds.
            """,
        subcommands: [ImageImportCommand.self, ImagePullCommand.self, ImageListCommand.self, ImageRemoveCommand.self]
    )

    public init() {}
}
