import PoolEngine

/// Figures the console derives over time: rates and their recent history, rows to highlight.
public struct ConsoleTrends: Sendable {
    struct Totals {
        var at: Double
        var jobs: UInt64
        var connections: UInt64
        var cpu: Double
    }

    var last: Totals?
    public private(set) var jobsPerSecond = 0.0
    public private(set) var connectionsPerSecond = 0.0
    public private(set) var cpuPercent = 0.0
    /// Jobs and connections per second of each recent ``bucketSeconds`` interval, oldest first,
    /// the current (unfinished) interval last: the header's sparklines of the last minutes.
    public var jobHistory: [Double] { jobCounts.map { $0 / Self.bucketSeconds } }
    public var connectionHistory: [Double] { connectionCounts.map { $0 / Self.bucketSeconds } }
    /// Jobs and connections counted in each interval (counts, so the rates come out exact).
    var jobCounts: [Double] = []
    var connectionCounts: [Double] = []
    /// The interval each history point covers: 16 points span the last four minutes.
    public static let bucketSeconds = 15.0
    static let historyLength = 16
    /// The interval (its start divided by `bucketSeconds`) the last point belongs to.
    var currentBucket: Int?
    /// When each slot's current pid was first seen, to mark new rows for a few seconds.
    var firstSeen: [WorkerID: (pid: Int32, at: Double)] = [:]
    /// Each worker's CPU time at the last update, and its share of one core since.
    var lastCPU: [WorkerID: (pid: Int32, seconds: Double, at: Double)] = [:]
    public private(set) var workerCPUPercent: [WorkerID: Double] = [:]

    public init() {}

    public mutating func update(_ snapshot: PoolSnapshot) {
        let totals = Totals(
            at: snapshot.takenAt,
            jobs: snapshot.workers.reduce(0) { $0 + $1.activity.jobsProcessed },
            connections: snapshot.workers.reduce(0) { $0 + $1.activity.connectionsProcessed },
            cpu: snapshot.workers.reduce(0) { $0 + $1.cpuSeconds })
        if let last, totals.at > last.at {
            let seconds = totals.at - last.at
            jobsPerSecond = Double(totals.jobs &- min(totals.jobs, last.jobs)) / seconds
            connectionsPerSecond = Double(totals.connections &- min(totals.connections, last.connections)) / seconds
            cpuPercent = max(0, totals.cpu - last.cpu) / seconds * 100
            record(jobs: Double(totals.jobs &- min(totals.jobs, last.jobs)), connections: Double(totals.connections &- min(totals.connections, last.connections)), at: totals.at)
        }
        last = totals
        for worker in snapshot.workers {
            if worker.pid > 0, let previous = lastCPU[worker.id], previous.pid == worker.pid, snapshot.takenAt > previous.at {
                workerCPUPercent[worker.id] = max(0, worker.cpuSeconds - previous.seconds) / (snapshot.takenAt - previous.at) * 100
            } else {
                workerCPUPercent[worker.id] = nil
            }
            lastCPU[worker.id] = (worker.pid, worker.cpuSeconds, snapshot.takenAt)
        }
        for worker in snapshot.workers where worker.pid > 0 && firstSeen[worker.id]?.pid != worker.pid {
            firstSeen[worker.id] = (worker.pid, snapshot.takenAt)
        }
    }

    /// Adds what happened since the last update to the interval it ended in; an interval with
    /// no update (a paused console) counts as idle.
    private mutating func record(jobs: Double, connections: Double, at: Double) {
        let bucket = Int((at / Self.bucketSeconds).rounded(.down))
        if let current = currentBucket, bucket == current, !jobCounts.isEmpty {
            jobCounts[jobCounts.count - 1] += jobs
            connectionCounts[connectionCounts.count - 1] += connections
        } else {
            let gap = min(max(bucket - (currentBucket ?? bucket) - 1, 0), Self.historyLength)
            jobCounts += Array(repeating: 0, count: gap) + [jobs]
            connectionCounts += Array(repeating: 0, count: gap) + [connections]
            currentBucket = bucket
        }
        if jobCounts.count > Self.historyLength { jobCounts.removeFirst(jobCounts.count - Self.historyLength) }
        if connectionCounts.count > Self.historyLength { connectionCounts.removeFirst(connectionCounts.count - Self.historyLength) }
    }

    /// Whether the row should be marked new (its process appeared within the last 3 s).
    func isNew(_ worker: WorkerSnapshot, now: Double) -> Bool {
        guard worker.pid > 0, let seen = firstSeen[worker.id], seen.pid == worker.pid, last != nil else { return false }
        return now - seen.at < 3 && worker.generation > 1
    }
}
