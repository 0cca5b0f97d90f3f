/// Parses durations as the configuration writes them: a number and a unit
/// (`us`, `ms`, `s`, `m`, `h`), for example `250ms`, `1.5s`, `5m`; a bare `0` is zero.
public enum DurationParser {
    /// What a duration text turned out to be.
    public enum Parsed: Hashable, Sendable {
        case duration(Duration)
        /// A number with a unit, but longer than ``ceiling``: no key takes it, and converting it
        /// to nanoseconds would overflow.
        case tooLong
        case invalid
    }

    /// The longest duration the parser converts. Every configuration key has a lower maximum
    /// (`docs/reliability.md`), so this only keeps the conversion to nanoseconds exact.
    public static let ceiling: Duration = .seconds(100 * 365 * 86_400)

    /// The duration, or nil when the text is not one or is longer than ``ceiling``.
    public static func parse(_ text: String) -> Duration? {
        if case .duration(let duration) = classify(text) { return duration }
        return nil
    }

    /// Parses `text`, telling a malformed text from one that is too long.
    public static func classify(_ text: String) -> Parsed {
        let trimmed = text.trimmingSpaces
        if trimmed == "0" { return .duration(.zero) }
        let units: [(String, Double)] = [("us", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        for (unit, scale) in units where trimmed.hasSuffix(unit) {
            let number = trimmed.dropLast(unit.count)
            // "ms" also ends in "s": only accept a suffix whose remainder is a plain number.
            // Swift's Double parser also takes "inf", "nan" and hex floats; none is a duration.
            guard number.first.map({ $0.isASCII && ($0.isNumber || $0 == ".") }) == true,
                !number.contains(where: { $0 == "x" || $0 == "X" || $0 == "n" || $0 == "i" }),
                let value = Double(number), value >= 0, value.isFinite
            else { continue }
            let seconds = value * scale
            guard seconds <= ceiling.seconds else { return .tooLong }
            return .duration(.nanoseconds(Int64((seconds * 1e9).rounded())))
        }
        return .invalid
    }

    /// Formats a duration the way the configuration writes it.
    public static func format(_ duration: Duration) -> String {
        let ns = duration.nanoseconds
        if ns == 0 { return "0" }
        if ns < 0 { return "-" + format(.nanoseconds(ns == .min ? .max : -ns)) }
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
