/// One process's line of /proc/PID/stat (proc(5)), split into its fields: the one reader of
/// that line in pooltop.
struct ProcStat {
    /// Fields 3 on, the state first. The command name before them is in parentheses and may
    /// hold spaces and parentheses itself: they start after the last ')'.
    private let fields: [ArraySlice<UInt8>]

    init?(_ bytes: ArraySlice<UInt8>) {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        fields = bytes[(close + 1)...].split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") })
        guard !fields.isEmpty else { return nil }
    }

    /// The line of process `pid`, or of this process for "self"; nil when it is gone.
    init?(process pid: String) {
        guard let bytes = try? Posix.readFile("/proc/\(pid)/stat") else { return nil }
        self.init(bytes[...])
    }

    /// Field `number` as proc(5) counts them (1 is the pid), read as a decimal number; 0 when
    /// the line is shorter (an older kernel).
    func number(_ number: Int) -> UInt64 {
        guard number >= 3, number - 3 < fields.count else { return 0 }
        return fields[number - 3].reduce(0) { $0 &* 10 &+ UInt64($1 &- UInt8(ascii: "0")) }
    }

    /// The state letter: `R`, `S`, `T` stopped, `Z` zombie, `X` dead …
    var state: UInt8 { fields[0].first ?? 0 }
    /// Whether the process has ended and waits to be reaped, or is being reaped.
    var hasEnded: Bool { state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") }
    var parent: Int32 { Int32(truncatingIfNeeded: number(4)) }
    /// utime + stime, in clock ticks.
    var cpuTicks: UInt64 { number(14) + number(15) }
    var residentPages: UInt64 { number(24) }
    var threads: Int { Int(number(20)) }
    /// The wait status the process ended with (field 52; 0 while it runs, and for a reader not
    /// allowed to trace it).
    var exitCode: Int32 { Int32(truncatingIfNeeded: number(52)) }

    /// utime + stime in clock ticks, and resident pages; nil for a line too short to have them.
    static func parse(_ bytes: ArraySlice<UInt8>) -> (cpuTicks: UInt64, rssPages: UInt64)? {
        guard let stat = ProcStat(bytes), stat.fields.count >= 22 else { return nil }
        return (stat.cpuTicks, stat.residentPages)
    }
}
