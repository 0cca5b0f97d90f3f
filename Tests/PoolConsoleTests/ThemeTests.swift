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

    @Test("the terminal's colours choose the depth: 24-bit with RGB or 16M colours, else 256, 8, none")
    func depth() {
        #expect(ColorDepth.of(colors: 0x100_0000, rgb: false) == .direct)
        #expect(ColorDepth.of(colors: 0x1_0000, rgb: true) == .direct)
        #expect(ColorDepth.of(colors: 256, rgb: true) == .palette256, "a 256-colour entry with RGB still takes palette numbers")
        #expect(ColorDepth.of(colors: 256, rgb: false) == .palette256)
        #expect(ColorDepth.of(colors: 8, rgb: false) == .basic)
        #expect(ColorDepth.of(colors: 0, rgb: false) == .none)
        let sky = ThemeColor.rgb(0x5F, 0xD7, 0xFF)
        #expect(sky.number(at: .direct) == 0x5FD7FF)
        #expect(sky.number(at: .palette256) == 81)
        #expect(sky.number(at: .basic) == 6)
        #expect(sky.number(at: .none) == -1)
        #expect(ThemeColor.terminalDefault.number(at: .direct) == -1)
    }

    @Test("without a UTF-8 locale every character becomes one ASCII character, so columns stay put")
    func ascii() {
        #expect(ASCIIFallback.transliterate("↑↓Move ▁▂▃▄▅▆▇█ …") == "^vMove _.,-=+*# .")
        #expect(ASCIIFallback.transliterate("plain text 123") == "plain text 123")
        #expect(ASCIIFallback.transliterate("日本 é") == "?? ?")
        // Every non-ASCII character the console draws has a stand-in of its own.
        for (from, to) in ASCIIFallback.table { #expect(to.isASCII && to != "?", "\(from)") }
        // And every frame the console draws, overlays included, has stand-ins for all it shows.
        var states: [ConsoleState] = [ConsoleState()]
        for mode: ConsoleState.Mode in [.help(), .jobForm(JobForm(group: "jobs")), .quitting, .filter] {
            var state = ConsoleState()
            state.mode = mode
            states.append(state)
        }
        var scrolled = ConsoleState()
        scrolled.eventsScroll = 1
        states.append(scrolled)
        for state in states {
            var trends = ConsoleTrends()
            trends.update(fixedSnapshot())
            let text = ConsoleView.render(
                snapshot: fixedSnapshot(), events: fixedEvents(), state: state, trends: trends, poolName: "demo", isHosting: true,
                width: 120, height: 40
            ).text
            let unknown = text.filter { !$0.isASCII && ASCIIFallback.transliterate($0) == "?" }
            #expect(unknown.isEmpty, "no stand-in for \(Set(unknown)) in mode \(state.mode)")
        }
    }
}
