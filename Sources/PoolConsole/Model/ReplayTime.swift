import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// The moments `pooltop replay --at`, `top --once --at` and the replay console's `g` take:
/// - `-5m`, `5m`, `90s`: that long ago (a duration as pool.yaml writes them);
/// - `2026-12-01T03:12:00`, with a space for the `T` too, optional fractions of a second, and
///   `Z` or `+01:00` for a zone (local time without one);
/// - `03:12` or `03:12:00`: that time today, local time (yesterday's if it is still to come).
public enum ReplayTime {
    /// Seconds since the epoch, or nil with what was wrong in `error`.
    public static func parse(_ text: String, now: Double) -> Result<Double, ReplayTimeError> {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return .failure(ReplayTimeError(text: text)) }
        if trimmed.first == "-" || trimmed.first?.isNumber == true && !trimmed.contains(":") && !trimmed.contains("T") {
            let body = trimmed.first == "-" ? String(trimmed.dropFirst()) : trimmed
            guard let ago = DurationParser.parse(body) else { return .failure(ReplayTimeError(text: text)) }
            return .success(now - ago.seconds)
        }
        if let date = dateTime(trimmed) { return .success(date) }
        if let clock = timeOfDay(trimmed, now: now) { return .success(clock) }
        return .failure(ReplayTimeError(text: text))
    }

    /// `2026-12-01T03:12:00[.5][Z|+01:00]`.
    private static func dateTime(_ text: String) -> Double? {
        let separators = text.firstIndex { $0 == "T" || $0 == " " }
        guard let split = separators else { return nil }
        let datePart = text[..<split].split(separator: "-")
        guard datePart.count == 3, let year = Int(datePart[0]), let month = Int(datePart[1]), let day = Int(datePart[2]) else {
            return nil
        }
        var timePart = String(text[text.index(after: split)...])
        var offset: Int?
        if timePart.hasSuffix("Z") {
            offset = 0
            timePart.removeLast()
        } else if let sign = timePart.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let zone = timePart[timePart.index(after: sign)...].split(separator: ":")
            guard zone.count >= 1, let hours = Int(zone[0]), let minutes = zone.count > 1 ? Int(zone[1]) : 0 else { return nil }
            offset = (hours * 3600 + minutes * 60) * (timePart[sign] == "-" ? -1 : 1)
            timePart = String(timePart[..<sign])
        }
        guard let (hour, minute, second) = clock(timePart) else { return nil }
        return seconds(year: year, month: month, day: day, hour: hour, minute: minute, second: second, utcOffset: offset)
    }

    /// `03:12` or `03:12:00`, today (or yesterday when still to come), local time.
    private static func timeOfDay(_ text: String, now: Double) -> Double? {
        guard let (hour, minute, second) = clock(text) else { return nil }
        var clock = time_t(now)
        var parts = tm()
        localtime_r(&clock, &parts)
        guard let today = seconds(
            year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday), hour: hour, minute: minute,
            second: second, utcOffset: nil)
        else { return nil }
        return today > now ? today - 86_400 : today
    }

    private static func clock(_ text: String) -> (Int, Int, Double)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let hour = Int(parts[0]), let minute = Int(parts[1]),
            (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        let second = parts.count == 3 ? Double(parts[2]) : 0
        guard let second, second >= 0, second < 61 else { return nil }
        return (hour, minute, second)
    }

    private static func seconds(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Double, utcOffset: Int?) -> Double? {
        guard (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day) else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = 0
        parts.tm_isdst = -1
        let whole: time_t
        if let utcOffset {
            whole = timegm(&parts) - time_t(utcOffset)
        } else {
            whole = mktime(&parts)
        }
        guard whole != -1 else { return nil }
        return Double(whole) + second
    }

    /// Now, seconds since the epoch.
    public static var wallClock: Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// `2026-12-01 03:12:00` in local time, as the replay header shows a moment.
    public static func format(_ seconds: Double) -> String {
        var clock = time_t(seconds.rounded(.down))
        var parts = tm()
        localtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}

/// A moment `ReplayTime` could not read, and the forms it takes.
public struct ReplayTimeError: Error, CustomStringConvertible, Sendable {
    public var text: String
    public var description: String {
        "cannot read the time '\(text)': write -5m (that long ago), 2026-12-01T03:12:00 (local time, or with Z or +01:00), or 03:12:00 (today)"
    }
}
