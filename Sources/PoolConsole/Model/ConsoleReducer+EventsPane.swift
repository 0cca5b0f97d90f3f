import PoolEngine

// The events pane's keys (search, filter, scope, follow, wrap, scrolling) and the replay's,
// split from the reducer's main switch.
extension ConsoleReducer {
    /// Replay's own keys: ←/→ a second, PgUp/PgDn a minute, `g` a moment typed in; nil for others.
    static func replayMove(_ state: inout ConsoleState, key: ConsoleKey) -> [ConsoleEffect]? {
        switch key {
        case .left: return [.seek(.by(-1))]
        case .right: return [.seek(.by(1))]
        case .pageUp: return [.seek(.by(-60))]
        case .pageDown: return [.seek(.by(60))]
        case .character("g"):
            state.mode = .seek("")
            return []
        case .character("G"): return [.seek(.newest)]
        default: return nil
        }
    }

    /// The events pane's own keys when it has the focus: search, filter, scope, follow, wrap.
    static func eventsPaneKey(_ state: inout ConsoleState, key: ConsoleKey, events: [PoolEventRecord]) -> Bool {
        switch key {
        case .character("/"):
            state.mode = .search
            state.eventSearch = ""
        case .character("\\"), .function(3):
            state.mode = .filter
        case .character("n"), .character("N"):
            guard !state.eventSearch.isEmpty else {
                state.message = "no search: / searches the lines"
                return true
            }
            state.searchMatch += key == .character("n") ? 1 : -1
            showMatch(&state, events: events)
        case .character("f"):
            state.followPaused.toggle()
            if !state.followPaused { state.eventsScroll = 0 }
            state.message = state.followPaused ? "follow paused: new lines wait below (f or End resumes)" : "following new lines"
        case .character("w"):
            state.wrapEvents.toggle()
            state.message = state.wrapEvents ? "long lines wrap" : "long lines are cut"
        case .character("L"):
            let scopes = ConsoleState.EventScope.allCases
            state.eventScope = scopes[(scopes.firstIndex(of: state.eventScope)! + 1) % scopes.count]
            state.eventsScroll = 0
            state.searchMatch = 0
            state.message = "events pane: \(state.eventScope == .all ? "everything" : "the selected \(state.eventScope.rawValue)'s lines")"
        default:
            return false
        }
        return true
    }

    /// The lines of the pane that match its search, as indexes into ``visibleEvents(_:_:)``.
    public static func searchMatches(_ visible: [PoolEventRecord], _ state: ConsoleState) -> [Int] {
        guard !state.eventSearch.isEmpty else { return [] }
        let needle = state.eventSearch.lowercased()
        return visible.indices.filter { ConsoleView.describe(visible[$0]).0.lowercased().contains(needle) }
    }

    /// Scrolls the pane so the current match is its bottom line (and keeps the match in range).
    static func showMatch(_ state: inout ConsoleState, events: [PoolEventRecord]) {
        let visible = visibleEvents(events, state)
        let matches = searchMatches(visible, state)
        guard !matches.isEmpty else {
            state.message = "no line matches \"\(state.eventSearch)\""
            state.searchMatch = 0
            return
        }
        state.searchMatch = max(0, min(matches.count - 1, state.searchMatch))
        let line = matches[matches.count - 1 - state.searchMatch]
        state.eventsScroll = visible.count - 1 - line
        state.message = "match \(state.searchMatch + 1) of \(matches.count) from the newest (n older, N newer)"
    }

    /// Moves through the events pane when it has the focus; false for keys that are not its own.
    static func scrollEvents(_ state: inout ConsoleState, key: ConsoleKey, events: [PoolEventRecord]) -> Bool {
        let oldest = max(0, visibleEvents(events, state).count - 1)
        let step: Int
        switch key {
        case .up: step = 1
        case .down: step = -1
        case .pageUp: step = 10
        case .pageDown: step = -10
        case .home: step = oldest
        case .end:
            step = -state.eventsScroll
            state.followPaused = false
        default: return false
        }
        state.eventsScroll = max(0, min(oldest, state.eventsScroll + step))
        return true
    }

    /// The event and log lines the pane shows, oldest first: those matching the event filter.
    public static func visibleEvents(_ events: [PoolEventRecord], _ state: ConsoleState) -> [PoolEventRecord] {
        guard !state.eventFilter.isEmpty else { return events }
        let filter = EventFilter(state.eventFilter)
        return events.filter(filter.matches)
    }

    /// Keeps a scrolled events pane on the lines the operator is reading while new ones arrive
    /// below: the scroll grows by the matching lines that came after `previousNewest`.
    public static func keepEventsAnchored(_ state: inout ConsoleState, previousNewest: PoolEventRecord?, events: [PoolEventRecord]) {
        guard state.eventsScroll > 0 || state.followPaused, let previousNewest, events.last != previousNewest else { return }
        guard let index = events.lastIndex(of: previousNewest) else { return }
        let arrived = visibleEvents(Array(events[(index + 1)...]), state).count
        state.eventsScroll = min(state.eventsScroll + arrived, max(0, visibleEvents(events, state).count - 1))
    }
}
