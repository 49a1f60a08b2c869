import Logging
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// A download into the host's cache (`/var/cache/runner`) through ``Curl``, checked against a
/// pinned sha256 before it is renamed into place: the installer's runner tarball and images, and
/// the bundle `runner-agent upgrade` fetches from a URL.
struct CachedDownload: Sendable {
    var layout: HostLayout
    var curl: Curl
    var commandRunner: any CommandRunner
    var logger: Logger

    /// Downloads `url` to `path` unless `path` already has `sha256`; checks the digest. A
    /// download that does not match is removed and `path` is left as it was.
    func fetch(_ url: String, to path: String, sha256: String) async throws(RunnerError) {
        try FilePaths.createDirectory(layout.cacheDirectory)
        HostFiles.sweepLeftovers(in: layout.cacheDirectory)
        if FilePaths.exists(path), (try? SHA256Digest.hex(ofFile: path)) == sha256 { return }
        let temporary = FilePaths.temporarySibling(of: path)
        defer { try? FilePaths.remove(temporary) }
        let command = curl.download(.init(url: url, output: temporary))
        logger.info("downloading", metadata: ["url": "\(url)"])
        try await commandRunner.run(command).checked(command, fix: "check the URL and the host's network and proxy")
        let digest = try SHA256Digest.hex(ofFile: temporary)
        guard digest == sha256 else {
            throw RunnerError(
                .integrity, input: url, problem: "sha256 \(digest) does not match the pinned \(sha256)",
                fix: "check the URL, or pin the sha256 of the file it serves")
        }
        guard rename(temporary, path) == 0 else { throw RunnerError.posix("could not move into place", path, fix: nil) }
    }
}
