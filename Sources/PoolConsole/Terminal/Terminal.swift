/// Where frames go and keys come from: curses on a real terminal, memory in tests.
public protocol Terminal: AnyObject {
    /// Columns and rows now.
    var size: (width: Int, height: Int) { get }
    /// Draws a frame; implementations redraw only what changed since the last one.
    func present(_ screen: ScreenBuffer, theme: Theme)
    /// The next key, or nil when `timeoutMilliseconds` pass first.
    func readKey(timeoutMilliseconds: Int32) -> ConsoleKey?
    /// Gives the terminal back as it was.
    func restore()
}

/// A terminal in memory: keys are queued by the test, frames are kept.
public final class MemoryTerminal: Terminal {
    public var size: (width: Int, height: Int)
    public private(set) var frames: [ScreenBuffer] = []
    public var keys: [ConsoleKey] = []
    public private(set) var isRestored = false

    public init(width: Int, height: Int) {
        size = (width, height)
    }

    public var lastFrame: ScreenBuffer? { frames.last }

    public func present(_ screen: ScreenBuffer, theme: Theme) { frames.append(screen) }

    public func readKey(timeoutMilliseconds: Int32) -> ConsoleKey? {
        keys.isEmpty ? nil : keys.removeFirst()
    }

    public func restore() { isRestored = true }
}
