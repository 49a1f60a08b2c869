import FoundationEssentials
import RunnerCore
import RunnerTestSupport

@testable import RunnerImages
@testable import RunnerSystem

#if canImport(Glibc)
    import Glibc
#endif

/// A minbase tree built once with mmdebstrap and cached under /var/cache/runner-tests, keyed
/// by what goes into it.
struct CachedTree {
    var name: String
    var packages: [String]
    /// Ends the cache key; bump it when the tree's customization changes.
    var version: String
    var hostname: String
    var extraHooks: [String] = []
    /// A file the finished tree has (a tree without it is rebuilt).
    var marker: String

    /// The tree the hook tests boot (systemd, dbus, bash, coreutils, python3).
    static let guest = CachedTree(
        name: "rootfs", packages: ["systemd", "dbus", "bash", "coreutils", "python3"], version: "v1",
        hostname: "guest", marker: "/usr/lib/systemd/systemd")

    var cacheDirectory: String {
        let key = SHA256Digest.hex(of: Array("bookworm minbase \(packages.joined(separator: ",")) \(version)".utf8))
        return "/var/cache/runner-tests/\(name)-" + String(key.prefix(16))
    }

    /// `mmdebstrap --variant=minbase --include=… bookworm TARGET` (merged /usr, no resolv.conf).
    func mmdebstrap(target: String) -> Command {
        Command(
            "mmdebstrap",
            [
                "--quiet", "--variant=minbase", "--include=" + packages.joined(separator: ","),
                "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
                "--customize-hook=rm -f \"$1/etc/resolv.conf\"",
                "--customize-hook=echo \(hostname) > \"$1/etc/hostname\"",
            ] + extraHooks.map { "--customize-hook=" + $0 } + ["bookworm", target])
    }

    /// The cached tree, built when missing.
    func tree() async throws -> String {
        let path = cacheDirectory
        if FilePaths.exists(path + marker) { return path }
        let temporary = FilePaths.temporarySibling(of: path)
        try FilePaths.createDirectory(FilePaths.parent(of: path))
        let command = mmdebstrap(target: temporary)
        try await SystemCommandRunner().run(command).checked(command)
        guard rename(temporary, path) == 0 else { throw RunnerError.posix("rename", path, fix: nil) }
        return path
    }

    /// A copy of the cached tree with its owners shifted into `range` (``ImageOwnership``), made
    /// once beside it (`<cache>-shifted-<base>`: copied, shifted, renamed into place). The cached
    /// tree itself is never changed (other worktrees' tests use it).
    func shiftedTree(_ range: GuestUserNamespace) async throws -> String {
        let base = try await tree()
        let path = base + "-shifted-\(range.base)"
        if FilePaths.exists(path + marker) { return path }
        let temporary = FilePaths.temporarySibling(of: path)
        let copy = Command("cp", ["-a", base, temporary])
        try await SystemCommandRunner().run(copy).checked(copy)
        try ImageOwnership.shift(root: temporary, from: GuestUserNamespace(base: 0, size: range.size), to: range)
        if rename(temporary, path) != 0 {
            // Another test process made it first.
            try FilePaths.remove(temporary)
            guard FilePaths.exists(path + marker) else { throw RunnerError.posix("rename", path, fix: nil) }
        }
        return path
    }
}
