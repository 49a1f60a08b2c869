import ArgumentParser
import Logging
import RunnerCore
import RunnerGuests
import RunnerImages

#if canImport(Glibc)
    import Glibc
#endif

/// `runner-agent image list`.
public struct ImageListCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List imported images (name, active digest, version, rootfs) and pulled registry images.",
        discussion: """
            Baked images: NAME, DIGEST, VERSION, ROOTFS. Registry images (after them): REFERENCE,             MANIFEST DIGEST, SIZE (MB), LAST USE (UTC).
            """
    )

    @OptionGroup var options: ImageStoreOptions

    public init() {}

    public func run() async throws {
        for image in try options.store().list() {
            let version = image.manifest?.version ?? "-"
            StandardOutput.write("\(image.name)\t\(image.digest)\t\(version)\t\(image.rootfs)\n")
        }
        let layout = try options.host.layout()
        for image in RegistryImageStore(layout: layout).list().reversed() {
            let references = image.record.references.isEmpty ? "-" : image.record.references.joined(separator: ",")
            StandardOutput.write(
                "\(references)\t\(image.manifestDigest)\t\(image.record.size / 1_000_000)\t"
                    + "\(ImageListCommand.utc(image.record.lastUsed))\n")
        }
    }

    /// `2026-12-02T21:06:23Z`.
    static func utc(_ seconds: Int64) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
