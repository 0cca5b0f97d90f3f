#if canImport(Glibc)
import Glibc
#endif

/// Where a pool's log file is and how it rotates (`logFile`, `logMaxSize`, `logKeep`).
public struct LogFileSettings: Hashable, Sendable {
    public var path: String
    /// The size past which the file is rotated.
    public var maxSize: UInt64
    /// Rotated files kept: `pool.log.1` (the newest) to `pool.log.N`; 0 keeps none.
    public var keep: Int

    public static let defaultMaxSize: UInt64 = 10 << 20
    public static let defaultKeep = 5

    public init(path: String, maxSize: UInt64 = LogFileSettings.defaultMaxSize, keep: Int = LogFileSettings.defaultKeep) {
        self.path = path
        self.maxSize = maxSize
        self.keep = keep
    }
}

/// The pool's combined stream (its events and every worker's log lines) as text, one line an
/// event: `2026-12-02T03:12:00.123Z error worker 7 (jobs) exited (crash, code 1)`. Each line is
/// one `write`, so a line is in the file whole or not at all; past `maxSize` the file is rotated
/// (`path` → `path.1` → … → `path.keep`, the oldest dropped) and a new one started.
final class LogFile: Sendable {
    private let settings: LogFileSettings
    private let state: Mutex<(fd: Int32, size: UInt64)>

    init(_ settings: LogFileSettings) throws {
        self.settings = settings
        let fd = try Self.open(settings.path)
        // try?: an fstat that fails only makes the first rotation come late.
        state = Mutex((fd, UInt64((try? Posix.fileSize(fd)) ?? 0)))
    }

    deinit { _ = state.withLock { Glibc.close($0.fd) } }

    private static func open(_ path: String) throws -> Int32 {
        try Posix.check("open", context: path) { Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640) }
    }

    func write(_ record: PoolEventRecord) {
        let line = Array("\(Self.timestamp(record.at)) \(record.level) \(record.text)\n".utf8)
        state.withLock { state in
            if state.size > 0 && state.size + UInt64(line.count) > settings.maxSize { rotate(&state) }
            // A full disk or a removed directory costs lines, never the pool.
            let written = line.withUnsafeBytes { Glibc.write(state.fd, $0.baseAddress, $0.count) }
            if written > 0 { state.size += UInt64(written) }
        }
    }

    /// `path.(k)` → `path.(k+1)` from the oldest kept, `path` → `path.1`, then a new `path`.
    private func rotate(_ state: inout (fd: Int32, size: UInt64)) {
        let path = settings.path
        if settings.keep > 0 {
            for index in stride(from: settings.keep - 1, through: 1, by: -1) { _ = rename("\(path).\(index)", "\(path).\(index + 1)") }
            _ = rename(path, "\(path).1")
        } else {
            _ = unlink(path)
        }
        guard let fd = try? Self.open(path) else { return }  // try?: keep writing to the old one
        Glibc.close(state.fd)
        state = (fd, 0)
    }

    /// UTC, to the millisecond: sorts as text, and reads the same on every host.
    static func timestamp(_ seconds: Double) -> String {
        var clock = time_t(seconds.rounded(.down))
        var parts = tm()
        gmtime_r(&clock, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let milliseconds = Int32(((seconds - seconds.rounded(.down)) * 1000).rounded(.down))
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(milliseconds, 3))Z"
    }
}
