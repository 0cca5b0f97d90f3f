#if PostgresQueue
/// A cron schedule, in UTC: `minute hour day-of-month month day-of-week`, or with a leading
/// seconds field (six fields) for schedules finer than a minute.
///
/// Each field takes `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, and lists of those
/// (`1,15,30-35`); months and weekdays also take names (`jan`, `mon`); Sunday is 0 or 7. As in
/// Vixie cron, when both day fields are restricted a day matches either. `@yearly`,
/// `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly` stand for the usual schedules.
/// Pure: times in, times out, so tests need no clock.
public struct CronSchedule: Hashable, Sendable, CustomStringConvertible {
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let days: Set<Int>
    let months: Set<Int>
    let weekdays: Set<Int>
    let daysRestricted: Bool
    let weekdaysRestricted: Bool
    public let description: String

    /// What is wrong with a schedule, as a sentence.
    public struct Problem: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var description: String { message }
    }

    public init(_ text: String) throws(Problem) {
        description = text
        let macros = [
            "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
            "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
        ]
        let expanded = text.hasPrefix("@") ? macros[text.lowercased()] : text
        guard let expanded else {
            throw Problem(message: "unknown schedule '\(text)'; the @ forms are \(macros.keys.sorted().joined(separator: ", "))")
        }
        var fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw Problem(
                message: "'\(text)' has \(fields.count) fields; a schedule has 5 (minute hour day month weekday) or 6 (seconds first)")
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
        seconds = try Self.field(fields[0], "second", 0...59, names: [])
        minutes = try Self.field(fields[1], "minute", 0...59, names: [])
        hours = try Self.field(fields[2], "hour", 0...23, names: [])
        days = try Self.field(fields[3], "day of month", 1...31, names: [])
        months = try Self.field(fields[4], "month", 1...12, names: monthNames, firstName: 1)
        // 7 is Sunday too.
        weekdays = Set(try Self.field(fields[5], "day of week", 0...7, names: dayNames, firstName: 0).map { $0 % 7 })
        daysRestricted = fields[3] != "*"
        weekdaysRestricted = fields[5] != "*"
    }

    private static func field(
        _ text: String, _ name: String, _ range: ClosedRange<Int>, names: [String], firstName: Int = 0
    ) throws(Problem) -> Set<Int> {
        func value(_ token: Substring) throws(Problem) -> Int {
            if let number = Int(token), range.contains(number) { return number }
            if let index = names.firstIndex(of: token.lowercased()) { return index + firstName }
            throw Problem(message: "'\(token)' is not a valid \(name) (\(range.lowerBound)–\(range.upperBound))")
        }
        var result: Set<Int> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, let base = pieces.first, !base.isEmpty else {
                throw Problem(message: "'\(part)' is not a \(name) field")
            }
            var step = 1
            if pieces.count == 2 {
                guard let parsed = Int(pieces[1]), parsed > 0 else { throw Problem(message: "'\(part)': the step must be a positive number") }
                step = parsed
            }
            var low = range.lowerBound, high = range.upperBound
            if base != "*" {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw Problem(message: "'\(part)' is not a \(name) range") }
                low = try value(bounds[0])
                high = bounds.count == 2 ? try value(bounds[1]) : (pieces.count == 2 ? range.upperBound : low)
                guard low <= high else { throw Problem(message: "'\(part)': the range runs backwards") }
            }
            result.formUnion(stride(from: low, through: high, by: step))
        }
        return result
    }

    /// Whether the schedule fires on this day (UTC civil date).
    private func matches(year: Int, month: Int, day: Int) -> Bool {
        guard months.contains(month) else { return false }
        let weekday = Self.weekday(year: year, month: month, day: day)
        switch (daysRestricted, weekdaysRestricted) {
        case (true, true): return days.contains(day) || weekdays.contains(weekday)
        case (true, false): return days.contains(day)
        case (false, true): return weekdays.contains(weekday)
        case (false, false): return true
        }
    }

    /// The latest firing at or before `time` (seconds since the epoch), within the 5 years
    /// before it; nil when there is none.
    public func latest(atOrBefore time: Int64) -> Int64? {
        var dayNumber = Self.floorDivide(time, 86_400)
        let firstDay = dayNumber - 366 * 5
        while dayNumber >= firstDay {
            let (year, month, day) = Self.civil(fromDays: dayNumber)
            if matches(year: year, month: month, day: day) {
                let dayStart = dayNumber * 86_400
                // Hours and minutes that start after `time` are skipped whole.
                for hour in hours.sorted(by: >) where dayStart + Int64(hour * 3600) <= time {
                    for minute in minutes.sorted(by: >) where dayStart + Int64(hour * 3600 + minute * 60) <= time {
                        for second in seconds.sorted(by: >) {
                            let candidate = dayStart + Int64(hour * 3600 + minute * 60 + second)
                            if candidate <= time { return candidate }
                        }
                    }
                }
            }
            dayNumber -= 1
        }
        return nil
    }

    /// The first firing after `time`, within the 5 years after it; nil when there is none
    /// (`0 0 30 2 *` never fires).
    public func next(after time: Int64) -> Int64? {
        var dayNumber = Self.floorDivide(time, 86_400)
        let lastDay = dayNumber + 366 * 5
        while dayNumber <= lastDay {
            let (year, month, day) = Self.civil(fromDays: dayNumber)
            if matches(year: year, month: month, day: day) {
                let dayStart = dayNumber * 86_400
                for hour in hours.sorted() {
                    for minute in minutes.sorted() {
                        for second in seconds.sorted() {
                            let candidate = dayStart + Int64(hour * 3600 + minute * 60 + second)
                            if candidate > time { return candidate }
                        }
                    }
                }
            }
            dayNumber += 1
        }
        return nil
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : (value - divisor + 1) / divisor
    }

    /// The civil date of a day number (days since 1970-01-01), proleptic Gregorian: Howard
    /// Hinnant's `civil_from_days`.
    static func civil(fromDays days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPart = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPart + 2) / 5 + 1
        let month = monthPart < 10 ? monthPart + 3 : monthPart - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    /// 0 for Sunday … 6 for Saturday.
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        // 1970-01-01 was a Thursday (4).
        let days = Self.days(year: year, month: month, day: day)
        return Int(((days % 7) + 11) % 7)
    }

    /// Days since 1970-01-01 of a civil date: Hinnant's `days_from_civil`.
    static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
#endif
