import FoundationEssentials
import Testing

@testable import PoolConsole

@Suite("Themes")
struct ThemeTests {
    static let themesDirectory: String = {
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/themes"
    }()

    @Test("every theme file in themes/ parses and defines every role")
    func files() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.themesDirectory).filter { $0.hasSuffix(".theme") }
        #expect(names.count >= 4)
        for name in names {
            let text = try String(decoding: Data(contentsOf: URL(fileURLWithPath: "\(Self.themesDirectory)/\(name)")), as: UTF8.self)
            let theme = try ThemeLibrary.parse(text, name: String(name.dropLast(6)), file: name)
            #expect(Set(theme.styles.keys) == Set(StyleRole.allCases), "\(name)")
        }
    }

    @Test("the built-in themes define every role")
    func builtIn() {
        for theme in Theme.builtIn { #expect(Set(theme.styles.keys) == Set(StyleRole.allCases), "\(theme.name)") }
    }

    @Test("a bad theme file names the line and what is wrong", arguments: [
        ("normal = \"#12\"", 1, "not a colour"),
        ("nope = \"default\"", 1, "unknown role 'nope'"),
        ("normal = default", 1, "double quotes"),
        ("normal = \"default sparkly\"", 1, "unknown word 'sparkly'"),
        ("# only a comment\nnormal = \"default\"", 0, "roles not defined"),
    ])
    func errors(text: String, line: Int, message: String) {
        do {
            _ = try ThemeLibrary.parse(text, name: "bad", file: "bad.theme")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == line && error.message.contains(message), "\(error)")
        }
    }

    @Test("colours fall back to 256 and 8 colours")
    func fallback() {
        #expect(ThemeColor.rgb(255, 0, 0).basic == 1)
        #expect(ThemeColor.rgb(0, 0, 0).basic == 0)
        #expect(ThemeColor.rgb(255, 255, 255).basic == 7)
        #expect(ThemeColor.rgb(255, 0, 0).xterm256 == 196)
        #expect(ThemeColor.terminalDefault.basic == -1)
    }
}
