import Foundation

/// A small YAML emitter for the one document shape `runner-build userdata` writes.
///
/// Why not Yams: the document is fixed (a few lists of strings and three `write_files`
/// items), every scalar is a string, and the bytes must be stable across library versions for
/// golden files and pinned digests. This emitter writes only two scalar styles whose rules fit
/// on a page: double-quoted strings (every character outside printable ASCII escaped, so no
/// YAML 1.1 line-break or BOM surprises) and literal blocks (`|`) for file content, used only
/// when the content is plainly representable; anything else becomes `encoding: b64`. The tests
/// check every rendering with PyYAML (what cloud-init itself uses) and `cloud-init schema`.
enum CloudConfigYAML {
    /// A `write_files` item.
    struct File: Sendable, Hashable {
        var path: String
        var owner: String
        var permissions: String
        var content: String
    }

    /// A `runcmd` item given as argv (exec'd by cloud-init, no shell).
    typealias Argv = [String]

    /// Renders the document.
    static func document(
        comments: [String], manageEtcHosts: String? = nil, packages: [String], packageUpdate: Bool, files: [File],
        runcmd: [Argv]
    ) -> String {
        var out = "#cloud-config\n"
        for comment in comments {
            out += "# " + comment.replacing("\n", with: " ") + "\n"
        }
        if let manageEtcHosts {
            out += "manage_etc_hosts: \(quoted(manageEtcHosts))\n"
        }
        if packageUpdate {
            out += "package_update: true\n"
        }
        out += "packages:\n"
        for package in packages {
            out += "  - \(quoted(package))\n"
        }
        out += "write_files:\n"
        for file in files {
            out += "  - path: \(quoted(file.path))\n"
            out += "    owner: \(quoted(file.owner))\n"
            out += "    permissions: \(quoted(file.permissions))\n"
            if let block = literalBlock(file.content, indent: "      ") {
                out += "    content: |\n" + block
            } else {
                out += "    encoding: b64\n"
                out += "    content: \(quoted(Data(file.content.utf8).base64EncodedString()))\n"
            }
        }
        out += "runcmd:\n"
        for argv in runcmd {
            out += "  - [" + argv.map(quoted).joined(separator: ", ") + "]\n"
        }
        return out
    }

    /// A double-quoted YAML scalar: printable ASCII as is (with `"` and `\` escaped), every other
    /// character as `\xXX`, `\uXXXX` or `\UXXXXXXXX`.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case " "..."~": out.unicodeScalars.append(scalar)
            default:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                if scalar.value <= 0xFF {
                    out += "\\x" + String(repeating: "0", count: 2 - hex.count) + hex
                } else if scalar.value <= 0xFFFF {
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out += "\\U" + String(repeating: "0", count: 8 - hex.count) + hex
                }
            }
        }
        return out + "\""
    }

    /// The content as a literal block body (each line indented), or nil when a literal block
    /// could not carry it exactly: it must end with exactly one newline, its first line must not
    /// start with a space, and every character must be printable ASCII, a tab, or a non-ASCII
    /// character that YAML 1.1 reads as itself (no NEL, LS, PS, BOM, C1 controls, surrogates).
    static func literalBlock(_ content: String, indent: String) -> String? {
        guard content.hasSuffix("\n"), !content.hasSuffix("\n\n"), !content.hasPrefix(" "),
            !content.hasPrefix("\t")
        else { return nil }
        for scalar in content.unicodeScalars {
            let v = scalar.value
            let ok =
                v == 0x0A || v == 0x09 || (0x20...0x7E).contains(v) || (0xA0...0xD7FF).contains(v)
                || (0xE000...0xFFFD).contains(v) && v != 0xFEFF || (0x10000...0x10FFFF).contains(v)
            if !ok || v == 0x2028 || v == 0x2029 { return nil }
        }
        var out = ""
        for line in content.dropLast().split(separator: "\n", omittingEmptySubsequences: false) {
            out += line.isEmpty ? "\n" : indent + line + "\n"
        }
        return out
    }
}
