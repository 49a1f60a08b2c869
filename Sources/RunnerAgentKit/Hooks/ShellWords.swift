import RunnerCore

#if canImport(Glibc)
    import Glibc
#endif

/// POSIX shell word splitting without expansion: what docker's CLI does to `options:` and what
/// the reference hooks do to re-split arguments (`shlex.split`).
public enum ShellWords {
    /// Splits `text` into words: blanks separate words; `'…'` is literal; in `"…"` a backslash
    /// escapes `"`, `\`, `$`, `` ` `` and a newline; outside quotes a backslash escapes the next
    /// character. No variable, command or glob expansion.
    public static func split(_ text: String) throws(RunnerError) -> [String] {
        var words: [String] = []
        var word = ""
        var inWord = false
        var iterator = Array(text).makeIterator()
        func unterminated(_ what: String) -> RunnerError {
            RunnerError(
                .invalidInput, input: text, problem: "has an unterminated \(what)",
                fix: "close the quote, or escape it with a backslash")
        }
        while let c = iterator.next() {
            switch c {
            case " ", "\t", "\n", "\r":
                if inWord { words.append(word) }
                word = ""
                inWord = false
            case "'":
                inWord = true
                while true {
                    guard let q = iterator.next() else { throw unterminated("single quote") }
                    if q == "'" { break }
                    word.append(q)
                }
            case "\"":
                inWord = true
                while true {
                    guard let q = iterator.next() else { throw unterminated("double quote") }
                    if q == "\"" { break }
                    if q == "\\" {
                        guard let next = iterator.next() else { throw unterminated("double quote") }
                        if next == "\n" { continue }
                        if !"\"\\$`".contains(next) { word.append("\\") }
                        word.append(next)
                    } else {
                        word.append(q)
                    }
                }
            case "\\":
                guard let next = iterator.next() else {
                    inWord = true
                    word.append("\\")
                    continue
                }
                if next == "\n" { continue }
                inWord = true
                word.append(next)
            default:
                inWord = true
                word.append(c)
            }
        }
        if inWord { words.append(word) }
        return words
    }
}
