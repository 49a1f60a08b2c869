import FoundationEssentials
import RunnerCore
import Testing

/// The rules that keep the source tree readable, checked on the tree itself: each module's
/// folders form layers (no two folders use each other's types, directly or around a loop), and
/// every file is named after a type it declares or extends.
@Suite struct ArchitectureTests {
    /// `Sources/`, found from this file's path.
    static let sources: String = {
        var path = #filePath
        for _ in 0..<3 { path = FilePaths.parent(of: path) }
        return path + "/Sources"
    }()

    /// The Swift modules under `Sources/` (C targets have no `.swift` files).
    static var modules: [String] {
        FilePaths.entries(of: sources).sorted().filter { !swiftFiles(in: sources + "/" + $0).isEmpty }
    }

    static func swiftFiles(in directory: String) -> [String] {
        var found: [String] = []
        var isDirectory = false
        for entry in FilePaths.entries(of: directory) {
            let path = directory + "/" + entry
            if entry.hasSuffix(".swift") {
                found.append(path)
            } else if !entry.hasSuffix(".docc"), FilePaths.exists(path, isDirectory: &isDirectory), isDirectory {
                found += swiftFiles(in: path)
            }
        }
        return found
    }

    /// The file's text without comments (doc comments name other types in prose).
    static func code(_ path: String) throws -> String {
        let text = String(decoding: try FilePaths.read(path), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in
                guard let range = line.firstRange(of: "//") else { return String(line) }
                return String(line[..<range.lowerBound])
            }
            .joined(separator: "\n")
    }

    static var declaration: Regex<(Substring, Substring)> {
        #/(?m)^(?:public |package )?(?:final )?(?:struct|enum|class|protocol|actor) (\w+)/#
    }
    static var extensionDeclaration: Regex<(Substring, Substring)> { #/(?m)^(?:public |package )?extension (\w+)/# }

    static func identifiers(in text: String) -> Set<Substring> {
        var words: Set<Substring> = []
        var start: String.Index?
        for index in text.indices {
            let c = text[index]
            if c.isLetter || c.isNumber || c == "_" {
                if start == nil { start = index }
            } else if let s = start {
                words.insert(text[s..<index])
                start = nil
            }
        }
        if let s = start { words.insert(text[s...]) }
        return words
    }

    @Test(arguments: modules)
    func foldersOfAModuleFormLayers(module: String) throws {
        let root = Self.sources + "/" + module
        func folder(_ path: String) -> String {
            let relative = path.dropFirst(root.count + 1)
            return relative.contains("/") ? String(relative.prefix { $0 != "/" }) : "."
        }
        var owner: [Substring: String] = [:]
        var texts: [(folder: String, words: Set<Substring>)] = []
        for file in Self.swiftFiles(in: root) {
            let text = try Self.code(file)
            for match in text.matches(of: Self.declaration) { owner[match.1] = folder(file) }
            texts.append((folder(file), Self.identifiers(in: text)))
        }
        var uses: [String: [String: Set<Substring>]] = [:]
        for (from, words) in texts {
            for word in words {
                guard let to = owner[word], to != from, from != ".", to != "." else { continue }
                uses[from, default: [:]][to, default: []].insert(word)
            }
        }
        func reaches(_ start: String, _ goal: String) -> Bool {
            var seen: Set<String> = [start]
            var stack = [start]
            while let next = stack.popLast() {
                if next == goal { return true }
                for target in uses[next, default: [:]].keys where seen.insert(target).inserted { stack.append(target) }
            }
            return false
        }
        for (from, targets) in uses {
            for (to, names) in targets where reaches(to, from) {
                let back = uses[to]?[from].map { $0.sorted().joined(separator: ", ") } ?? "(through other folders)"
                Issue.record(
                    "\(module): \(from)/ uses \(to)/ (\(names.sorted().joined(separator: ", "))) and \(to)/ leads back to \(from)/ (\(back))"
                )
            }
        }
    }

    @Test(arguments: modules)
    func everyFileIsNamedAfterATypeItHolds(module: String) throws {
        for file in Self.swiftFiles(in: Self.sources + "/" + module) {
            let name = FilePaths.basename(file).dropLast(".swift".count)
            guard name != "Entrypoint" else { continue }
            let subject = name.prefix { $0 != "+" }
            let text = try Self.code(file)
            let declared = Set(text.matches(of: Self.declaration).map(\.1))
            let extended = Set(text.matches(of: Self.extensionDeclaration).map(\.1))
            #expect(
                declared.contains(subject) || extended.contains(subject),
                "\(module)/\(file.dropFirst(Self.sources.count + module.count + 2)) holds \(declared.union(extended).sorted())"
            )
        }
    }

    /// Every command (`ParsableCommand`) sits in `Commands/<Noun>/` of its module, one per file
    /// named after it, its name unique across the package; only the two roots sit in `Commands/`.
    @Test func everyCommandLivesInCommandsNoun() throws {
        let command = #/(?m)^(?:public |package )?struct (\w+): [^{]*ParsableCommand\b/#
        let roots: Set<Substring> = ["RunnerAgentCommand", "RunnerBuildCommand"]
        var seen: [Substring: String] = [:]
        for module in Self.modules {
            for file in Self.swiftFiles(in: Self.sources + "/" + module) {
                let relative = String(file.dropFirst(Self.sources.count + 1))
                let names = try Self.code(file).matches(of: command).map(\.1)
                guard let name = names.first else { continue }
                #expect(names.count == 1, "\(relative) holds \(names.count) commands: \(names)")
                let parts = relative.split(separator: "/")
                let inNoun = parts.count == 4 && parts[1] == "Commands"
                let isRoot = parts.count == 3 && parts[1] == "Commands" && roots.contains(name)
                #expect(inNoun || isRoot, "\(relative): a command belongs in Sources/<Module>/Commands/<Noun>/")
                #expect(parts.last == "\(name).swift", "\(relative) holds \(name)")
                if let other = seen.updateValue(relative, forKey: name) {
                    Issue.record("\(name) is declared twice: \(other) and \(relative)")
                }
            }
        }
        #expect(seen.count >= 30, "found \(seen.count) commands: is the pattern still right?")
    }
}
