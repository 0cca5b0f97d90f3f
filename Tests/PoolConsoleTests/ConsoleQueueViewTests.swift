import Testing

@testable import PoolConsole
@testable import PoolEngine

/// A fixed queue report: a connected group with two queues and three dead jobs (one with a
/// two-line error and a binary payload), and a group whose database is unreachable.
func fixedQueueReport() -> QueueReport {
    let readAt = 1_800_000_000.0
    return QueueReport(
        groups: [
            QueueReport.Group(
                name: "queue", place: "postgres://app@db:5432/app schema pooltop", isConnected: true,
                state: "connected to postgres://app@db:5432/app schema pooltop, queues emails, reports; 4 job(s) claimed",
                queues: [
                    QueueFigures(queue: "emails", available: 12, scheduled: 3, retrying: 1, running: 4, dead: 2, doneLastMinute: 830, oldestAge: 1.25),
                    QueueFigures(queue: "reports", available: 0, scheduled: 0, retrying: 0, running: 0, dead: 1, doneLastMinute: 0),
                ],
                deadJobs: [
                    DeadJob(
                        id: 9041, queue: "emails", attempts: 6, lastError: "handler-failed (worker 3): smtp refused\nretry later",
                        payloadHead: "welcome 42", finishedAt: readAt - 75),
                    DeadJob(
                        id: 9007, queue: "emails", attempts: 6, lastError: "timeout after 5m", payloadHead: "bin\u{1B}[2J\u{0}x",
                        finishedAt: readAt - 3700),
                    DeadJob(
                        id: 12, queue: "reports", attempts: 1, lastError: "too large for the job group", payloadHead: "report 7",
                        finishedAt: readAt - 90_000),
                ]),
            QueueReport.Group(
                name: "remote", place: "postgres://app@far:5432/app schema pooltop", isConnected: false,
                state: "DATABASE UNREACHABLE for 12 s (connection refused): postgres://app@far:5432/app",
                problem: "cannot connect to postgres://app@far:5432/app: connection refused"),
        ],
        readAt: readAt)
}

@Suite("Console queue view (Q)")
struct ConsoleQueueViewTests {
    func render(_ state: ConsoleState, width: Int = 120, height: Int = 40, report: QueueReport? = fixedQueueReport()) -> ScreenBuffer {
        ConsoleView.render(
            snapshot: fixedSnapshot(), events: fixedEvents(), state: state, trends: ConsoleTrends(), poolName: "demo",
            isHosting: true, width: width, height: height, queues: report)
    }

    func press(_ keys: [ConsoleKey], _ state: inout ConsoleState, report: QueueReport? = fixedQueueReport()) -> [ConsoleEffect] {
        keys.flatMap { ConsoleReducer.reduce(&state, key: $0, snapshot: fixedSnapshot(), isHosting: true, themes: 1, queues: report) }
    }

    func available() -> ConsoleState {
        var state = ConsoleState()
        state.queuesUnavailable = nil
        return state
    }

    func opened(selected: Int = 0) -> ConsoleState {
        var state = available()
        state.mode = .queues(ConsoleState.QueueView(selected: selected))
        return state
    }

    @Test("120×40: each group's state, the queues' figures, the dead jobs with their errors, the selection")
    func large() { expectSnapshot(render(opened(selected: 1)), named: "queues-120x40") }

    @Test("80×24: every figure column fits")
    func small() { expectSnapshot(render(opened(), width: 80, height: 24), named: "queues-80x24") }

    @Test("40×12 shows what fits") func cramped() { expectSnapshot(render(opened(), width: 40, height: 12), named: "queues-40x12") }

    @Test("an opened dead job shows its whole error and its payload, without the payload's control characters")
    func openedJob() {
        var state = opened(selected: 1)
        _ = press([.up, .enter], &state)
        #expect(state.mode == .queues(ConsoleState.QueueView(selected: 0, opened: true)))
        let text = render(state).text
        #expect(text.contains("Dead job 9041 (1 of 3), queue emails, group queue"), "\(text)")
        #expect(text.contains("smtp refused") && text.contains("retry later") && text.contains("died at 07:58:45"), "\(text)")
        _ = press([.down, .escape, .enter], &state)
        #expect(state.mode == .queues(ConsoleState.QueueView(selected: 1, opened: true)), "the selection moves while open; Esc closes")
        #expect(!render(state).text.contains("\u{1B}"), "no escape character reaches the terminal")
        _ = press([.escape, .escape], &state)
        #expect(state.mode == .normal)
    }

    @Test("before the first read it says it is reading; a pool without a queue group says so")
    func emptyStates() {
        #expect(render(opened(), report: nil).text.contains("reading the queues"))
        let none = render(opened(), report: QueueReport(groups: [], readAt: 0)).text
        #expect(none.contains("has no running postgres-queue group"), "\(none)")
    }

    @Test("Q says why when the binary has no queue, and in a replay; otherwise it opens the view and q closes it")
    func opening() {
        var state = ConsoleState()
        _ = press([.character("Q")], &state)
        #expect(state.mode == .normal && state.message?.contains("built without the PostgreSQL queue") == true)
        state = available()
        state.isReplay = true
        _ = press([.character("Q")], &state)
        #expect(state.mode == .normal && state.message?.contains("replay") == true)
        state = available()
        _ = press([.character("Q")], &state)
        #expect(state.mode == .queues(ConsoleState.QueueView()))
        _ = press([.end], &state)
        #expect(state.mode == .queues(ConsoleState.QueueView(selected: 2)), "End: the last dead job")
        _ = press([.down, .character("q")], &state)
        #expect(state.mode == .normal)
        #expect(render(available()).text.contains("QQueues"), "the key bar offers it")
    }

    @Test("r asks before retrying the selected dead job, naming it; Enter on the default cancels back to the view")
    func retry() {
        var state = opened(selected: 2)
        #expect(press([.character("r")], &state).isEmpty)
        guard case .confirm(let confirmation) = state.mode else {
            Issue.record("expected a confirmation, got \(state.mode)")
            return
        }
        #expect(!confirmation.okSelected)
        #expect(confirmation.question.contains("Retry dead job 12 (queue reports, 1 attempt, group queue)"), "\(confirmation.question)")
        let text = render(state).text
        #expect(text.contains("[ Cancel ]") && text.contains("DEAD JOBS (3"), "the question is drawn over the view:\n\(text)")
        #expect(press([.enter], &state).isEmpty)
        #expect(state.mode == .queues(ConsoleState.QueueView(selected: 2)))
        #expect(press([.character("r"), .tab, .enter], &state) == [.queue(.retry(group: "queue", id: 12))])
        #expect(state.mode == .queues(ConsoleState.QueueView(selected: 2)), "back to the view to see it go")
    }

    @Test("x asks before discarding; y confirms, any other key cancels")
    func discard() {
        var state = opened()
        _ = press([.character("x")], &state)
        guard case .confirm(let confirmation) = state.mode else {
            Issue.record("expected a confirmation, got \(state.mode)")
            return
        }
        #expect(confirmation.question.contains("Discard dead job 9041") && confirmation.question.contains("for good"))
        #expect(press([.character("n")], &state).isEmpty)
        #expect(state.mode == .queues(ConsoleState.QueueView()) && state.message == "cancelled")
        #expect(press([.character("x"), .character("y")], &state) == [.queue(.discard(group: "queue", id: 9041))])
    }

    @Test("read-only refuses retry and discard; with no dead job there is nothing to act on")
    func refusals() {
        var state = opened()
        state.readOnly = true
        #expect(press([.character("r"), .character("x")], &state).isEmpty)
        #expect(state.mode == .queues(ConsoleState.QueueView()) && state.message == "read-only: actions are disabled")
        state = opened()
        let empty = QueueReport(groups: [], readAt: 0)
        #expect(press([.character("r")], &state, report: empty).isEmpty)
        #expect(state.message == "no dead job to retry")
        #expect(press([.enter], &state, report: empty).isEmpty && state.mode == .queues(ConsoleState.QueueView()))
    }
}
