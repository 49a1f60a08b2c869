import Logging
import RunnerArchive
import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// Builds `runner-bundle-<version>-linux-<arch>.tar.gz`: the files of ``BundleLayout`` under
/// their installed paths, `MANIFEST.json` first, written reproducibly (same inputs and
/// `SOURCE_DATE_EPOCH`, same bytes).
public struct BundleBuilder: Sendable {
    /// What goes into one bundle.
    public struct Inputs: Sendable, Hashable {
        public var version: BundleVersion
        /// The `runner-agent` binary.
        public var agent: String
        /// The `runner-hook` binary (by default, `runner-hook` beside the agent).
        public var hook: String
        /// The repository root holding `cloud-init/` and `images/host/`.
        public var sourceDirectory: String
        /// Where the bundle file goes (created when missing).
        public var outputDirectory: String
        public var arch: BundleArch
        /// The source commit recorded in the manifest, when known.
        public var sourceCommit: String?
        /// `SOURCE_DATE_EPOCH`.
        public var modificationTime: Int64
        /// Replace an existing bundle file.
        public var force: Bool
        /// The bundled files; ``BundleLayout/files`` unless a test says otherwise.
        public var files: [BundleLayout.File]
        /// The GitHub runner the release pins, recorded in the manifest (nil: none).
        public var runner: RunnerPackagePin?

        public init(
            version: BundleVersion,
            agent: String,
            hook: String? = nil,
            sourceDirectory: String,
            outputDirectory: String,
            arch: BundleArch = .host,
            sourceCommit: String? = nil,
            modificationTime: Int64 = SourceDateEpoch.defaultValue,
            force: Bool = false,
            files: [BundleLayout.File] = BundleLayout.files,
            runner: RunnerPackagePin? = nil
        ) {
            self.version = version
            self.agent = agent
            self.hook = hook ?? (FilePaths.parent(of: agent) + "/runner-hook")
            self.sourceDirectory = sourceDirectory
            self.outputDirectory = outputDirectory
            self.arch = arch
            self.sourceCommit = sourceCommit
            self.modificationTime = modificationTime
            self.force = force
            self.files = files
            self.runner = runner
        }
    }

    /// The bundle that was written.
    public struct Output: Sendable, Hashable {
        public var path: String
        public var sha256: String
        public var manifest: BundleManifest
    }

    public var logger: Logger

    public init(logger: Logger = Logger(label: "runner.bundle")) {
        self.logger = logger
    }

    /// The source path of each bundled file.
    public static func sourcePath(of file: BundleLayout.File, inputs: Inputs) -> String {
        switch file.source {
        case .agentBinary: inputs.agent
        case .hookBinary: inputs.hook
        case .repository(let relative): inputs.sourceDirectory + "/" + relative
        }
    }

    /// Writes the bundle and returns its path, digest and manifest.
    public func build(_ inputs: Inputs) throws(RunnerError) -> Output {
        let output = inputs.outputDirectory + "/" + BundleLayout.fileName(version: inputs.version, arch: inputs.arch)
        if !inputs.force && FilePaths.exists(output) {
            throw RunnerError(
                .alreadyExists, input: output, problem: "already exists",
                fix: "pass --force to replace it, or choose another --out")
        }
        var manifestFiles: [BundleManifest.File] = []
        var members: [ArchiveMember] = []
        for file in inputs.files {
            let source = Self.sourcePath(of: file, inputs: inputs)
            let size = try Self.checkSource(source, binary: file.source.binaryProduct)
            let digest = try SHA256Digest.hex(ofFile: source)
            manifestFiles.append(BundleManifest.File(path: file.path, size: size, mode: file.mode, sha256: digest))
            members.append(ArchiveMember(path: file.path, content: .file(source), permissions: file.mode))
        }
        let manifest = BundleManifest(
            bundleVersion: inputs.version, arch: inputs.arch, sourceCommit: inputs.sourceCommit, files: manifestFiles,
            runner: inputs.runner)
        members.append(
            ArchiveMember(path: BundleManifest.fileName, content: .bytes(try manifest.encoded()), permissions: 0o644))
        try FilePaths.createDirectory(inputs.outputDirectory)
        let options = ReproducibleArchive.Options(
            modificationTime: inputs.modificationTime, compression: .defaultGzip,
            leadingPaths: [BundleManifest.fileName])
        let summary = try withArchiveErrors { () throws(ArchiveError) in
            try ReproducibleArchive.write(members, to: output, options: options, replaceExisting: inputs.force)
        }
        let digest = try SHA256Digest.hex(ofFile: output)
        logger.info(
            "wrote bundle",
            metadata: ["path": "\(output)", "entries": "\(summary.entries)", "sha256": "\(digest)"])
        return Output(path: output, sha256: digest, manifest: manifest)
    }

    /// Requires `source` to be a readable regular file (and an executable one for `binary`, the
    /// product it should be); returns its size.
    static func checkSource(_ source: String, binary: String?) throws(RunnerError) -> Int64 {
        var st = stat()
        guard stat(source, &st) == 0 else {
            let missing = errno == ENOENT
            throw RunnerError(
                missing ? .notFound : .io, input: source,
                problem: missing ? "does not exist" : "cannot be read: \(String(cString: strerror(errno)))",
                fix: binary.map { product in
                    let option = product == "runner-hook" ? "--hook" : "--agent"
                    return
                        "build it first (swift build -c release --product \(product)) and pass its path with \(option)"
                } ?? "run from the repository root or pass it with --source")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw RunnerError(.invalidInput, input: source, problem: "is not a regular file", fix: nil)
        }
        guard access(source, R_OK) == 0 else {
            throw RunnerError(.permission, input: source, problem: "is not readable", fix: "check its permissions")
        }
        if let binary, (st.st_mode & 0o111) == 0 {
            throw RunnerError(
                .invalidInput, input: source, problem: "is not executable",
                fix: "pass the \(binary) binary that swift build produced")
        }
        return Int64(st.st_size)
    }

    /// The commit of the repository at `directory`, or nil when it is not a git checkout.
    public static func sourceCommit(of directory: String, runner: any CommandRunner, git: Git = Git()) async -> String?
    {
        let command = git.revParse(.init(repository: directory))
        guard let result = try? await runner.run(command), result.status.isSuccess else { return nil }
        return result.standardOutput.split(whereSeparator: \.isWhitespace).first.map(String.init)
    }
}
