import RunnerCore

/// The guests' paths on a host: runtime state under `/run/runner`, gone at reboot. Only the
/// guest helper and the hook use them, so they live here rather than in ``HostLayout`` itself.
extension HostLayout {
    /// `/run/runner`: runtime state, gone at reboot.
    package var runtimeDirectory: String { path("/run/runner") }
    /// `/run/runner/guests`: one state file per running guest.
    package var guestStateDirectory: String { path("/run/runner/guests") }
    /// `/run/runner/guests/<name>.json`: what we know about one running guest.
    package func guestRecord(_ name: String) -> String { guestStateDirectory + "/" + name + ".json" }
    /// `/run/runner/guests/<name>.log`: the nspawn process's own output.
    package func guestLog(_ name: String) -> String { guestStateDirectory + "/" + name + ".log" }
    /// `/run/runner/guests/<name>.notify`: the sd_notify socket while the guest boots.
    package func guestNotifySocket(_ name: String) -> String { guestStateDirectory + "/" + name + ".notify" }
    /// `/run/runner/guests/<name>.hosts`: the job guest's `/etc/hosts` (service names).
    package func guestHostsFile(_ name: String) -> String { guestStateDirectory + "/" + name + ".hosts" }
    /// `/run/runner/guests/<name>.resolv.conf`: a guest's resolv.conf on a private network.
    package func guestResolvFile(_ name: String) -> String { guestStateDirectory + "/" + name + ".resolv.conf" }
    /// `/run/runner/network.lock`: held while a job's network is made, joined or removed.
    package var guestNetworkLock: String { runtimeDirectory + "/network.lock" }
    /// `/run/runner/network.filter`: the digests of the filter table's rules as last applied
    /// and of `nft`'s listing of the table right after (0600): while both still match, a job's
    /// network need not apply the table again.
    package var guestNetworkFilterRecord: String { runtimeDirectory + "/network.filter" }
    /// `/run/runner/guests/<name>.env.conf`: a service guest's environment drop-in (0600).
    package func guestEnvironmentFile(_ name: String) -> String { guestStateDirectory + "/" + name + ".env.conf" }
    /// `/run/runner/relay`: the step relays' sockets (searchable by the runner user, unlike
    /// the guest state directory).
    package var guestRelayDirectory: String { path("/run/runner/relay") }
    /// `/run/runner/relay/<name>.sock`: the step relay of one guest, owned by the runner user.
    package func guestRelaySocket(_ name: String) -> String { guestRelayDirectory + "/" + name + ".sock" }
    /// `/opt/actions-runner/externals`: node and friends, bound read-only at `/__e`.
    package var runnerExternalsDirectory: String { runnerDirectory + "/externals" }
    /// `/run/systemd/nspawn/propagate/<name>`: nspawn's per-guest directory, which it cannot
    /// remove itself when `/run` is not a tmpfs.
    package func nspawnPropagateDirectory(_ name: String) -> String { path("/run/systemd/nspawn/propagate/" + name) }
    /// `/run/runner/guests/<name>.binds`: the staging mounts of one guest's bind sources (0700
    /// root); nspawn binds `<index>` entries, never the caller's paths.
    package func guestBindsDirectory(_ name: String) -> String { guestStateDirectory + "/" + name + ".binds" }
    /// `/run/runner/guests/<name>.binds/<index>`: the staged source of the guest's bind `index`
    /// (a directory, or an empty file for a file source) with the checked source mounted on it.
    package func guestBindStaging(_ name: String, index: Int) -> String { guestBindsDirectory(name) + "/\(index)" }
}
