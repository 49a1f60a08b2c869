import RunnerCore

extension HostLayout {
    /// `/usr/local/lib/runner/previous`: symlink to the release `current` pointed at before the
    /// last upgrade (`releases/<version>`), what `runner-agent rollback` returns to; swapped
    /// atomically, like `current`.
    public var previousRelease: String { path("/usr/local/lib/runner/previous") }
}
