import CNcursesw
import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// The real terminal, through ncursesw: the only file that imports curses.
public final class CursesTerminal: Terminal {
    private let screen: UnsafeMutablePointer<WINDOW>
    private var previous: ScreenBuffer?
    private var pairs: [StyleRole: (pair: Int16, attributes: attr_t)] = [:]
    private var themeName: String?
    /// What the terminal's colours allow; themes are brought down to it.
    public let colorDepth: ColorDepth
    /// Whether the locale is UTF-8; if not, characters are drawn with ASCII stand-ins.
    public let isUnicode: Bool
    private var isRestored = false

    /// Takes over the terminal. `NO_COLOR` (any value) or `monochrome` keeps it colourless.
    public init() {
        setlocale(LC_ALL, "")
        isUnicode = String(cString: nl_langinfo(nl_item(CODESET))) == "UTF-8"
        // A crash of this process (a Swift trap is a SIGILL or SIGTRAP) must not leave the
        // operator's terminal raw, silent and on the alternate screen: the crash guard puts
        // back these modes and leaves full-screen mode before the process dies.
        CrashGuard.saveTerminalModes()
        // Safe: initscr exits the process itself when it cannot set up the terminal.
        screen = initscr()!
        let capabilities: [String] = ["sgr0", "cnorm", "rmcup"]
        let restore = capabilities.compactMap { name in name.withCString { pt_terminfo_string($0) }.map { String(cString: $0) } }.joined()
        CrashGuard.restoreTerminalOnCrash(writing: restore)
        raw()  // Ctrl-C arrives as a key, so the console decides (quit or detach) and restores the terminal.
        noecho()
        keypad(screen, true)
        pt_set_escdelay(25)
        curs_set(0)
        if has_colors() && getenv("NO_COLOR") == nil {
            start_color()
            use_default_colors()
            colorDepth = ColorDepth.of(colors: Int(pt_colors()), rgb: "RGB".withCString { pt_terminfo_flag($0) } != 0)
        } else {
            colorDepth = .none
        }
    }

    deinit { restore() }

    public var size: (width: Int, height: Int) { (Int(getmaxx(screen)), Int(getmaxy(screen))) }

    public func present(_ frame: ScreenBuffer, theme: Theme) {
        if themeName != theme.name {
            setUp(theme)
            previous = nil
        }
        if previous?.width != frame.width || previous?.height != frame.height { werase(screen) }
        for row in frame.changedRows(since: previous) {
            var column = 0
            while column < frame.width {
                let role = frame[column, row].role
                var run = ""
                let start = column
                while column < frame.width && frame[column, row].role == role {
                    run.append(frame[column, row].character)
                    column += 1
                }
                // The bottom-right cell cannot be written without scrolling: leave it.
                if row == frame.height - 1 && column == frame.width { run = String(run.dropLast()) }
                if !isUnicode { run = ASCIIFallback.transliterate(run) }
                let style = pairs[role] ?? (0, PT_A_NORMAL)
                wattr_set(screen, style.attributes, style.pair, nil)
                mvwaddstr(screen, Int32(row), Int32(start), run)
            }
        }
        wattr_set(screen, PT_A_NORMAL, 0, nil)
        wnoutrefresh(screen)
        doupdate()
        previous = frame
    }

    private func setUp(_ theme: Theme) {
        themeName = theme.name
        pairs = [:]
        var next: Int16 = 1
        // Without colours a colour theme loses what it says by colour (the table headings, the
        // selection): the monochrome theme says it with reverse and bold instead.
        let usesColor = theme.styles.values.contains { $0.foreground != .terminalDefault || $0.background != .terminalDefault }
        let effective = colorDepth == .none && usesColor ? Theme.monochrome : theme
        for role in StyleRole.allCases {
            let style = effective.style(role)
            var attributes = PT_A_NORMAL
            if style.bold { attributes |= PT_A_BOLD }
            if style.reverse { attributes |= PT_A_REVERSE }
            if style.dim { attributes |= PT_A_DIM }
            var pair: Int16 = 0
            if colorDepth != .none && (style.foreground != .terminalDefault || style.background != .terminalDefault) {
                // Extended pairs: a 24-bit colour number does not fit init_pair's shorts.
                pt_init_pair(Int32(next), Int32(style.foreground.number(at: colorDepth)), Int32(style.background.number(at: colorDepth)))
                pair = next
                next += 1
            }
            pairs[role] = (pair, attributes)
        }
    }

    public func readKey(timeoutMilliseconds: Int32) -> ConsoleKey? {
        // A closed terminal makes every read fail at once: without this check the loop would spin.
        var input = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        if poll(&input, 1, 0) < 0 || input.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0 { return .hangup }
        wtimeout(screen, timeoutMilliseconds)
        let code = wgetch(screen)
        switch code {
        case ERR: return nil
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_PPAGE: return .pageUp
        case KEY_NPAGE: return .pageDown
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_RESIZE:
            previous = nil
            return .resize
        case KEY_BACKSPACE, 127, 8: return .backspace
        case 10, 13, KEY_ENTER: return .enter
        case 27: return .escape
        case 9: return .tab
        case 3: return .character("q")  // Ctrl-C: quit (hosted: asks first) or detach.
        default:
            for n in 1...12 where code == pt_key_f(Int32(n)) { return .function(n) }
            if code >= 32 && code < 127, let scalar = Unicode.Scalar(UInt32(code)) { return .character(Character(scalar)) }
            return nil
        }
    }

    public func restore() {
        guard !isRestored else { return }
        isRestored = true
        curs_set(1)
        endwin()
        CrashGuard.restoreTerminalOnCrash(writing: nil)
    }
}
