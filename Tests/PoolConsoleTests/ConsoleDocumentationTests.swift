import FoundationEssentials
import Testing

@testable import PoolConsole

@Suite("Console documentation matches the code")
struct ConsoleDocumentationTests {
    static func read(_ relative: String) -> String {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return (try? String(decoding: Data(contentsOf: URL(fileURLWithPath: "\(path)/\(relative)")), as: UTF8.self)) ?? ""
    }

    @Test("docs/pooltop.md documents every key of the help screen")
    func keys() {
        let text = Self.read("docs/pooltop.md")
        for entry in ConsoleHelp.entries { #expect(text.contains("| `\(entry.keys)` |"), "key \(entry.keys)") }
    }

    @Test("docs/themes.md describes every style role")
    func roles() {
        let text = Self.read("docs/themes.md")
        for role in StyleRole.allCases { #expect(text.contains("| `\(role.rawValue)` |"), "role \(role.rawValue)") }
    }
}
