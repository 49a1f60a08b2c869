import RunnerCore

/// `mmdebstrap`, as typed command values: one function per operation, each returning a
/// ``Command`` that unit tests check without spawning anything.
public struct Mmdebstrap: Sendable, Hashable {
    /// The program (name on PATH or absolute path).
    public var executable: String

    public init(executable: String = "mmdebstrap") {
        self.executable = executable
    }

    /// Where mmdebstrap ships the hook directory that merges `/usr` (bin, sbin, lib → usr/).
    public static let mergedUsrHookDirectory = "/usr/share/mmdebstrap/hooks/merged-usr"

    /// Options for building a tree.
    public struct BuildOptions: Sendable, Hashable {
        /// `--mode`: `root` needs root and writes real ownership and device nodes.
        public var mode: String = "root"
        /// `--format`: `directory` or `tar` (also chosen by the target's name).
        public var format: String = "directory"
        public var variant: String
        public var architecture: String
        public var components: [String] = ["main"]
        public var suite: String
        /// The directory or tarball to write.
        public var target: String
        public var mirror: String
        /// `--include`: packages beyond the variant.
        public var packages: [String] = []
        /// `--hook-dir` entries, in order.
        public var hookDirectories: [String] = [Mmdebstrap.mergedUsrHookDirectory]
        /// `--aptopt` entries.
        public var aptOptions: [String] = []
        /// `--dpkgopt` entries.
        public var dpkgOptions: [String] = []
        /// `--extract-hook` entries (shell, `$1` = the tree), in order.
        public var extractHooks: [String] = []
        /// `--customize-hook` entries (shell, `$1` = the tree), in order.
        public var customizeHooks: [String] = []
        /// `SOURCE_DATE_EPOCH` for the run: clamps timestamps, makes tar output reproducible.
        public var sourceDateEpoch: Int64?

        public init(
            variant: String, architecture: String, suite: String, target: String, mirror: String
        ) {
            self.variant = variant
            self.architecture = architecture
            self.suite = suite
            self.target = target
            self.mirror = mirror
        }
    }

    /// `mmdebstrap --mode=… --format=… --variant=… --architectures=… [--components=…]
    /// [--include=…] [--hook-dir=…]… [--aptopt=…]… [--dpkgopt=…]… [--extract-hook=…]…
    /// [--customize-hook=…]…
    /// SUITE TARGET MIRROR`, with `SOURCE_DATE_EPOCH` and a fixed locale in the environment
    /// (so apt's error lines are in English and the output does not depend on the caller).
    public func build(_ options: BuildOptions) -> Command {
        var arguments = [
            "--mode=\(options.mode)",
            "--format=\(options.format)",
            "--variant=\(options.variant)",
            "--architectures=\(options.architecture)",
        ]
        if !options.components.isEmpty {
            arguments.append("--components=" + options.components.joined(separator: ","))
        }
        if !options.packages.isEmpty {
            arguments.append("--include=" + options.packages.joined(separator: ","))
        }
        arguments += options.hookDirectories.map { "--hook-dir=\($0)" }
        arguments += options.aptOptions.map { "--aptopt=\($0)" }
        arguments += options.dpkgOptions.map { "--dpkgopt=\($0)" }
        arguments += options.extractHooks.map { "--extract-hook=\($0)" }
        arguments += options.customizeHooks.map { "--customize-hook=\($0)" }
        arguments += [options.suite, options.target, options.mirror]
        var environment: [String: String?] = ["LC_ALL": "C.UTF-8", "LANGUAGE": nil]
        if let epoch = options.sourceDateEpoch {
            environment["SOURCE_DATE_EPOCH"] = String(epoch)
        }
        return Command(executable, arguments, environment: environment)
    }

    /// `mmdebstrap --version`.
    public func version() -> Command {
        Command(executable, ["--version"])
    }
}
