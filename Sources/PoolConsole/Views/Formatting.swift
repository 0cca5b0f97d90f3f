/// How the console and the command line write figures: one place, one style.
public enum Formatting {
    /// 45s, 3m12s, 2h05m, 3d04h.
    public static func duration(_ seconds: Double) -> String {
        let total = Int(max(seconds, 0))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(two(total % 60))s" }
        if total < 86400 { return "\(total / 3600)h\(two(total % 3600 / 60))m" }
        return "\(total / 86400)d\(two(total % 86400 / 3600))h"
    }

    /// 512B, 12K, 28.4M, 1.2G.
    public static func bytes(_ value: UInt64) -> String {
        let v = Double(value)
        if v >= 1_073_741_824 { return "\(tenths(v / 1_073_741_824))G" }
        if v >= 1_048_576 { return "\(tenths(v / 1_048_576))M" }
        if v >= 1024 { return "\(Int(v / 1024))K" }
        return "\(value)B"
    }

    /// HH:MM:SS (UTC) of a time in seconds since the epoch.
    public static func clock(_ seconds: Double) -> String {
        let day = Int(seconds) % 86400
        return "\(two(day / 3600)):\(two(day % 3600 / 60)):\(two(day % 60))"
    }

    /// 85us, 12ms, 2.5s.
    public static func shortDuration(_ seconds: Double) -> String {
        if seconds >= 1 { return "\(tenths(seconds))s" }
        if seconds >= 0.001 { return "\(Int((seconds * 1000).rounded()))ms" }
        return "\(Int((seconds * 1e6).rounded()))us"
    }

    /// One decimal: 1.5.
    public static func tenths(_ value: Double) -> String {
        let scaled = Int((value * 10).rounded())
        return "\(scaled / 10).\(abs(scaled % 10))"
    }

    static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
