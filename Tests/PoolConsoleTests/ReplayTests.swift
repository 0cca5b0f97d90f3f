import Glibc
import Testing

@testable import PoolConsole
@testable import PoolEngine

@Suite("Replay: reading times, and the keys that move through a recording")
struct ReplayTests {
    /// 2026-12-01 03:12:00 UTC.
    let moment = 1_796_094_720.0

    @Test("-5m, 5m and 90m are that long before now")
    func relative() throws {
        #expect(try ReplayTime.parse("-5m", now: moment).get() == moment - 300)
        #expect(try ReplayTime.parse("5m", now: moment).get() == moment - 300)
        #expect(try ReplayTime.parse("90m", now: moment).get() == moment - 5400)
        #expect(try ReplayTime.parse("0s", now: moment).get() == moment)
    }

    @Test("a date and time with a zone, or in local time")
    func absolute() throws {
        #expect(try ReplayTime.parse("2026-12-01T03:12:00Z", now: 0).get() == moment)
        #expect(try ReplayTime.parse("2026-12-01 04:12:00+01:00", now: 0).get() == moment)
        #expect(try ReplayTime.parse("2026-12-01T03:12:00.5Z", now: 0).get() == moment + 0.5)
        // Local time: whatever zone the machine has, it reads back as it prints.
        let local = try ReplayTime.parse("2026-12-01T03:12:00", now: 0).get()
        #expect(ReplayTime.format(local) == "2026-12-01 03:12:00")
    }

    @Test("a time of day is today, or yesterday when it is still to come")
    func timeOfDay() throws {
        let now = try ReplayTime.parse("2026-12-01T10:00:00", now: 0).get()
        #expect(ReplayTime.format(try ReplayTime.parse("03:12:00", now: now).get()) == "2026-12-01 03:12:00")
        #expect(ReplayTime.format(try ReplayTime.parse("03:12", now: now).get()) == "2026-12-01 03:12:00")
        #expect(ReplayTime.format(try ReplayTime.parse("23:00", now: now).get()) == "2026-11-30 23:00:00")
    }

    @Test("anything else is an error that says what it takes", arguments: ["", "soon", "25:00", "2026-13-01T00:00:00", "12:61", "-x"])
    func errors(text: String) {
        guard case .failure(let error) = ReplayTime.parse(text, now: moment) else {
            Issue.record("'\(text)' was read")
            return
        }
        #expect(error.description.contains("-5m") && error.description.contains("2026-12-01T03:12:00"), "\(error)")
    }

    @Test("in a replay ←/→ step a second, PgUp/PgDn a minute, g takes a time, G the newest; actions say it is a replay")
    func keys() {
        var state = ConsoleState(readOnly: true)
        state.isReplay = true
        func press(_ key: ConsoleKey) -> [ConsoleEffect] {
            ConsoleReducer.reduce(&state, key: key, snapshot: fixedSnapshot(), isHosting: false, themes: 1)
        }
        #expect(press(.left) == [.seek(.by(-1))])
        #expect(press(.right) == [.seek(.by(1))])
        #expect(press(.pageUp) == [.seek(.by(-60))])
        #expect(press(.pageDown) == [.seek(.by(60))])
        #expect(press(.character("G")) == [.seek(.newest)])
        #expect(press(.character("g")).isEmpty && state.mode == .seek(""))
        for character in "03:12" { _ = press(.character(character)) }
        _ = press(.backspace)
        _ = press(.character("5"))
        #expect(press(.enter) == [.seek(.to("03:15"))] && state.mode == .normal)
        #expect(press(.character("g")).isEmpty)
        #expect(press(.escape).isEmpty && state.mode == .normal, "Esc leaves the prompt without moving")
        #expect(press(.character("+")).isEmpty && state.message == "replay: a recording cannot be changed")
        #expect(press(.character("k")).isEmpty && state.message == "replay: a recording cannot be changed")
        // Tab still moves between the panes; q leaves.
        _ = press(.tab)
        #expect(state.focus == .workers)
        #expect(press(.character("q")) == [.exit])
    }

    @Test("outside a replay the arrows still move between the panes")
    func liveKeys() {
        var state = ConsoleState()
        _ = ConsoleReducer.reduce(&state, key: .right, snapshot: fixedSnapshot(), isHosting: true, themes: 1)
        #expect(state.focus == .workers)
    }
}
