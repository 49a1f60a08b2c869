import RunnerCore

/// `dpkg-query` against a tree's database, without chrooting.
public struct DpkgQuery: Sendable, Hashable {
    /// The program (a name on `PATH` or an absolute path).
    public var executable: String

    public init(executable: String = "dpkg-query") {
        self.executable = executable
    }

    /// `dpkg-query --admindir=TREE/var/lib/dpkg -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n'`.
    public func installedPackages(tree: String) -> Command {
        Command(
            executable,
            [
                "--admindir=\(tree)/var/lib/dpkg", "-W",
                "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
            ],
            environment: ["LC_ALL": "C.UTF-8"])
    }

    /// Parses ``installedPackages(tree:)`` output: installed (`ii`) packages, sorted by name.
    public static func parseInstalled(_ output: String) -> [RootfsManifest.Package] {
        output.split(separator: "\n").compactMap { line -> RootfsManifest.Package? in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4, fields[0].hasPrefix("ii") else { return nil }
            return RootfsManifest.Package(name: fields[1], version: fields[2], architecture: fields[3])
        }.sorted { $0.name < $1.name }
    }
}
