#if PostgresQueue
import PoolQueue
import Testing

@Suite("cron schedules")
struct CronScheduleTests {
    /// Seconds since the epoch of a UTC time.
    func at(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
        var days = 0
        for y in 1970..<year { days += (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 366 : 365 }
        let lengths = [31, (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for m in 0..<(month - 1) { days += lengths[m] }
        days += day - 1
        return Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    @Test("the next and latest firings of common schedules")
    func firings() throws {
        let nightly = try CronSchedule("0 3 * * *")
        #expect(nightly.next(after: at(2026, 12, 3, 2, 59, 59)) == at(2026, 12, 3, 3, 0))
        #expect(nightly.next(after: at(2026, 12, 3, 3, 0)) == at(2026, 12, 4, 3, 0))
        #expect(nightly.latest(atOrBefore: at(2026, 12, 3, 2, 0)) == at(2026, 12, 2, 3, 0))
        #expect(nightly.latest(atOrBefore: at(2026, 12, 3, 3, 0)) == at(2026, 12, 3, 3, 0))
        let quarter = try CronSchedule("*/15 9-17 * * mon-fri")
        // 2026-12-05 is a Saturday: the next firing is Monday 09:00.
        #expect(quarter.next(after: at(2026, 12, 4, 17, 45)) == at(2026, 12, 7, 9, 0))
        #expect(quarter.next(after: at(2026, 12, 7, 9, 0)) == at(2026, 12, 7, 9, 15))
        let everyTwoSeconds = try CronSchedule("*/2 * * * * *")
        #expect(everyTwoSeconds.next(after: at(2026, 12, 3, 0, 0, 1)) == at(2026, 12, 3, 0, 0, 2))
        #expect(everyTwoSeconds.latest(atOrBefore: at(2026, 12, 3, 0, 0, 3)) == at(2026, 12, 3, 0, 0, 2))
        #expect(try CronSchedule("@daily") .next(after: at(2026, 12, 3, 12)) == at(2026, 12, 4))
        #expect(try CronSchedule("@hourly").latest(atOrBefore: at(2026, 12, 3, 12, 30)) == at(2026, 12, 3, 12))
    }

    @Test("both day fields restricted: a day matching either fires (Vixie cron); Sunday is 0 and 7; leap days")
    func dayFields() throws {
        // The 13th, or any Friday: 2026-12-04 is a Friday, the 13th is a Sunday.
        let either = try CronSchedule("0 0 13 * fri")
        #expect(either.next(after: at(2026, 12, 1)) == at(2026, 12, 4))
        #expect(either.next(after: at(2026, 12, 11)) == at(2026, 12, 13))
        #expect(try CronSchedule("0 0 * * 7").next(after: at(2026, 12, 3)) == at(2026, 12, 6))
        #expect(try CronSchedule("0 0 * * sun").next(after: at(2026, 12, 3)) == at(2026, 12, 6))
        #expect(try CronSchedule("0 0 29 feb *").next(after: at(2026, 12, 3)) == at(2028, 2, 29))
        #expect(try CronSchedule("0 0 30 feb *").next(after: at(2026, 12, 3)) == nil)
        #expect(try CronSchedule("0 12 1 jan,jul *").latest(atOrBefore: at(2026, 12, 3)) == at(2026, 7, 1, 12))
    }

    @Test("a malformed schedule is an error that names the field")
    func errors() {
        for (text, expected) in [
            ("* * * *", "has 4 fields"), ("60 * * * *", "is not a valid minute"), ("* 24 * * *", "is not a valid hour"),
            ("* * 0 * *", "is not a valid day of month"), ("* * * 13 *", "is not a valid month"), ("* * * * 8", "is not a valid day of week"),
            ("*/0 * * * *", "step must be a positive number"), ("5-1 * * * *", "runs backwards"), ("@sometimes", "unknown schedule"),
            ("* * * foo *", "is not a valid month"),
        ] {
            do {
                _ = try CronSchedule(text)
                Issue.record("'\(text)' was accepted")
            } catch {
                #expect(error.message.contains(expected), "'\(text)': \(error.message)")
            }
        }
    }
}
#endif
