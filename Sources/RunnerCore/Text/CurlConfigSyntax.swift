/// curl's config-file syntax (`curl --config -`), in which both curl tools hand curl their
/// headers and secrets on stdin instead of its command line.
public enum CurlConfigSyntax {
    /// A value double-quoted with `\\`, `\"`, `\n`, `\r`, `\t` escapes.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
