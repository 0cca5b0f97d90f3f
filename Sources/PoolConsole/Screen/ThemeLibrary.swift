import FoundationEssentials

/// A theme file that cannot be used: which file, which line, what is wrong.
public struct ThemeError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { "\(file):\(line): \(message)" }
}

/// Finds the themes an operator can choose: the built-in ones, then `*.theme` files from
/// `$XDG_CONFIG_HOME/pooltop/themes` (or `~/.config/pooltop/themes`), then the installed
/// themes directory. A file's name (without `.theme`) names its theme; a later file of the
/// same name does not replace an earlier one.
public enum ThemeLibrary {
    /// The directories searched, in order.
    public static var searchPath: [String] {
        var directories: [String] = []
        let environment = ProcessInfo.processInfo.environment
        if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty {
            directories.append("\(config)/pooltop/themes")
        } else if let home = environment["HOME"] {
            directories.append("\(home)/.config/pooltop/themes")
        }
        let executable = ProcessInfo.processInfo.arguments.first.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath() }
        if let bin = executable?.deletingLastPathComponent() {
            directories.append(bin.deletingLastPathComponent().appendingPathComponent("share/pooltop/themes").path)
            // A build tree: .build/<triple>/<configuration>/pooltop, themes at the top of the checkout.
            directories.append(bin.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("themes").path)
        }
        return directories
    }

    /// Every theme found; files that fail to parse are reported through `problems` and skipped.
    public static func load(problems: ((ThemeError) -> Void)? = nil) -> [Theme] {
        var themes = Theme.builtIn
        for directory in searchPath {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() where name.hasSuffix(".theme") {
                let path = "\(directory)/\(name)"
                let themeName = String(name.dropLast(".theme".count))
                guard !themes.contains(where: { $0.name == themeName }) else { continue }
                do {
                    let text = try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
                    themes.append(try parse(text, name: themeName, file: path))
                } catch let error as ThemeError {
                    problems?(error)
                } catch {
                    problems?(ThemeError(file: path, line: 0, message: "cannot read it: \(error)"))
                }
            }
        }
        return themes
    }

    /// Parses a theme file: `role = "COLOUR [on COLOUR] [bold] [reverse] [dim]"` per line, `#` comments.
    /// Every role must be defined.
    public static func parse(_ text: String, name: String, file: String = "<theme>") throws(ThemeError) -> Theme {
        var styles: [StyleRole: RoleStyle] = [:]
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            // A line starting with '#' is a comment; after the quoted style anything is ignored.
            let trimmed = raw.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let parts = trimmed.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else {
                throw ThemeError(file: file, line: number, message: "expected role = \"style\"")
            }
            guard let role = StyleRole(rawValue: parts[0]) else {
                throw ThemeError(file: file, line: number, message: "unknown role '\(parts[0])'")
            }
            var value = parts[1]
            guard value.hasPrefix("\""), let close = value.dropFirst().firstIndex(of: "\"") else {
                throw ThemeError(file: file, line: number, message: "the style must be in double quotes")
            }
            value = String(value[value.index(after: value.startIndex)..<close])
            styles[role] = try style(value, file: file, line: number)
        }
        let missing = StyleRole.allCases.filter { styles[$0] == nil }
        guard missing.isEmpty else {
            throw ThemeError(file: file, line: 0, message: "roles not defined: \(missing.map(\.rawValue).joined(separator: ", "))")
        }
        return Theme(name: name, styles: styles)
    }

    private static func style(_ text: String, file: String, line: Int) throws(ThemeError) -> RoleStyle {
        var style = RoleStyle()
        var words = text.split(separator: " ").map(String.init)[...]
        func color(_ word: String) throws(ThemeError) -> ThemeColor {
            if word == "default" { return .terminalDefault }
            guard word.hasPrefix("#"), word.count == 7, let value = UInt32(word.dropFirst(), radix: 16) else {
                throw ThemeError(file: file, line: line, message: "'\(word)' is not a colour; write #RRGGBB or default")
            }
            return .rgb(UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
        }
        guard let first = words.popFirst() else { throw ThemeError(file: file, line: line, message: "empty style") }
        style.foreground = try color(first)
        while let word = words.popFirst() {
            switch word {
            case "on":
                guard let background = words.popFirst() else {
                    throw ThemeError(file: file, line: line, message: "'on' needs a background colour")
                }
                style.background = try color(background)
            case "bold": style.bold = true
            case "reverse": style.reverse = true
            case "dim": style.dim = true
            default: throw ThemeError(file: file, line: line, message: "unknown word '\(word)'; use on, bold, reverse or dim")
            }
        }
        return style
    }
}
