/// How many colours the terminal can show, by its terminfo entry: themes are written in 24-bit
/// RGB and brought down to what the terminal has.
public enum ColorDepth: Hashable, Sendable {
    /// No colour (`NO_COLOR`, or a terminal without colours): emphasis only.
    case none
    /// The 8 basic colours.
    case basic
    /// The xterm 256-colour palette.
    case palette256
    /// 24-bit colour given directly (terminfo's `RGB` flag, such as `xterm-direct`).
    case direct

    /// The depth for a terminal reporting `colors` colours, with or without the `RGB` flag.
    public static func of(colors: Int, rgb: Bool) -> ColorDepth {
        if colors >= 0x100_0000 || (rgb && colors > 256) { return .direct }
        if colors >= 256 { return .palette256 }
        if colors >= 8 { return .basic }
        return .none
    }
}

/// A colour as themes write it: a 24-bit RGB value, or the terminal's default.
public enum ThemeColor: Hashable, Sendable {
    case terminalDefault
    case rgb(UInt8, UInt8, UInt8)

    /// The nearest of the 8 basic colours (0 black … 7 white), for terminals without more.
    public var basic: Int {
        guard case .rgb(let r, let g, let b) = self else { return -1 }
        let bright = max(r, g, b)
        if bright < 64 { return 0 }
        let threshold = UInt8(Double(bright) * 0.6)
        return (r >= threshold ? 1 : 0) | (g >= threshold ? 2 : 0) | (b >= threshold ? 4 : 0)
    }

    /// The colour number to give curses at `depth`: -1 for the terminal's default.
    public func number(at depth: ColorDepth) -> Int {
        switch depth {
        case .none: return -1
        case .basic: return basic
        case .palette256: return xterm256
        case .direct:
            guard case .rgb(let r, let g, let b) = self else { return -1 }
            return Int(r) << 16 | Int(g) << 8 | Int(b)
        }
    }

    /// The nearest colour of the xterm 256-colour cube.
    public var xterm256: Int {
        guard case .rgb(let r, let g, let b) = self else { return -1 }
        func level(_ value: UInt8) -> Int { value < 48 ? 0 : value < 115 ? 1 : Int((Int(value) - 35) / 40) }
        return 16 + 36 * level(r) + 6 * level(g) + level(b)
    }
}

/// How one role looks.
public struct RoleStyle: Hashable, Sendable {
    public var foreground: ThemeColor
    public var background: ThemeColor
    public var bold: Bool
    public var reverse: Bool
    public var dim: Bool

    public init(
        foreground: ThemeColor = .terminalDefault, background: ThemeColor = .terminalDefault, bold: Bool = false,
        reverse: Bool = false, dim: Bool = false
    ) {
        self.foreground = foreground
        self.background = background
        self.bold = bold
        self.reverse = reverse
        self.dim = dim
    }
}

/// Maps every ``StyleRole`` to a ``RoleStyle``. `default` and `monochrome` are built in; more
/// come from theme files (`docs/themes.md`).
public struct Theme: Hashable, Sendable {
    public var name: String
    public var styles: [StyleRole: RoleStyle]

    public func style(_ role: StyleRole) -> RoleStyle { styles[role] ?? styles[.normal] ?? RoleStyle() }

    /// Colour by role, for terminals with colour.
    public static let standard: Theme = {
        func rgb(_ hex: UInt32) -> ThemeColor { .rgb(UInt8(hex >> 16 & 0xFF), UInt8(hex >> 8 & 0xFF), UInt8(hex & 0xFF)) }
        let styles: [StyleRole: RoleStyle] = [
            .normal: RoleStyle(),
            .headerTitle: RoleStyle(foreground: rgb(0x5FD7FF), bold: true),
            .headerValue: RoleStyle(foreground: rgb(0xFFFFFF), bold: true),
            .headerLabel: RoleStyle(foreground: rgb(0x8A8A8A)),
            .tableHeader: RoleStyle(foreground: rgb(0x000000), background: rgb(0x5FAF5F)),
            .rowSelected: RoleStyle(foreground: rgb(0x000000), background: rgb(0x5FD7FF)),
            .rowNew: RoleStyle(foreground: rgb(0x87FF87), bold: true),
            .rowGone: RoleStyle(foreground: rgb(0xFF8787), dim: true),
            .workerReady: RoleStyle(foreground: rgb(0x87D787)),
            .workerStarting: RoleStyle(foreground: rgb(0x5FD7FF)),
            .workerStopping: RoleStyle(foreground: rgb(0xFFD75F)),
            .workerBackoff: RoleStyle(foreground: rgb(0xFFAF5F), bold: true),
            .workerFailed: RoleStyle(foreground: rgb(0xFF5F5F), bold: true),
            .workerStopped: RoleStyle(foreground: rgb(0x8A8A8A)),
            .eventInfo: RoleStyle(),
            .eventWarning: RoleStyle(foreground: rgb(0xFFD75F)),
            .eventError: RoleStyle(foreground: rgb(0xFF5F5F)),
            .keyBar: RoleStyle(foreground: rgb(0xFFFFFF), background: rgb(0x005F87), bold: true),
            .keyBarLabel: RoleStyle(foreground: rgb(0x000000), background: rgb(0x5FAFD7)),
            .dialog: RoleStyle(foreground: rgb(0xFFFFFF), background: rgb(0x303030)),
            .dialogTitle: RoleStyle(foreground: rgb(0xFFFFFF), background: rgb(0x303030), bold: true),
            .message: RoleStyle(foreground: rgb(0xFFD75F), bold: true),
            .sparkline: RoleStyle(foreground: rgb(0x5FAFFF)),
        ]
        return Theme(name: "default", styles: styles)
    }()

    /// No colour at all: emphasis by bold, reverse and dim only (also for `NO_COLOR`).
    public static let monochrome: Theme = {
        let styles: [StyleRole: RoleStyle] = [
            .normal: RoleStyle(), .headerTitle: RoleStyle(bold: true), .headerValue: RoleStyle(bold: true),
            .headerLabel: RoleStyle(), .tableHeader: RoleStyle(reverse: true), .rowSelected: RoleStyle(bold: true, reverse: true),
            .rowNew: RoleStyle(bold: true), .rowGone: RoleStyle(dim: true), .workerReady: RoleStyle(),
            .workerStarting: RoleStyle(), .workerStopping: RoleStyle(dim: true), .workerBackoff: RoleStyle(bold: true),
            .workerFailed: RoleStyle(bold: true), .workerStopped: RoleStyle(dim: true), .eventInfo: RoleStyle(),
            .eventWarning: RoleStyle(bold: true), .eventError: RoleStyle(bold: true), .keyBar: RoleStyle(bold: true, reverse: true),
            .keyBarLabel: RoleStyle(reverse: true), .dialog: RoleStyle(reverse: true), .dialogTitle: RoleStyle(bold: true, reverse: true),
            .message: RoleStyle(bold: true), .sparkline: RoleStyle(),
        ]
        return Theme(name: "monochrome", styles: styles)
    }()

    public static let builtIn = [standard, monochrome]
}
