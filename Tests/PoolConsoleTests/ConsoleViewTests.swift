import Testing

@testable import PoolConsole
@testable import PoolEngine

#if canImport(Glibc)
import Glibc
#endif

/// A fixed pool state to render: two groups, one worker backing off, one just replaced.
func fixedSnapshot() -> PoolSnapshot {
    let base = 1_800_000_000.0
    func worker(_ id: Int, group: String, groupID: Int, pid: Int32, state: WorkerState, restarts: Int = 0, jobs: UInt64 = 0, inFlight: UInt64 = 0, exit: WorkerSnapshot.ExitSnapshot? = nil, backoff: Double? = nil) -> WorkerSnapshot {
        var activity = WorkerActivity()
        activity.jobsProcessed = jobs
        activity.jobsInFlight = inFlight
        activity.jobsAccepted = jobs + inFlight
        return WorkerSnapshot(
            id: WorkerID(id), group: group, groupID: groupID, pid: pid, state: state, generation: restarts + 1, restarts: restarts,
            firstStartedAt: base - 100, startedAt: state.hasProcess ? base - 65 : nil, readyAt: state.hasProcess ? base - 64 : nil,
            finishedAt: exit?.at, backoffUntil: backoff, lastExit: exit, activity: activity, rssBytes: state.hasProcess ? 29_360_128 : 0,
            cpuSeconds: state.hasProcess ? 1.5 : 0)
    }
    let crash = WorkerSnapshot.ExitSnapshot(status: "exited", code: 3, signal: nil, reason: .crash, at: base - 10)
    return PoolSnapshot(
        pool: .init(name: "demo", pid: 4242, startedAt: base - 125, uptimeSeconds: 125, restarts: .init(hard: 1, soft: 2), state: .running),
        groups: [
            GroupSnapshot(id: 1, name: "jobs", kind: .job, min: 2, max: 4, desired: 3, running: 2, ready: 2),
            GroupSnapshot(id: 2, name: "ticker", kind: .service, min: 1, max: 1, desired: 1, running: 1, ready: 1),
        ],
        workers: [
            worker(1, group: "jobs", groupID: 1, pid: 1001, state: .ready, jobs: 120, inFlight: 2),
            worker(2, group: "jobs", groupID: 1, pid: 1002, state: .ready, restarts: 1, jobs: 80),
            worker(3, group: "jobs", groupID: 1, pid: 0, state: .backoff, restarts: 3, exit: crash, backoff: base + 1.5),
            worker(4, group: "jobs", groupID: 1, pid: 0, state: .stopped),
            worker(5, group: "ticker", groupID: 2, pid: 1005, state: .ready),
        ],
        takenAt: base)
}

func fixedEvents() -> [PoolEventRecord] {
    let at = 1_800_000_000.0 - 5
    return [
        PoolEventRecord(at: at, event: .workerReady(WorkerID(2), group: "jobs", pid: 1002, startup: .milliseconds(5))),
        PoolEventRecord(at: at + 1, event: .workerLog(WorkerID(5), group: "ticker", record: LogRecord(level: "info", message: "tick 42", timestamp: at))),
        PoolEventRecord(
            at: at + 2,
            event: .workerExited(WorkerExitRecord(id: WorkerID(3), group: "jobs", pid: 1003, status: .exited(3), reason: .crash, message: nil, uptime: .seconds(1)))),
        PoolEventRecord(at: at + 2, event: .workerBackingOff(WorkerID(3), group: "jobs", delay: .milliseconds(400))),
    ]
}

/// Compares a rendered frame with `Snapshots/<name>.txt`; POOLTOP_RECORD_SNAPSHOTS=1 rewrites the file and fails.
func expectSnapshot(_ screen: ScreenBuffer, named name: String, sourceLocation: SourceLocation = #_sourceLocation) {
    var path = "\(#filePath)"
    path = String(path[..<path.lastIndex(of: "/")!]) + "/Snapshots/\(name).txt"
    let text = screen.text + "\n"
    if getenv("POOLTOP_RECORD_SNAPSHOTS") != nil {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = Array(text.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        Issue.record("recorded \(path); run again without POOLTOP_RECORD_SNAPSHOTS", sourceLocation: sourceLocation)
        return
    }
    guard let expected = try? String(decoding: Posix.readFile(path), as: UTF8.self) else {
        Issue.record("no snapshot at \(path); record it with POOLTOP_RECORD_SNAPSHOTS=1", sourceLocation: sourceLocation)
        return
    }
    #expect(text == expected, "the \(name) frame changed:\n\(text)", sourceLocation: sourceLocation)
}

@Suite("Console view: frames rendered from fixed snapshots")
struct ConsoleViewTests {
    func render(width: Int, height: Int, state: ConsoleState = ConsoleState(), hosting: Bool = true) -> ScreenBuffer {
        ConsoleView.render(
            snapshot: fixedSnapshot(), events: fixedEvents(), state: state, trends: ConsoleTrends(), poolName: "demo",
            isHosting: hosting, width: width, height: height)
    }

    @Test("80×24") func small() { expectSnapshot(render(width: 80, height: 24), named: "80x24") }
    @Test("120×40") func large() { expectSnapshot(render(width: 120, height: 40), named: "120x40") }
    @Test("40×10 shows what fits") func cramped() { expectSnapshot(render(width: 40, height: 10), named: "40x10") }

    @Test("tiny and zero sizes never crash, and give a frame of exactly that size")
    func tiny() {
        for (width, height) in [(0, 0), (1, 1), (19, 4), (20, 5), (300, 3)] {
            let frame = render(width: width, height: height)
            #expect(frame.width == width && frame.height == height, "\(width)×\(height)")
            let lines = frame.text.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.allSatisfy { $0.count <= width }, "\(width)×\(height): a line wider than the frame")
            // From the smallest size the console supports (20×5), the pool's name is on screen.
            if width >= 20 && height >= 5 { #expect(frame.text.contains("demo"), "\(width)×\(height):\n\(frame.text)") }
        }
    }

    @Test("a confirmation says what will be affected and defaults to Cancel")
    func confirm() {
        var state = ConsoleState()
        state.mode = .confirm(Confirmation(question: "Kill worker 1 (pid 1001) with SIGKILL? 2 jobs in flight are lost to their senders.", command: .killWorker(WorkerID(1))))
        expectSnapshot(render(width: 80, height: 24, state: state), named: "confirm-80x24")
    }

    @Test("help lists the keys; read-only help leaves the actions out")
    func help() {
        var state = ConsoleState()
        state.mode = .help()
        #expect(render(width: 100, height: 30, state: state).text.contains("kill the selected worker with SIGKILL"))
        state.readOnly = true
        #expect(!render(width: 100, height: 30, state: state).text.contains("kill the selected worker"))
    }

    @Test("a help taller than the terminal scrolls with j and k (80×24), and says how much is below; another key closes it")
    func helpScrolls() {
        var state = ConsoleState()
        _ = ConsoleReducer.reduce(&state, key: .character("?"), snapshot: fixedSnapshot(), isHosting: true, themes: 1)
        var text = render(width: 80, height: 24, state: state).text
        #expect(text.contains("Help (1–18 of") && text.contains("more below") && !text.contains("q F10 Ctrl-C"), "\(text)")
        for _ in 0..<40 { _ = ConsoleReducer.reduce(&state, key: .character("j"), snapshot: fixedSnapshot(), isHosting: true, themes: 1) }
        text = render(width: 80, height: 24, state: state).text
        #expect(text.contains("q F10 Ctrl-C") && !text.contains("more below"), "scrolled to the last key:\n\(text)")
        _ = ConsoleReducer.reduce(&state, key: .pageUp, snapshot: fixedSnapshot(), isHosting: true, themes: 1)
        #expect(state.mode != .normal, "PgUp scrolls back")
        _ = ConsoleReducer.reduce(&state, key: .escape, snapshot: fixedSnapshot(), isHosting: true, themes: 1)
        #expect(state.mode == .normal)
    }

    @Test("help lists only the keys that work here: replay keys in a replay, Q where the queue view is built in")
    func helpScope() {
        var state = ConsoleState()
        state.mode = .help()
        var text = render(width: 120, height: 40, state: state).text
        #expect(!text.contains("replay: a second back") && !text.contains("queues: the pool's"), "\(text)")
        state.queuesUnavailable = nil
        #expect(render(width: 120, height: 40, state: state).text.contains("queues: the pool's PostgreSQL queues"))
        state.isReplay = true
        state.readOnly = true
        text = render(width: 120, height: 40, state: state).text
        #expect(text.contains("replay: a second back") && !text.contains("queues: the pool's"), "\(text)")
    }

    @Test("a missing pool says so")
    func gone() {
        let screen = ConsoleView.render(
            snapshot: nil, events: [], state: ConsoleState(), trends: ConsoleTrends(), poolName: "demo", isHosting: false, width: 80, height: 24)
        #expect(screen.text.contains("pool 'demo' is not running"))
    }

    @Test("the selected row and the backoff countdown are drawn")
    func selectionAndBackoff() {
        var state = ConsoleState()
        state.focus = .workers
        state.selectedWorker = 2
        let screen = render(width: 120, height: 40, state: state)
        let row = (0..<screen.height).first { screen.text(row: $0).hasPrefix("3 ") }!
        #expect(screen[0, row].role == .rowSelected)
        #expect(screen.text(row: row).contains("backoff 1.5s"))
    }

    @Test("only changed rows are presented again")
    func changedRows() {
        let first = render(width: 80, height: 24)
        var state = ConsoleState()
        state.message = "hello"
        let second = render(width: 80, height: 24, state: state)
        #expect(second.changedRows(since: first) == [2])
        #expect(first.changedRows(since: first).isEmpty)
    }
}

@Suite("Console reducer: keys to state and commands")
struct ConsoleReducerTests {
    func press(_ keys: [ConsoleKey], state: inout ConsoleState, hosting: Bool = true) -> [ConsoleEffect] {
        keys.flatMap { ConsoleReducer.reduce(&state, key: $0, snapshot: fixedSnapshot(), isHosting: hosting, themes: 2) }
    }

    @Test("+ scales the selected group up by one; - asks first and names the worker that stops")
    func scale() {
        var state = ConsoleState()
        #expect(press([.character("+")], state: &state) == [.run(.scale(group: "jobs", by: 1))])
        #expect(press([.character("-")], state: &state).isEmpty)
        guard case .confirm(let confirmation) = state.mode else {
            Issue.record("expected a confirmation")
            return
        }
        #expect(confirmation.question.contains("stops worker 2 (idle)"))
        #expect(press([.enter], state: &state).isEmpty, "Enter on the default button cancels")
        #expect(state.mode == .normal)
        _ = press([.character("-")], state: &state)
        #expect(press([.character("y")], state: &state) == [.run(.scale(group: "jobs", by: -1))])
    }

    @Test("a group at its max or min says so instead of asking")
    func limits() {
        var state = ConsoleState()
        _ = press([.down], state: &state)
        #expect(press([.character("+")], state: &state).isEmpty)
        #expect(state.message == "group ticker is at its max (1)")
    }

    @Test("k kills the selected worker after a confirmation that counts its jobs in flight")
    func kill() {
        var state = ConsoleState()
        _ = press([.tab, .character("k")], state: &state)
        guard case .confirm(let confirmation) = state.mode else {
            Issue.record("expected a confirmation")
            return
        }
        #expect(confirmation.question.contains("2 jobs in flight"))
        #expect(press([.tab, .enter], state: &state) == [.run(.killWorker(WorkerID(1)))])
    }

    @Test("quitting a hosted pool asks and then stops it; an attached console just detaches")
    func quit() {
        var hosted = ConsoleState()
        #expect(press([.character("q")], state: &hosted).isEmpty)
        #expect(press([.character("y")], state: &hosted) == [.run(.stopPool)])
        #expect(hosted.mode == .quitting)
        var attached = ConsoleState()
        #expect(press([.character("q")], state: &attached, hosting: false) == [.exit])
    }

    @Test("s sorts the workers by the next column, busiest first")
    func sort() {
        var state = ConsoleState()
        _ = press([.character("s"), .character("s"), .character("s")], state: &state)
        #expect(state.sortKey == .jobs)
        #expect(ConsoleReducer.visibleWorkers(fixedSnapshot(), state).map(\.id.rawValue) == [1, 2, 3, 4])
        _ = press([.character("<"), .character("<")], state: &state)
        #expect(state.sortKey == .state)
        #expect(ConsoleReducer.visibleWorkers(fixedSnapshot(), state).map(\.id.rawValue) == [4, 1, 2, 3])
    }

    @Test("a lost terminal stops a hosted pool without asking, and detaches an attached console")
    func hangup() {
        var hosted = ConsoleState()
        #expect(press([.hangup], state: &hosted) == [.run(.stopPool), .exit])
        var attached = ConsoleState()
        #expect(press([.hangup], state: &attached, hosting: false) == [.exit])
    }

    @Test("read-only disables every action")
    func readOnly() {
        var state = ConsoleState(readOnly: true)
        for key: ConsoleKey in [.character("+"), .character("-"), .character("r"), .character("R"), .character("H"), .character("k"), .character("j")] {
            #expect(press([key], state: &state).isEmpty)
            #expect(state.mode == .normal)
        }
        #expect(state.message == "read-only: actions are disabled")
    }

    @Test("j opens a form for payload, priority, weight and count, then submits to the selected job group")
    func job() {
        var state = ConsoleState()
        #expect(press([.character("j")], state: &state).isEmpty)
        guard case .jobForm(let form) = state.mode else {
            Issue.record("expected the job form")
            return
        }
        #expect(form.group == "jobs" && form.field == .payload)
        let typed: [ConsoleKey] = [.tab, .backspace, .character("7"), .tab, .character("x"), .backspace, .character("2"), .tab, .backspace, .character("3"), .enter]
        #expect(press(typed, state: &state) == [.run(.job(group: "jobs", payload: "echo hello from pooltop", priority: 7, weight: 2, count: 3))])
        #expect(state.mode == .normal)
        _ = press([.down], state: &state)
        #expect(press([.character("j")], state: &state).isEmpty)
        #expect(state.mode == .normal, "ticker runs no jobs")
        #expect(state.message == "select a job group to submit a test job")
    }

    @Test("the filter takes typed text; t cycles themes; p pauses; unknown keys are ignored")
    func filterThemePause() {
        var state = ConsoleState()
        _ = press([.character("/"), .character("r"), .character("e"), .backspace, .character("e"), .enter], state: &state)
        #expect(state.filter == "re")
        _ = press([.character("t"), .character("p"), .character("§"), .function(12)], state: &state)
        #expect(state.themeIndex == 1 && state.isPaused)
        #expect(ConsoleReducer.visibleWorkers(fixedSnapshot(), state).map(\.id.rawValue) == [1, 2], "'re' matches ready")
    }
}

@Suite("Console trends: rates and the sparklines of the last minutes")
struct ConsoleTrendsTests {
    /// The fixed pool at `at` seconds, its first worker having processed `jobs` jobs and `connections` connections.
    func pool(at: Double, jobs: UInt64, connections: UInt64 = 0) -> PoolSnapshot {
        var snapshot = fixedSnapshot()
        snapshot.takenAt = at
        for index in snapshot.workers.indices {
            snapshot.workers[index].activity.jobsProcessed = index == 0 ? jobs : 0
            snapshot.workers[index].activity.connectionsProcessed = index == 0 ? connections : 0
        }
        return snapshot
    }

    @Test("each point of the history is the rate over a 15 s interval; idle intervals count as zero; 16 points are kept")
    func buckets() {
        var trends = ConsoleTrends()
        let start = 1_800_000_000.0  // a multiple of 15
        trends.update(pool(at: start, jobs: 0))
        // 150 jobs and 30 connections during the first interval, one refresh a second.
        for second in 1...14 { trends.update(pool(at: start + Double(second), jobs: UInt64(second) * 150 / 14, connections: UInt64(second) * 30 / 14)) }
        #expect(trends.jobHistory == [10], "150 jobs in 15 s")
        #expect(trends.connectionHistory == [2])
        #expect(trends.jobsPerSecond > 0)
        // The next interval: 300 more jobs.
        trends.update(pool(at: start + 20, jobs: 450, connections: 30))
        #expect(trends.jobHistory == [10, 20])
        // A minute with no refresh (paused), then one more job: three idle intervals in between.
        trends.update(pool(at: start + 80, jobs: 465, connections: 30))
        #expect(trends.jobHistory == [10, 20, 0, 0, 0, 1])
        // Five minutes on: only the last 16 intervals are kept.
        trends.update(pool(at: start + 400, jobs: 465, connections: 30))
        #expect(trends.jobHistory.count == 16 && trends.jobHistory.allSatisfy { $0 == 0 })
        // Drawn newest on the right.
        #expect(ConsoleView.sparkline([0, 1, 8], width: 5) == "  ▁▁█")
    }
}

@Suite("Console events pane: focus, scroll, filter")
struct ConsoleEventsTests {
    /// Thirty log lines, "line 0" oldest, every third from worker 9.
    func lines(_ count: Int = 30, from start: Int = 0) -> [PoolEventRecord] {
        (start..<start + count).map { index in
            PoolEventRecord(
                at: 1_800_000_000.0 + Double(index),
                event: .workerLog(WorkerID(index % 3 == 0 ? 9 : 1), group: "g", record: LogRecord(level: "info", message: "line \(index)", timestamp: 0)))
        }
    }

    func press(_ keys: [ConsoleKey], _ state: inout ConsoleState, events: [PoolEventRecord]) {
        for key in keys { _ = ConsoleReducer.reduce(&state, key: key, snapshot: fixedSnapshot(), isHosting: true, themes: 1, events: events) }
    }

    func pane(_ state: ConsoleState, _ events: [PoolEventRecord]) -> [String] {
        let screen = ConsoleView.render(
            snapshot: fixedSnapshot(), events: events, state: state, trends: ConsoleTrends(), poolName: "demo", isHosting: true,
            width: 100, height: 30)
        let rows = screen.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let title = rows.firstIndex { $0.hasPrefix("EVENTS AND LOGS") }!
        return Array(rows[title..<(rows.count - 1)])
    }

    @Test("Tab reaches the events pane; ↑ PgUp Home scroll back, End follows the newest again; the selection does not move")
    func scroll() {
        let events = lines()
        var state = ConsoleState()
        press([.tab, .tab], &state, events: events)
        #expect(state.focus == .events)
        #expect(pane(state, events).last?.hasSuffix("line 29") == true)
        press([.up, .up], &state, events: events)
        #expect(state.eventsScroll == 2 && state.selectedGroup == 0 && state.selectedWorker == 0)
        let scrolled = pane(state, events)
        #expect(scrolled.first?.contains("↑ 2 newer below") == true)
        #expect(scrolled.last?.hasSuffix("line 27") == true)
        press([.pageUp, .down], &state, events: events)
        #expect(state.eventsScroll == 11)
        press([.home], &state, events: events)
        #expect(state.eventsScroll == 29, "the oldest line stays on screen")
        press([.up], &state, events: events)
        #expect(state.eventsScroll == 29)
        press([.end], &state, events: events)
        #expect(state.eventsScroll == 0)
        press([.tab], &state, events: events)
        #expect(state.focus == .groups)
        press([.left], &state, events: events)
        #expect(state.focus == .events)
    }

    @Test("while scrolled back, new lines arrive below without moving the lines being read")
    func anchored() {
        let events = lines()
        var state = ConsoleState()
        state.focus = .events
        press([.up, .up, .up], &state, events: events)
        let before = pane(state, events).dropFirst()
        let more = events + lines(5, from: 30)
        ConsoleReducer.keepEventsAnchored(&state, previousNewest: events.last, events: more)
        #expect(state.eventsScroll == 8)
        #expect(pane(state, more).dropFirst() == before)
        // Following the newest (scroll 0), new lines simply show up.
        var following = ConsoleState()
        ConsoleReducer.keepEventsAnchored(&following, previousNewest: events.last, events: more)
        #expect(following.eventsScroll == 0 && pane(following, more).last?.hasSuffix("line 34") == true)
    }

    @Test("\\ with the events pane focused filters its lines by text, in any case; the workers filter is untouched")
    func filter() {
        let events = lines()
        var state = ConsoleState()
        state.focus = .events
        press([.character("\\"), .character("G"), .character("#"), .character("9"), .enter], &state, events: events)
        #expect(state.eventFilter == "G#9" && state.filter.isEmpty, "kept as typed, matched in any case")
        let shown = pane(state, events)
        #expect(shown.first?.contains("filter: G#9  (10 of 30)") == true)
        #expect(shown.dropFirst().filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.allSatisfy { $0.contains("[g#9]") })
        #expect(shown.last?.hasSuffix("line 27") == true)
        press([.home], &state, events: events)
        #expect(state.eventsScroll == 9, "scrolling counts the matching lines only")
        press([.function(3), .backspace, .backspace, .backspace, .enter], &state, events: events)
        #expect(state.eventFilter.isEmpty && state.eventsScroll == 0)
    }

    @Test("the filter's terms pick lines by level, worker and group, with words")
    func filterTerms() {
        var events = lines(6)
        events.append(
            PoolEventRecord(
                at: 1_800_000_100, event: .workerLog(WorkerID(9), group: "g", record: LogRecord(level: "error", message: "disk full", timestamp: 0))))
        events.append(
            PoolEventRecord(
                at: 1_800_000_101,
                event: .workerExited(WorkerExitRecord(id: WorkerID(1), group: "web", pid: 5, status: .exited(1), reason: .crash, message: nil, uptime: .seconds(1)))))
        func shown(_ filter: String) -> [PoolEventRecord] {
            var state = ConsoleState()
            state.eventFilter = filter
            return ConsoleReducer.visibleEvents(events, state)
        }
        #expect(shown("level:error").count == 2, "the error line and the crash exit")
        #expect(shown("level:error worker:9").map(\.at) == [1_800_000_100])
        #expect(shown("group:web").count == 1 && shown("group:g").count == 7)
        #expect(shown("worker:9 line").count == 2, "lines 0 and 3 are worker 9's")
        #expect(shown("LINE 4").count == 1 && shown("level:nonsense").isEmpty, "an unknown term is a word to find")
    }

    @Test("/ searches the events pane: matches highlighted, n and N move between them from the newest; the lines stay")
    func search() {
        let events = lines()
        var state = ConsoleState()
        state.focus = .events
        press([.character("/"), .character("L"), .character("I"), .character("N"), .character("E"), .character(" "), .character("2"), .enter], &state, events: events)
        #expect(state.eventSearch == "LINE 2" && state.eventFilter.isEmpty)
        // "line 2", "line 20" … "line 29": eleven matches; the newest is shown first, at the bottom.
        #expect(state.message == "match 1 of 11 from the newest (n older, N newer)")
        var shown = pane(state, events)
        #expect(shown.first?.contains("/LINE 2  (11 found)") == true && shown.last?.hasSuffix("line 29") == true)
        press([.character("n"), .character("n")], &state, events: events)
        #expect(state.searchMatch == 2 && state.eventsScroll == 2)
        shown = pane(state, events)
        #expect(shown.last?.hasSuffix("line 27") == true)
        press([.character("N")], &state, events: events)
        #expect(state.searchMatch == 1 && state.eventsScroll == 1)
        // Highlighted: the current line, and each match in the message colour.
        let screen = ConsoleView.render(
            snapshot: fixedSnapshot(), events: events, state: state, trends: ConsoleTrends(), poolName: "demo", isHosting: true,
            width: 100, height: 30)
        let rows = screen.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let row = rows.lastIndex { $0.hasSuffix("line 28") }!
        let column = Array(rows[row]).firstIndex(of: "l")!
        #expect(screen[column + 3, row].role == .message && screen[0, row].role == .rowSelected)
        press([.character("/"), .character("z"), .enter], &state, events: events)
        #expect(state.message == "no line matches \"z\"")
    }

    @Test("f pauses following; w wraps long lines; L scopes the pane to the selected group or worker")
    func followWrapScope() {
        let events = lines()
        var state = ConsoleState()
        state.focus = .events
        press([.character("f")], &state, events: events)
        #expect(state.followPaused)
        let more = events + lines(3, from: 30)
        ConsoleReducer.keepEventsAnchored(&state, previousNewest: events.last, events: more)
        #expect(state.eventsScroll == 3 && pane(state, more).last?.hasSuffix("line 29") == true, "new lines wait below")
        press([.character("f")], &state, events: more)
        #expect(!state.followPaused && state.eventsScroll == 0)
        let long = [
            PoolEventRecord(
                at: 1_800_000_000,
                event: .workerLog(WorkerID(1), group: "g", record: LogRecord(level: "info", message: String(repeating: "x", count: 150) + "END", timestamp: 0)))
        ]
        #expect(!pane(state, long).joined().contains("END"), "cut at the edge")
        press([.character("w")], &state, events: long)
        #expect(pane(state, long).joined().contains("END"), "wrapped onto the next row")
        press([.character("L")], &state, events: events)
        #expect(state.eventScope == .group && pane(state, events).first?.contains("(selected group)") == true)
        press([.character("L"), .character("L")], &state, events: events)
        #expect(state.eventScope == .all)
    }
}

@Suite("Console loop against a memory terminal")
struct ConsoleAppTests {
    final class FixedSource: ConsoleSource {
        let poolName = "demo"
        let isHosting = false
        func snapshot() -> PoolSnapshot? { fixedSnapshot() }
        func recentEvents() -> [PoolEventRecord] { fixedEvents() }
        func perform(_ command: ConsoleCommand) async -> ConsoleOutcome { ConsoleOutcome("done") }
    }

    @Test("keys drive the loop and q detaches, restoring the terminal")
    func loop() {
        let terminal = MemoryTerminal(width: 80, height: 24)
        terminal.keys = [.character("?"), .escape, .character("q")]
        let app = ConsoleApp(source: FixedSource(), terminal: terminal, readOnly: false)
        app.run()
        #expect(terminal.isRestored)
        #expect(terminal.frames.count >= 3)
        #expect(terminal.frames[1].text.contains("Help"))
        #expect(terminal.lastFrame?.text.contains("GROUP") == true)
    }
}

@Suite("Console deaths view (d)")
struct ConsoleDeathsTests {
    static func death(_ worker: Int, at: Double, reason: ExitReason, job: UInt64? = nil, backtrace: String? = nil) -> PostMortem {
        PostMortem(
            at: at, worker: WorkerID(worker), group: "jobs", pid: Int32(4000 + worker), generation: 2,
            status: reason == .hang ? .signaled(9) : .exited(1), reason: reason, message: "why \(worker)", uptimeSeconds: 75,
            lines: (0..<30).map { PostMortem.Line(at: at - Double($0), level: "info", message: "line \($0) of worker \(worker)") },
            samples: [PostMortem.Sample(at: at - 1, rssBytes: 30 << 20, cpuSeconds: 1.5)],
            job: job.map { PostMortem.Job(id: $0, runningSeconds: 2) }, backtrace: backtrace)
    }

    /// Newest first, as the console holds them.
    static let deaths = [
        death(2, at: 1_796_000_300, reason: .hang, job: 41, backtrace: "#3 static PoolDemo.DemoJobs.freezeEventLoop(milliseconds: Swift.Int) -> ()"),
        death(1, at: 1_796_000_200, reason: .crash),
    ]

    func press(_ keys: [ConsoleKey], _ state: inout ConsoleState) {
        for key in keys {
            _ = ConsoleReducer.reduce(&state, key: key, snapshot: fixedSnapshot(), isHosting: true, themes: 1, deaths: Self.deaths.count)
        }
    }

    func render(_ state: ConsoleState) -> String {
        let screen = ConsoleView.render(
            snapshot: fixedSnapshot(), events: [], state: state, trends: ConsoleTrends(), poolName: "demo", isHosting: true,
            width: 120, height: 40, deaths: Self.deaths)
        return (0..<screen.height).map { screen.text(row: $0) }.joined(separator: "\n")
    }

    @Test("d lists the deaths newest first with reason, status, uptime and job; the selection moves and stops at the ends")
    func list() {
        var state = ConsoleState()
        press([.character("d")], &state)
        let text = render(state)
        #expect(text.contains("Deaths, newest first (2)"), "\(text)")
        let hang = text.split(separator: "\n").first { $0.contains("worker 2") }.map(String.init) ?? ""
        #expect(hang.contains(" > ") && hang.contains("hang") && hang.contains("signal 9") && hang.contains("up 1m15s") && hang.contains("job 41"), "\(hang)")
        press([.down, .down, .down], &state)
        #expect(state.mode == .deaths(ConsoleState.Deaths(selected: 1)))
        press([.character("k")], &state)
        #expect(state.mode == .deaths(ConsoleState.Deaths(selected: 0)))
        press([.escape], &state)
        #expect(state.mode == .normal)
    }

    @Test("Enter opens a post-mortem (why, job, log lines, backtrace); j and k scroll it; Esc goes back to the list")
    func open() {
        var state = ConsoleState()
        press([.character("d"), .enter], &state)
        var text = render(state)
        #expect(text.contains("Post-mortem 1 of 2"), "\(text)")
        #expect(text.contains("why: why 2") && text.contains("running job 41 for 2s") && text.contains("line 0 of worker 2"), "\(text)")
        press(Array(repeating: .character("j"), count: 40), &state)
        text = render(state)
        #expect(text.contains("freezeEventLoop"), "scrolled to the backtrace: \(text)")
        #expect(!text.contains("why: why 2"), "the top scrolled away")
        press([.escape], &state)
        #expect(state.mode == .deaths(ConsoleState.Deaths(selected: 0)))
    }
}
