/// Every key of the console with what it does: the help screen shows this list and a test
/// checks that `docs/pooltop.md` documents each key.
public enum ConsoleHelp {
    public struct Entry: Sendable {
        public var keys: String
        public var meaning: String
        /// Actions change the pool; `--read-only` disables them.
        public var isAction: Bool
        /// Where the key works: the help shows only what works in the console it is opened in.
        public var scope: Scope = .everywhere
    }

    public enum Scope: Sendable {
        case everywhere
        /// Playing a recording back.
        case replay
        /// A live pool, with the queue view built in.
        case queues
    }

    /// The entries for a console in this state.
    static func entries(for state: ConsoleState) -> [Entry] {
        entries.filter { entry in
            switch entry.scope {
            case .everywhere: return !state.readOnly || !entry.isAction
            case .replay: return state.isReplay
            case .queues: return !state.isReplay && state.queuesUnavailable == nil
            }
        }
    }

    public static let entries: [Entry] = [
        Entry(keys: "↑ ↓ PgUp PgDn", meaning: "move the selection; in the events pane, scroll it", isAction: false),
        Entry(keys: "Home End", meaning: "events pane: oldest lines; newest lines, following new ones", isAction: false),
        Entry(keys: "Tab ← →", meaning: "switch between the groups, the workers and the events pane", isAction: false),
        Entry(keys: "Enter", meaning: "worker detail (its numbers, recent exits and log lines)", isAction: false),
        Entry(keys: "Esc", meaning: "back", isAction: false),
        Entry(keys: "/ F3", meaning: "workers: filter by id, group, state or pid; events pane: / searches, F3 filters", isAction: false),
        Entry(keys: "n N", meaning: "events pane: the next older, newer line the search matches (matches are highlighted)", isAction: false),
        Entry(keys: "\\", meaning: "events pane: filter the lines: words, level:warning, worker:3, group:web", isAction: false),
        Entry(keys: "L", meaning: "events pane: everything, the selected group's history, the selected worker's", isAction: false),
        Entry(keys: "f", meaning: "events pane: pause or resume following new lines", isAction: false),
        Entry(keys: "w", meaning: "events pane: wrap long lines, or cut them", isAction: false),
        Entry(keys: "s < > F6", meaning: "sort the workers: id, state, restarts, jobs, memory, cpu", isAction: false),
        Entry(keys: "t", meaning: "next theme", isAction: false),
        Entry(keys: "p Z", meaning: "pause or resume updates", isAction: false),
        Entry(keys: "[ ]", meaning: "refresh faster or slower (250 ms to 10 s)", isAction: false),
        Entry(keys: "? h F1", meaning: "this help (j k scroll it when it is taller than the terminal)", isAction: false),
        Entry(keys: "← →", meaning: "replay: a second back or forward in the recording", isAction: false, scope: .replay),
        Entry(keys: "PgUp PgDn", meaning: "replay: a minute back or forward", isAction: false, scope: .replay),
        Entry(keys: "g G", meaning: "replay: go to a time typed in (-5m, 03:12:00, 2026-12-01T03:12:00); the newest frame, read again", isAction: false, scope: .replay),
        Entry(keys: "d", meaning: "deaths: recent worker deaths, newest first; Enter opens one (j k scroll, Esc back)", isAction: false),
        Entry(
            keys: "Q",
            meaning: "queues: the pool's PostgreSQL queues, live, and their dead jobs; Enter opens one, r retries it, x discards it (asks first)",
            isAction: false, scope: .queues),
        Entry(keys: "+ F2", meaning: "scale the selected group up by one (within its max)", isAction: true),
        Entry(keys: "-", meaning: "scale the selected group down by one (within its min; asks first)", isAction: true),
        Entry(keys: "r", meaning: "restart the selected worker (asks first; a busy job worker drains)", isAction: true),
        Entry(keys: "R", meaning: "rolling restart of the selected group: one worker at a time, each replacement ready first (asks first)", isAction: true),
        Entry(keys: "H", meaning: "hard restart of the pool: stop all, start all (asks first)", isAction: true),
        Entry(keys: "k F9", meaning: "kill the selected worker with SIGKILL, to rehearse recovery (asks first)", isAction: true),
        Entry(keys: "j", meaning: "test jobs for the selected job group: payload, priority, weight, count", isAction: true),
        Entry(keys: "q F10 Ctrl-C", meaning: "quit: hosted, asks and stops the pool; attached, detaches", isAction: false),
    ]
}
