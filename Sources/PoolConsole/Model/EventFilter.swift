import PoolEngine

/// The events pane's filter (`\` with the pane focused), as typed: words to find in a line
/// (any case), and terms that pick lines by what they are:
/// - `level:warning` keeps warnings and worse (`debug`, `info`, `notice`, `warning`, `error`);
///   an event counts at the level its colour says (an exit by crash is an error);
/// - `worker:3` keeps worker 3's lines, `group:web` the group's.
/// `level:error group:web timeout` keeps the web group's errors that mention a timeout.
public struct EventFilter: Hashable, Sendable {
    public var words: [String] = []
    public var minimumLevel: Int?
    public var worker: Int?
    public var group: String?

    static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public init(_ text: String) {
        for term in text.split(separator: " ") {
            let parts = term.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2, parts[0] == "level", let rank = Self.levels.firstIndex(of: parts[1].lowercased()) {
                minimumLevel = rank
            } else if parts.count == 2, parts[0] == "worker", let id = Int(parts[1]) {
                worker = id
            } else if parts.count == 2, parts[0] == "group", !parts[1].isEmpty {
                group = parts[1]
            } else {
                words.append(term.lowercased())
            }
        }
    }

    public func matches(_ record: PoolEventRecord) -> Bool {
        if let worker, record.worker?.rawValue != worker { return false }
        if let group, record.group != group { return false }
        let (text, role) = ConsoleView.describe(record)
        if let minimumLevel, Self.rank(record, role) < minimumLevel { return false }
        guard !words.isEmpty else { return true }
        let lowered = text.lowercased()
        return words.allSatisfy { lowered.contains($0) }
    }

    /// A log line's own level; an event's from how the pane colours it.
    private static func rank(_ record: PoolEventRecord, _ role: StyleRole) -> Int {
        if case .workerLog(_, _, let log) = record.event, let rank = levels.firstIndex(of: log.level) { return rank }
        switch role {
        case .eventError: return 5
        case .eventWarning: return 4
        default: return 2
        }
    }
}
