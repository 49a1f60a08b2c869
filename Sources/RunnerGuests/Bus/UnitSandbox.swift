import RunnerCore

/// Defence in depth for the units the runner starts in a guest (steps, health probes, port
/// proxies): docker's default capability bounding set, and a system-call deny list in the spirit
/// of docker's default seccomp profile. The guest itself is the main boundary; this keeps a step
/// from mounting, loading modules, rebooting, using keyrings, bpf, perf, or making namespaces,
/// even as root in its guest.
///
/// `NoNewPrivileges=` is left off (as docker does): `sudo`/`su` inside a job's image keep
/// working. The guest's manager holds `CAP_SYS_ADMIN`, so systemd installs the filter without
/// implying it.
package struct UnitSandbox: Sendable, Hashable {
    /// The capabilities the unit keeps (names as `CAP_X`); see ``LinuxCapability``.
    var capabilities: [String] = Self.dockerDefaultCapabilities

    init(adding extra: [String] = []) {
        for name in extra where !capabilities.contains(name) { capabilities.append(name) }
    }

    /// docker's default set (moby `oci/caps/defaults.go`).
    static let dockerDefaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE",
        "CAP_SETFCAP",
    ]

    /// `CapabilityBoundingSet=` as systemd's D-Bus API takes it: a bit mask.
    var boundingSet: UInt64 {
        capabilities.reduce(0) { mask, name in mask | (LinuxCapability.numbers[name].map { UInt64(1) << $0 } ?? 0) }
    }

    /// The system calls denied with EPERM: mounting (explicitly, so `chroot` stays as docker
    /// allows it), modules, swap, reboot and kexec, raw I/O, clock setting, obsolete and
    /// CPU-emulation calls, keyrings, bpf, perf, handle-based opens, userfaultfd, fanotify, acct
    /// and quotas.
    static let systemCallDenyList = [
        "@clock", "@cpu-emulation", "@module", "@obsolete", "@raw-io", "@reboot", "@swap",
        "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
        "open_tree", "mount_setattr", "add_key", "keyctl", "request_key", "bpf", "perf_event_open",
        "lookup_dcookie", "open_by_handle_at", "userfaultfd", "fanotify_init", "acct", "quotactl", "nfsservctl",
    ]

    /// EPERM, what a denied call returns (`SystemCallErrorNumber=`).
    static let systemCallErrorNumber: Int32 = 1

    /// Appends the unit properties: `CapabilityBoundingSet` (t), `SystemCallFilter` ((bas), a deny
    /// list), `SystemCallErrorNumber` (i), `RestrictNamespaces` (t, the namespace types allowed:
    /// none).
    func append(to properties: inout DBusWriter) {
        properties.property("CapabilityBoundingSet", "t") { $0.uint64(boundingSet) }
        properties.property("SystemCallFilter", "(bas)") { value in
            value.structure { filter in
                filter.bool(false)
                filter.array(alignment: 4) { list in Self.systemCallDenyList.forEach { list.string($0) } }
            }
        }
        properties.property("SystemCallErrorNumber", "i") { $0.uint32(UInt32(bitPattern: Self.systemCallErrorNumber)) }
        properties.property("RestrictNamespaces", "t") { $0.uint64(0) }
    }
}
