/// Environment variable names as the guests' systemd takes them.
package enum EnvironmentName {
    /// The names systemd (252) accepts for unit environments: shell-style `[A-Za-z_][A-Za-z0-9_]*`.
    package static func isValid(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }
}
