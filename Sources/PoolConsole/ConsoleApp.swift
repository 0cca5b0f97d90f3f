import PoolEngine
import Synchronization

/// The console's loop: read the pool, draw, take a key, act. Runs on a thread of its own
/// (curses is not thread-safe, and the loop blocks in the terminal).
public final class ConsoleApp {
    private let source: any ConsoleSource
    private let terminal: any Terminal
    private let themes: [Theme]
    private var state: ConsoleState
    private var trends = ConsoleTrends()
    private let messages = Locked<[ConsoleOutcome]>([])
    private var snapshot: PoolSnapshot?
    private var lastRead: Double = 0
    /// The deaths view's post-mortems (newest first) and when they were read.
    private var deaths: [PostMortem] = []
    private var deathsRead: Double = 0
    private var hasSeenPool = false
    /// Replay: the moment the trends were computed for.
    private var replayTime: Double?
    /// The newest event line of the last frame: a scrolled events pane stays on its lines as new ones arrive.
    private var newestEvent: PoolEventRecord?

    private let shouldStop: @Sendable () -> Bool
    /// The queue view's reports, read in the background while it is open.
    private let queueFeed: QueueFeed?

    /// - Parameters:
    ///   - queues: reads the pool's PostgreSQL queues for the queue view (`Q`); nil when this
    ///     binary has no queue (then `Q` says so).
    ///   - shouldStop: checked every turn; true ends the console (a termination signal).
    public init(
        source: any ConsoleSource, terminal: any Terminal, readOnly: Bool, themes: [Theme] = Theme.builtIn, theme: String? = nil,
        queues: (any QueueBrowser)? = nil, shouldStop: @escaping @Sendable () -> Bool = { false }
    ) {
        queueFeed = queues.map(QueueFeed.init(browser:))
        self.shouldStop = shouldStop
        self.source = source
        self.terminal = terminal
        self.themes = themes.isEmpty ? Theme.builtIn : themes
        state = ConsoleState(readOnly: readOnly || source.replay != nil)
        state.isReplay = source.replay != nil
        if let theme, let index = self.themes.firstIndex(where: { $0.name == theme }) { state.themeIndex = index }
        if queues != nil { state.queuesUnavailable = nil }
    }

    /// Runs until the operator quits (hosted: after the pool has stopped) and restores the terminal.
    public func run() {
        defer { terminal.restore() }
        while !step(now: Double(PoolInstant.now.nanoseconds) / 1e9) {}
    }

    /// One turn of the loop; true when the console is done.
    @discardableResult
    public func step(now: Double, keyTimeoutMilliseconds: Int32 = 200) -> Bool {
        if shouldStop() { return true }
        if let outcome = messages.withLock({ $0.popLast() }) {
            state.message = outcome.message
            // Test jobs open their results list, unless the operator is in the middle of something.
            if !outcome.lines.isEmpty && state.mode == .normal { state.mode = .jobResults(outcome.lines) }
        }
        if !state.isPaused || snapshot == nil, now - lastRead >= state.refresh.seconds || snapshot == nil || state.mode == .quitting {
            snapshot = source.snapshot()
            lastRead = now
            if let replay = source.replay {
                // The rates at the cursor come from the frames before it, not from reading again.
                if replay.time != replayTime {
                    replayTime = replay.time
                    trends = ConsoleTrends()
                    for frame in replay.trendFrames() { trends.update(frame) }
                }
            } else if let snapshot {
                trends.update(snapshot)
            }
        }
        if state.mode == .quitting && snapshot == nil { return true }
        // A hosted pool that ended by itself (a signal, a fatal error) takes its console with it.
        if snapshot != nil { hasSeenPool = true }
        if source.isHosting && hasSeenPool && snapshot == nil { return true }
        let size = terminal.size
        let events = scopedEvents()
        ConsoleReducer.keepEventsAnchored(&state, previousNewest: newestEvent, events: events)
        newestEvent = events.last
        if case .deaths = state.mode {
            // From the pool's state directory, at the refresh rate while the view is open.
            if now - deathsRead >= state.refresh.seconds {
                deaths = PostMortemFile.records(pool: source.poolName).reversed()
                // A replay shows the deaths up to its moment.
                if let replay = source.replay { deaths = deaths.filter { $0.at <= replay.time + 0.5 } }
                deathsRead = now
            }
        } else {
            deathsRead = 0
        }
        if let queueFeed, state.queueViewShown != nil {
            // At the refresh rate while the view is open, and never waited for here.
            queueFeed.refresh(now: now, interval: state.refresh.seconds)
        }
        let queues = queueFeed?.report
        let frame = ConsoleView.render(
            snapshot: snapshot, events: events, state: state, trends: trends, poolName: source.poolName,
            isHosting: source.isHosting, width: size.width, height: size.height, deaths: deaths, banner: source.replay?.banner,
            queues: queues)
        terminal.present(frame, theme: themes[state.themeIndex % themes.count])
        guard let key = terminal.readKey(timeoutMilliseconds: keyTimeoutMilliseconds) else { return false }
        if key != .resize { state.message = nil }
        let effects = ConsoleReducer.reduce(
            &state, key: key, snapshot: snapshot, isHosting: source.isHosting, themes: themes.count, events: events,
            deaths: deaths.count, queues: queues)
        // An operator's key wants to see its effect: read the pool again on the next turn.
        lastRead = 0
        for effect in effects {
            switch effect {
            case .exit:
                return true
            case .seek(let move):
                state.message = source.replay?.seek(move, now: ReplayTime.wallClock)
                deathsRead = 0
            case .queue(let action):
                guard let queueFeed else { break }
                let messages = self.messages
                Task {
                    let message = await queueFeed.browser.perform(action)
                    // The view shows the change on the next read, not a second later.
                    queueFeed.invalidate()
                    messages.withLock { $0.append(ConsoleOutcome(message)) }
                }
            case .run(.stopPool) where state.shouldExit:
                // The terminal is gone: stop the pool and leave; the host waits for the pool.
                let source = self.source
                Task { _ = await source.perform(.stopPool) }
            case .run(let command):
                let source = self.source
                let messages = self.messages
                Task {
                    let outcome = await source.perform(command)
                    messages.withLock { $0.append(outcome) }
                }
            }
        }
        return state.shouldExit
    }

    /// The events pane's lines: everything, or the selected group's or worker's history.
    private func scopedEvents() -> [PoolEventRecord] {
        switch state.eventScope {
        case .all:
            return source.recentEvents()
        case .group:
            guard let snapshot, snapshot.groups.indices.contains(state.selectedGroup) else { return source.recentEvents() }
            let group = snapshot.groups[state.selectedGroup].id
            return source.history(of: snapshot.workers.filter { $0.groupID == group }.map(\.id))
        case .worker:
            let workers = ConsoleReducer.visibleWorkers(snapshot, state)
            guard workers.indices.contains(state.selectedWorker) else { return [] }
            return source.history(of: [workers[state.selectedWorker].id])
        }
    }

    /// The last frame drawn (for tests).
    public var currentState: ConsoleState { state }
}
