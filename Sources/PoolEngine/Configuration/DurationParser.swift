/// Parses durations as the configuration writes them: a number and a unit
/// (`us`, `ms`, `s`, `m`, `h`), for example `250ms`, `1.5s`, `5m`; a bare `0` is zero.
public enum DurationParser {
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingSpaces
        if trimmed == "0" { return .zero }
        let units: [(String, Double)] = [("us", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        for (unit, scale) in units where trimmed.hasSuffix(unit) {
            let number = trimmed.dropLast(unit.count)
            // "ms" also ends in "s": only accept a suffix whose remainder is a plain number.
            guard let value = Double(number), value >= 0, value.isFinite else { continue }
            return .nanoseconds(Int64((value * scale * 1e9).rounded()))
        }
        return nil
    }

    /// Formats a duration the way the configuration writes it.
    public static func format(_ duration: Duration) -> String {
        let ns = duration.nanoseconds
        if ns == 0 { return "0" }
        if ns % 3_600_000_000_000 == 0 { return "\(ns / 3_600_000_000_000)h" }
        if ns % 60_000_000_000 == 0 { return "\(ns / 60_000_000_000)m" }
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if ns % 1_000_000 == 0 { return "\(ns / 1_000_000)ms" }
        return "\(ns / 1000)us"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var result = Substring(self)
        while result.first == " " { result.removeFirst() }
        while result.last == " " { result.removeLast() }
        return String(result)
    }
}
