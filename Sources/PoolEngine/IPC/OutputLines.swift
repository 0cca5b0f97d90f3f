/// Splits a program's output stream into log lines: by `\n`, a `\r` before it dropped, a line
/// longer than ``maximumLength`` cut into pieces (a program that never writes a newline must
/// not grow the watcher without bound), invalid UTF-8 repaired.
struct OutputLines {
    /// The longest line kept whole, in bytes.
    static let maximumLength = 16 * 1024
    private var pending: [UInt8] = []

    /// The complete lines in what was read so far.
    mutating func append(_ bytes: some Collection<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                lines.append(take())
            } else {
                pending.append(byte)
                if pending.count >= Self.maximumLength { lines.append(take()) }
            }
        }
        return lines
    }

    /// The last line when the stream ended without a newline.
    mutating func finish() -> [String] {
        pending.isEmpty ? [] : [take()]
    }

    private mutating func take() -> String {
        if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
        defer { pending.removeAll(keepingCapacity: true) }
        return String(decoding: pending, as: UTF8.self)
    }
}
