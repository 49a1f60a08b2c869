/// Text listings of archive entries.
public enum ArchiveListing {
    /// One line per entry, like `tar -tv --numeric-owner` without dates:
    /// `-rwxr-xr-x 0/0 1234 bin/runner-agent`, `lrwxrwxrwx 0/0 0 a -> b`, `hrw-r--r-- 0/0 0 b link to a`.
    public static func render(_ entries: [ArchiveEntry]) -> String {
        var text = ""
        for entry in entries {
            var line = "\(entry.kind == .hardlink ? "h" + entry.modeString.dropFirst() : entry.modeString)"
            line += " \(entry.uid)/\(entry.gid)"
            switch entry.kind {
            case .characterDevice, .blockDevice: line += " \(entry.deviceMajor),\(entry.deviceMinor)"
            default: line += " \(entry.size)"
            }
            line += " \(entry.path)"
            if let target = entry.linkTarget {
                line += entry.kind == .hardlink ? " link to \(target)" : " -> \(target)"
            }
            text += line + "\n"
        }
        return text
    }
}
