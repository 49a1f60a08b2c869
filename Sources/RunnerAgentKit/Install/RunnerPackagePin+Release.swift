import RunnerCore

extension RunnerPackagePin {
    /// The GitHub runner the installer goes by when config.env sets no `RUNNER_VERSION`: the one
    /// `bundle` pins (its `MANIFEST.json`, read without extracting), else the one a source
    /// checkout pins (`ci/actions-runner.pin`), else the one of the release `current` points at.
    static func forInstall(bundle: String?, unpacker: any ReleaseUnpacker, layout: HostLayout) throws(RunnerError)
        -> RunnerPackagePin?
    {
        if let bundle { return try BundleUnpacker.peekManifest(bundle).runner }
        if let checkout = unpacker as? CheckoutRelease { return try checkout.manifest().runner }
        return ofRelease(layout.currentRelease)
    }

    /// The pin in the `MANIFEST.json` of an unpacked release directory (`releases/<version>`, or
    /// `current`), or nil when it has none or no readable manifest.
    static func ofRelease(_ directory: String) -> RunnerPackagePin? {
        guard let bytes = try? FilePaths.read(directory + "/" + BundleManifest.fileName),
            bytes.count <= BundleManifest.maxSize
        else { return nil }
        return (try? BundleManifest.decode(bytes, source: directory))?.runner
    }
}
