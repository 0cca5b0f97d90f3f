/// One sd_notify(3) datagram from a program worker: newline-separated `KEY=VALUE` assignments.
///
/// Only what the watcher acts on is kept; unknown keys are ignored, as systemd ignores them.
struct NotifyMessage: Hashable, Sendable {
    /// `READY=1`: the program finished starting.
    var isReady = false
    /// `STOPPING=1`: the program is shutting down by itself.
    var isStopping = false
    /// `WATCHDOG=1`: the program is alive (with `WATCHDOG_USEC` set for it).
    var isWatchdogBeat = false
    /// `WATCHDOG=trigger`: the program asks to be treated as hung.
    var triggersWatchdog = false
    /// `STATUS=…`: a one-line status for humans.
    var status: String?

    /// The largest datagram read; sd_notify messages are a few hundred bytes.
    static let maximumSize = 4096

    init(isReady: Bool = false, isStopping: Bool = false, isWatchdogBeat: Bool = false, status: String? = nil) {
        self.isReady = isReady
        self.isStopping = isStopping
        self.isWatchdogBeat = isWatchdogBeat
        self.status = status
    }

    init(parsing bytes: some Collection<UInt8>) {
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let equals = line.firstIndex(of: UInt8(ascii: "=")) else { continue }
            let key = String(decoding: line[line.startIndex..<equals], as: UTF8.self)
            let value = String(decoding: line[line.index(after: equals)...], as: UTF8.self)
            switch key {
            case "READY": isReady = value == "1"
            case "STOPPING": isStopping = value == "1"
            case "WATCHDOG":
                isWatchdogBeat = value == "1"
                triggersWatchdog = value == "trigger"
            case "STATUS": status = String(value.prefix(256))
            default: continue
            }
        }
    }
}
