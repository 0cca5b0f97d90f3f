/// A pool's recent events and worker log lines, kept per worker so that a busy worker's lines
/// cannot push a quiet one's out: each worker's last ``perWorker`` (its log lines with their
/// levels and times, its spawn, ready and exit markers), surviving its restarts, and the last
/// ``allLimit`` of the whole stream in arrival order (pool-wide events included).
///
/// The watcher keeps one, replayed to every `events` client (`pooltop logs`, an attached
/// console); a console keeps one of what it has seen.
public struct EventLog: Sendable {
    /// Lines kept per worker when the pool does not say (`logHistory`).
    public static let defaultPerWorker = 1000
    public let perWorker: Int
    /// The whole stream's last records: at least ten workers' worth.
    public var allLimit: Int { max(10 * perWorker, 1000) }

    private var all = Ring(limit: 0)
    private var workers: [WorkerID: Ring] = [:]
    private var nextSequence: UInt64 = 0

    /// A bounded queue of records with their place in the whole stream.
    private struct Ring: Sendable {
        var limit: Int
        var items: [(sequence: UInt64, record: PoolEventRecord)] = []
        var start = 0

        init(limit: Int) { self.limit = limit }

        mutating func append(_ item: (sequence: UInt64, record: PoolEventRecord)) {
            if items.count < limit {
                items.append(item)
            } else {
                items[start] = item
                start = (start + 1) % limit
            }
        }

        var ordered: [(sequence: UInt64, record: PoolEventRecord)] { Array(items[start...] + items[..<start]) }
    }

    public init(perWorker: Int = EventLog.defaultPerWorker) {
        self.perWorker = max(perWorker, 1)
        all = Ring(limit: allLimit)
    }

    public mutating func append(_ record: PoolEventRecord) {
        let item = (nextSequence, record)
        nextSequence += 1
        all.append(item)
        if let worker = record.worker, worker.rawValue > 0 {
            workers[worker, default: Ring(limit: perWorker)].append(item)
        }
    }

    /// The whole stream's last ``allLimit`` records, oldest first.
    public var recent: [PoolEventRecord] { all.ordered.map(\.record) }

    /// Every record kept, oldest first: each worker's history merged with the whole stream's
    /// recent records (a worker's older lines come before them), each once.
    public var everything: [PoolEventRecord] {
        let recent = all.ordered
        // The whole stream's ring holds every record since its oldest: only the workers' lines
        // older than that are added (each ring is in order, so a prefix of it).
        let since = recent.first?.sequence ?? nextSequence
        var older: [(sequence: UInt64, record: PoolEventRecord)] = []
        for ring in workers.values {
            older += ring.ordered.prefix { $0.sequence < since }
        }
        older.sort { $0.sequence < $1.sequence }
        return (older + recent).map(\.record)
    }

    /// One worker's history, oldest first (empty for a worker never heard of).
    public func history(of worker: WorkerID) -> [PoolEventRecord] { workers[worker]?.ordered.map(\.record) ?? [] }

    /// The histories of these workers merged, oldest first.
    public func history(of workers: some Sequence<WorkerID>) -> [PoolEventRecord] {
        workers.flatMap { self.workers[$0]?.items ?? [] }.sorted { $0.sequence < $1.sequence }.map(\.record)
    }
}
