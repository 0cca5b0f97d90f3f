import PoolEngine

/// A key the console understands, as the terminal reports it.
public enum ConsoleKey: Hashable, Sendable {
    case character(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backspace
    case function(Int)
    case resize
    /// The terminal is gone (closed window, dropped SSH session).
    case hangup
}

/// A question an operator must answer before a destructive action; Cancel is the default.
public struct Confirmation: Hashable, Sendable {
    /// What OK does.
    public enum Action: Hashable, Sendable {
        /// A command to the pool.
        case pool(ConsoleCommand)
        /// A change to a queue's dead job; either answer goes back to the queue view as it was.
        case queue(QueueAction, returnTo: ConsoleState.QueueView)
    }

    public var question: String
    public var action: Action
    /// Whether OK is highlighted (Tab moves it); Enter answers the highlighted button.
    public var okSelected = false

    public init(question: String, command: ConsoleCommand) {
        self.question = question
        action = .pool(command)
    }

    public init(question: String, queue action: QueueAction, returnTo view: ConsoleState.QueueView) {
        self.question = question
        self.action = .queue(action, returnTo: view)
    }

    /// Where either answer leads: the queue view the question came from, or the pool's screen.
    var modeAfter: ConsoleState.Mode {
        if case .queue(_, let view) = action { return .queues(view) }
        return .normal
    }
}

/// The test-job form of `j`: the field being edited and the four values.
public struct JobForm: Hashable, Sendable {
    public enum Field: Int, CaseIterable, Hashable, Sendable {
        case payload, priority, weight, count
    }

    public var group: String
    public var field: Field = .payload
    public var payload = "echo hello from pooltop"
    public var priority = "0"
    public var weight = "1"
    public var count = "1"

    subscript(field: Field) -> String {
        get { [payload, priority, weight, count][field.rawValue] }
        set {
            switch field {
            case .payload: payload = newValue
            case .priority: priority = newValue
            case .weight: weight = newValue
            case .count: count = newValue
            }
        }
    }
}

/// Everything the console shows besides the pool's own state. Changed only by ``reduce``.
public struct ConsoleState: Hashable, Sendable {
    /// The deaths view (`d`): recent worker deaths, newest first, and one opened.
    public struct Deaths: Hashable, Sendable {
        /// The selected death, 0 the newest.
        public var selected = 0
        /// Whether the selected one is open (its whole post-mortem), and how far it is scrolled.
        public var opened = false
        public var scroll = 0
        public init(selected: Int = 0, opened: Bool = false, scroll: Int = 0) {
            self.selected = selected
            self.opened = opened
            self.scroll = scroll
        }
    }

    /// The queue view (`Q`): the pool's PostgreSQL queues and their dead jobs, one selected.
    public struct QueueView: Hashable, Sendable {
        /// The selected dead job, 0 the first listed (the first group's newest).
        public var selected = 0
        /// Whether the selected dead job is open (its whole error and payload).
        public var opened = false
        public init(selected: Int = 0, opened: Bool = false) {
            self.selected = selected
            self.opened = opened
        }
    }

    public enum Mode: Hashable, Sendable {
        case normal
        case deaths(Deaths)
        /// The keys, scrolled by `scroll` lines when they do not fit the terminal.
        case help(scroll: Int = 0)
        case detail(WorkerID)
        case confirm(Confirmation)
        case filter
        /// The events pane's search being typed (`/` with the pane focused).
        case search
        /// The hosted pool is stopping after a confirmed quit; the screen shows the progress.
        case quitting
        /// The test-job form.
        case jobForm(JobForm)
        /// How the last test jobs ended, one line each.
        case jobResults([String])
        /// Replay: the moment typed after `g`.
        case seek(String)
        case queues(QueueView)

        /// The queue view's state in this mode, when it is the queue view.
        var queueView: QueueView? {
            if case .queues(let view) = self { return view }
            return nil
        }
    }

    public enum Focus: Hashable, Sendable, CaseIterable {
        case groups, workers, events
    }

    public enum EventScope: String, Hashable, Sendable, CaseIterable {
        case all, group, worker
    }

    /// How the workers table is ordered.
    public enum SortKey: String, CaseIterable, Hashable, Sendable {
        case id, state, restarts, jobs, memory, cpu
    }

    public var mode: Mode = .normal

    /// The queue view on screen, open or under a question asked from it; nil when not shown.
    public var queueViewShown: QueueView? {
        switch mode {
        case .queues(let view): return view
        case .confirm(let confirmation): return confirmation.modeAfter.queueView
        default: return nil
        }
    }
    public var sortKey: SortKey = .id
    public var focus: Focus = .groups
    public var selectedGroup = 0
    public var selectedWorker = 0
    public var filter = ""
    /// Shows only the event and log lines that match (``EventFilter``: text in any case, and
    /// `level:`, `worker:`, `group:` terms).
    public var eventFilter = ""
    /// Whose lines the events pane shows: everyone's, the selected group's, or the selected worker's.
    public var eventScope: EventScope = .all
    /// The search of the events pane (`/`): its matches are highlighted; `n`/`N` move between them.
    public var eventSearch = ""
    /// The match the pane is on, counted from the newest (0 is the newest match).
    public var searchMatch = 0
    /// Follow paused (`f`): new lines arrive below without moving the pane, as when scrolled back.
    public var followPaused = false
    /// Long lines of the events pane wrap instead of being cut (`w`).
    public var wrapEvents = false
    /// How many (filtered) event lines the pane is scrolled up from the newest; 0 follows new ones.
    public var eventsScroll = 0
    public var isPaused = false
    public var refresh: Duration = .seconds(1)
    public var themeIndex = 0
    public var readOnly = false
    /// The console plays a recording back (`pooltop replay`): ←/→ and PgUp/PgDn move in time.
    public var isReplay = false
    public var message: String?
    public var shouldExit = false
    /// Why `Q` cannot open the queue view; nil when the console has a queue browser.
    public var queuesUnavailable: String? = "no queue view: this pooltop was built without the PostgreSQL queue (swift build --traits PostgresQueue, or make run QUEUE=1)"

    public init(readOnly: Bool = false) {
        self.readOnly = readOnly
    }
}

/// What a key asks the console loop to do besides changing state.
public enum ConsoleEffect: Hashable, Sendable {
    case run(ConsoleCommand)
    /// A confirmed change to a queue's dead job.
    case queue(QueueAction)
    /// Replay: move through the recording.
    case seek(ReplaySeek)
    case exit
}

/// The console's reducer: a key, the state and the pool as last seen in; the new state and effects out. Pure.
public enum ConsoleReducer {
    public static func reduce(
        _ state: inout ConsoleState, key: ConsoleKey, snapshot: PoolSnapshot?, isHosting: Bool, themes: Int,
        events: [PoolEventRecord] = [], deaths: Int = 0, queues: QueueReport? = nil
    ) -> [ConsoleEffect] {
        if key == .hangup {
            // Nobody is left to ask: a hosted pool stops, an attached console just goes.
            state.shouldExit = true
            return isHosting ? [.run(.stopPool), .exit] : [.exit]
        }
        switch state.mode {
        case .quitting:
            return []
        case .jobResults:
            if key != .resize { state.mode = .normal }
            return []
        case .deaths(var view):
            switch key {
            case .escape where view.opened, .backspace where view.opened, .enter where view.opened:
                view.opened = false
                view.scroll = 0
            case .character("q"), .character("d"), .escape:
                state.mode = .normal
                return []
            case .enter:
                if deaths > 0 { view.opened = true }
            case .up, .character("k"):
                if view.opened { view.scroll = max(0, view.scroll - 1) } else { view.selected = max(0, view.selected - 1) }
            case .down, .character("j"):
                if view.opened { view.scroll += 1 } else { view.selected = min(max(deaths - 1, 0), view.selected + 1) }
            case .pageUp:
                if view.opened { view.scroll = max(0, view.scroll - 10) } else { view.selected = max(0, view.selected - 10) }
            case .pageDown:
                if view.opened { view.scroll += 10 } else { view.selected = min(max(deaths - 1, 0), view.selected + 10) }
            case .home:
                if view.opened { view.scroll = 0 } else { view.selected = 0 }
            default:
                break
            }
            state.mode = .deaths(view)
            return []
        case .queues(let view):
            return queueKey(&state, key: key, view: view, report: queues)
        case .jobForm(var form):
            switch key {
            case .escape:
                state.mode = .normal
            case .tab, .down:
                form.field = JobForm.Field(rawValue: (form.field.rawValue + 1) % JobForm.Field.allCases.count)!
                state.mode = .jobForm(form)
            case .up:
                form.field = JobForm.Field(rawValue: (form.field.rawValue + JobForm.Field.allCases.count - 1) % JobForm.Field.allCases.count)!
                state.mode = .jobForm(form)
            case .backspace:
                if !form[form.field].isEmpty { form[form.field].removeLast() }
                state.mode = .jobForm(form)
            case .character(let character):
                if form.field == .payload || character.isNumber || (character == "-" && form.field == .priority) {
                    form[form.field].append(character)
                }
                state.mode = .jobForm(form)
            case .enter:
                guard let priority = Int(form.priority), let weight = Int(form.weight), weight >= 0,
                    let count = Int(form.count), (1...1000).contains(count)
                else {
                    state.message = "priority must be a whole number, weight ≥ 0, count 1…1000"
                    return []
                }
                state.mode = .normal
                return [.run(.job(group: form.group, payload: form.payload, priority: priority, weight: weight, count: count))]
            default:
                break
            }
            return []
        case .help(let scroll):
            // The arrows, j/k and the page keys scroll a help taller than the terminal; any
            // other key closes it.
            let last = max(ConsoleHelp.entries(for: state).count - 1, 0)
            switch key {
            case .resize: break
            case .down, .character("j"): state.mode = .help(scroll: min(last, scroll + 1))
            case .up, .character("k"): state.mode = .help(scroll: max(0, scroll - 1))
            case .pageDown: state.mode = .help(scroll: min(last, scroll + 10))
            case .pageUp: state.mode = .help(scroll: max(0, scroll - 10))
            default: state.mode = .normal
            }
            return []
        case .seek(var text):
            switch key {
            case .escape:
                state.mode = .normal
            case .enter:
                state.mode = .normal
                return text.isEmpty ? [] : [.seek(.to(text))]
            case .backspace:
                if !text.isEmpty { text.removeLast() }
                state.mode = .seek(text)
            case .character(let character):
                text.append(character)
                state.mode = .seek(text)
            default:
                break
            }
            return []
        case .detail:
            if key == .escape || key == .enter || key == .character("q") { state.mode = .normal }
            return []
        case .filter:
            // `/` filters the focused pane: the events pane's text, or the workers.
            let editsEvents = state.focus == .events
            var text = editsEvents ? state.eventFilter : state.filter
            switch key {
            case .enter, .escape: state.mode = .normal
            case .backspace: if !text.isEmpty { text.removeLast() }
            case .character(let character): text.append(character)
            default: break
            }
            if editsEvents {
                if text != state.eventFilter { state.eventsScroll = 0 }
                state.eventFilter = text
            } else {
                state.filter = text
            }
            return []
        case .search:
            switch key {
            case .escape:
                state.mode = .normal
            case .enter:
                state.mode = .normal
                state.searchMatch = 0
                showMatch(&state, events: events)
            case .backspace:
                if !state.eventSearch.isEmpty { state.eventSearch.removeLast() }
            case .character(let character):
                state.eventSearch.append(character)
            default:
                break
            }
            return []
        case .confirm(var confirmation):
            switch key {
            case .tab, .left, .right:
                confirmation.okSelected.toggle()
                state.mode = .confirm(confirmation)
                return []
            case .character("y"), .character("Y"):
                return accept(&state, confirmation, isHosting: isHosting)
            case .enter:
                if confirmation.okSelected { return accept(&state, confirmation, isHosting: isHosting) }
                state.mode = confirmation.modeAfter
                return []
            default:
                state.mode = confirmation.modeAfter
                state.message = "cancelled"
                return []
            }
        case .normal:
            if state.isReplay, let move = replayMove(&state, key: key) { return move }
            if state.focus == .events, eventsPaneKey(&state, key: key, events: events) { return [] }
            if state.focus == .events, scrollEvents(&state, key: key, events: events) { return [] }
            return normal(&state, key: key, snapshot: snapshot, isHosting: isHosting, themes: themes)
        }
    }

    private static func accept(_ state: inout ConsoleState, _ confirmation: Confirmation, isHosting: Bool) -> [ConsoleEffect] {
        switch confirmation.action {
        case .pool(.stopPool):
            state.mode = .quitting
            return [.run(.stopPool)]
        case .pool(let command):
            state.mode = confirmation.modeAfter
            return [.run(command)]
        case .queue(let action, _):
            state.mode = confirmation.modeAfter
            return [.queue(action)]
        }
    }

    private static func normal(
        _ state: inout ConsoleState, key: ConsoleKey, snapshot: PoolSnapshot?, isHosting: Bool, themes: Int
    ) -> [ConsoleEffect] {
        let groups = snapshot?.groups ?? []
        let workers = visibleWorkers(snapshot, state)
        let group = groups.indices.contains(state.selectedGroup) ? groups[state.selectedGroup] : nil
        let worker = workers.indices.contains(state.selectedWorker) ? workers[state.selectedWorker] : nil
        func needsWrite() -> Bool {
            if state.isReplay {
                state.message = "replay: a recording cannot be changed"
                return true
            }
            if state.readOnly { state.message = "read-only: actions are disabled" }
            return state.readOnly
        }
        switch key {
        case .character("q"), .function(10):
            if isHosting {
                state.mode = .confirm(
                    Confirmation(question: "Quit and stop pool '\(snapshot?.pool.name ?? "")' and all its workers?", command: .stopPool))
                return []
            }
            state.shouldExit = true
            return [.exit]
        case .character("?"), .function(1), .character("h"):
            state.mode = .help()
        case .character("d"):
            state.mode = .deaths(ConsoleState.Deaths())
        case .character("Q"):
            if state.isReplay {
                state.message = "replay: the queue view shows the live database; pooltop queue NAME reads it"
            } else if let why = state.queuesUnavailable {
                state.message = why
            } else {
                state.mode = .queues(ConsoleState.QueueView())
            }
        case .down:
            move(&state, by: 1, groups: groups.count, workers: workers.count)
        case .up:
            move(&state, by: -1, groups: groups.count, workers: workers.count)
        case .pageUp:
            move(&state, by: -10, groups: groups.count, workers: workers.count)
        case .pageDown:
            move(&state, by: 10, groups: groups.count, workers: workers.count)
        case .tab, .right:
            let panes = ConsoleState.Focus.allCases
            state.focus = panes[(panes.firstIndex(of: state.focus)! + 1) % panes.count]
        case .left:
            let panes = ConsoleState.Focus.allCases
            state.focus = panes[(panes.firstIndex(of: state.focus)! + panes.count - 1) % panes.count]
        case .enter:
            if let worker { state.mode = .detail(worker.id) }
        case .character("/"), .function(3):
            state.mode = .filter
        case .character("p"), .character("Z"):
            state.isPaused.toggle()
            state.message = state.isPaused ? "paused" : "resumed"
        case .character("t"):
            state.themeIndex = (state.themeIndex + 1) % max(themes, 1)
        case .character("s"), .character(">"), .function(6):
            let keys = ConsoleState.SortKey.allCases
            state.sortKey = keys[(keys.firstIndex(of: state.sortKey)! + 1) % keys.count]
            state.message = "workers sorted by \(state.sortKey.rawValue)"
        case .character("<"):
            let keys = ConsoleState.SortKey.allCases
            state.sortKey = keys[(keys.firstIndex(of: state.sortKey)! + keys.count - 1) % keys.count]
            state.message = "workers sorted by \(state.sortKey.rawValue)"
        case .character("]"):
            state.refresh = min(state.refresh * 2, .seconds(10))
            state.message = "refresh every \(format(state.refresh))"
        case .character("["):
            state.refresh = max(state.refresh / 2, .milliseconds(250))
            state.message = "refresh every \(format(state.refresh))"
        case .character("+"), .function(2):
            guard !needsWrite(), let group else { break }
            if group.desired >= group.max {
                state.message = "group \(group.name) is at its max (\(group.max))"
            } else {
                return [.run(.scale(group: group.name, by: 1))]
            }
        case .character("-"):
            guard !needsWrite(), let group else { break }
            if group.desired <= group.min {
                state.message = "group \(group.name) is at its min (\(group.min))"
            } else {
                let victim = workers.filter { $0.groupID == group.id && $0.state == .ready }.max { $0.id < $1.id }
                let busy = victim.map { $0.activity.jobsInFlight > 0 } ?? false
                let what = victim.map { "stops worker \($0.id)\(busy ? " (\($0.activity.jobsInFlight) jobs in flight, it drains first)" : " (idle)")" } ?? "stops a worker"
                state.mode = .confirm(
                    Confirmation(question: "Scale \(group.name) down to \(group.desired - 1)? This \(what).", command: .scale(group: group.name, by: -1)))
            }
        case .character("r"):
            guard !needsWrite(), let worker else { break }
            state.mode = .confirm(
                Confirmation(question: "Restart worker \(worker.id) (\(worker.group))? \(drainNote(worker))", command: .restartWorker(worker.id)))
        case .character("R"):
            guard !needsWrite(), let group else { break }
            state.mode = .confirm(
                Confirmation(question: "Rolling restart of \(group.name) (\(group.running) running)? One worker at a time, each replacement ready before the next.", command: .restartGroup(group.name)))
        case .character("H"):
            guard !needsWrite() else { break }
            let running = snapshot?.workers.filter { $0.state.hasProcess }.count ?? 0
            state.mode = .confirm(Confirmation(question: "Hard restart: stop all \(running) workers, then start them again?", command: .hardRestart))
        case .character("k"), .function(9):
            guard !needsWrite(), let worker, worker.pid > 0 else { break }
            state.mode = .confirm(
                Confirmation(question: "Kill worker \(worker.id) (pid \(worker.pid)) with SIGKILL? \(worker.activity.jobsInFlight) jobs in flight are lost to their senders.", command: .killWorker(worker.id)))
        case .character("j"):
            guard !needsWrite() else { break }
            guard let group, group.kind == .job else {
                state.message = "select a job group to submit a test job"
                break
            }
            state.mode = .jobForm(JobForm(group: group.name))
        default:
            break
        }
        return []
    }

    private static func drainNote(_ worker: WorkerSnapshot) -> String {
        worker.activity.jobsInFlight > 0
            ? "It has \(worker.activity.jobsInFlight) jobs in flight and will drain first."
            : "It is idle."
    }

    private static func move(_ state: inout ConsoleState, by delta: Int, groups: Int, workers: Int) {
        switch state.focus {
        case .groups:
            state.selectedGroup = max(0, min(groups - 1, state.selectedGroup + delta))
            state.selectedWorker = 0
        case .workers:
            state.selectedWorker = max(0, min(workers - 1, state.selectedWorker + delta))
        case .events:
            break
        }
    }

    /// The workers the table shows: the selected group's, filtered by the filter text.
    public static func visibleWorkers(_ snapshot: PoolSnapshot?, _ state: ConsoleState) -> [WorkerSnapshot] {
        guard let snapshot else { return [] }
        let groupID = snapshot.groups.indices.contains(state.selectedGroup) ? snapshot.groups[state.selectedGroup].id : nil
        let workers = snapshot.workers.filter { worker in
            (groupID == nil || worker.groupID == groupID)
                && (state.filter.isEmpty || "\(worker.id) \(worker.group) \(worker.state.rawValue) \(worker.pid)".contains(state.filter))
        }
        // Busiest first for the figures; ties keep id order.
        func key(_ worker: WorkerSnapshot) -> Double {
            switch state.sortKey {
            case .id: return 0
            case .state: return Double(WorkerState.allCases.firstIndex(of: worker.state) ?? 0)
            case .restarts: return -Double(worker.restarts)
            case .jobs: return -Double(worker.activity.jobsProcessed)
            case .memory: return -Double(worker.rssBytes)
            case .cpu: return -worker.cpuSeconds
            }
        }
        return workers.sorted { (key($0), $0.id.rawValue) < (key($1), $1.id.rawValue) }
    }
}
