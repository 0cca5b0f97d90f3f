/// A `.env` file (`envFile:`): `KEY=VALUE` lines, the format systemd's `EnvironmentFile=`,
/// docker compose and process-compose read.
///
/// Blank lines and lines starting with `#` are skipped; `export ` before a key is allowed; a
/// value in single quotes is taken as it is, one in double quotes understands `\n`, `\"` and
/// `\\`; an unquoted value ends at ` #`. Anything else is an error naming the line.
struct EnvironmentFile {
    struct ParseError: Error, CustomStringConvertible {
        var file: String
        var line: Int
        var message: String
        var description: String { "\(file):\(line): \(message)" }
    }

    /// The largest file read: an environment is small, a mistaken path may not be.
    static let maximumSize = 1 << 20

    /// Reads and parses the file, in file order (a key given twice keeps its last value).
    static func read(_ path: String) throws -> [(key: String, value: String)] {
        let read = try Posix.readRegularFile(path, limit: maximumSize, timeoutNanoseconds: 2_000_000_000)
        switch read {
        case .bytes(let bytes): return try parse(String(decoding: bytes, as: UTF8.self), file: path)
        case .notRegular(let kind): throw ParseError(file: path, line: 0, message: "it is \(kind), not a regular file")
        case .tooLarge: throw ParseError(file: path, line: 0, message: "it is larger than 1 MiB")
        case .tooSlow: throw ParseError(file: path, line: 0, message: "reading it took longer than 2 s")
        }
    }

    static func parse(_ text: String, file: String) throws -> [(key: String, value: String)] {
        var entries: [(key: String, value: String)] = []
        // `isNewline`: "\r\n" is one Character in Swift, so splitting on "\n" alone would miss it.
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            var line = raw
            line = line.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop { $0 == " " } }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(file: file, line: index + 1, message: "expected KEY=VALUE, got '\(line.prefix(40))'")
            }
            let key = String(line[..<equals]).trimmingSpaces
            guard let first = key.unicodeScalars.first, first == "_" || first.properties.isAlphabetic,
                key.unicodeScalars.allSatisfy({ $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) })
            else {
                throw ParseError(file: file, line: index + 1, message: "'\(key)' is not a variable name (letters, digits and '_')")
            }
            let rest = line[line.index(after: equals)...].drop { $0 == " " || $0 == "\t" }
            entries.append((key, try value(rest, file: file, line: index + 1)))
        }
        return entries
    }

    private static func value(_ text: Substring, file: String, line: Int) throws -> String {
        guard let quote = text.first, quote == "'" || quote == "\"" else {
            // Unquoted: a comment starts at " #".
            let end = text.range(of: " #")?.lowerBound ?? text.endIndex
            return String(text[..<end]).trimmingSpaces
        }
        var result = ""
        var escaped = false
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            if escaped {
                switch character {
                case "n": result.append("\n")
                case "t": result.append("\t")
                default: result.append(character)
                }
                escaped = false
            } else if character == "\\" && quote == "\"" {
                escaped = true
            } else if character == quote {
                let after = text[text.index(after: index)...].drop { $0 == " " || $0 == "\t" }
                guard after.isEmpty || after.hasPrefix("#") else {
                    throw ParseError(file: file, line: line, message: "text after the closing quote")
                }
                return result
            } else {
                result.append(character)
            }
            index = text.index(after: index)
        }
        throw ParseError(file: file, line: line, message: "the quoted value has no closing \(quote)")
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var view = Substring(self)
        while view.first == " " || view.first == "\t" { view = view.dropFirst() }
        while view.last == " " || view.last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
