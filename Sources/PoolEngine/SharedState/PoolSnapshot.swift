/// The pool's live state at one moment, as shared memory holds it: what the console, the
/// CLI's `status` and the metrics read. A value: reading it never disturbs the pool.
///
/// Its JSON form is the `status --json` document (`docs/control-protocol.md`).
public struct PoolSnapshot: Hashable, Sendable, Codable {
    public var pool: PoolInfo
    public var groups: [GroupSnapshot]
    public var workers: [WorkerSnapshot]
    /// When the snapshot was read, in seconds since the epoch.
    public var takenAt: Double

    /// The pool-wide part.
    public struct PoolInfo: Hashable, Sendable, Codable {
        public var name: String
        /// The watcher's pid.
        public var pid: Int32
        /// When the pool started, in seconds since the epoch.
        public var startedAt: Double
        public var uptimeSeconds: Double
        public var restarts: RestartCounts
        public var state: PoolRunState
    }

    public struct RestartCounts: Hashable, Sendable, Codable {
        public var hard: Int
        public var soft: Int
    }

    public func group(named name: String) -> GroupSnapshot? { groups.first { $0.name == name } }
    public func worker(_ id: WorkerID) -> WorkerSnapshot? { workers.first { $0.id == id } }
}

/// One group's counts.
public struct GroupSnapshot: Hashable, Sendable, Codable {
    public var id: Int
    public var name: String
    public var kind: WorkerKind
    public var min: Int
    public var max: Int
    /// Workers the pool wants running (scaled within min...max).
    public var desired: Int
    /// Workers with a process: starting, ready or stopping.
    public var running: Int
    public var ready: Int
    /// Scale operations that changed `desired` (by hand, by request, or shrinking when idle).
    public var scalingEvents: Int = 0
    /// Jobs sent to this group that found no ready worker with room (whether they then waited
    /// for a scale-up or failed with `noWorkerAvailable`).
    public var pickupMisses: Int = 0
    /// What the group waits for before it starts (`after:`), for example `cache (ready)`;
    /// ends with `: it will not start` when that can no longer happen. Nil once it started.
    public var waitingFor: String? = nil
    /// The hash of the group's definition (12 hexadecimal digits; see
    /// ``GroupDescription/definitionHash``): `pooltop apply` prints the one each group will have.
    public var definition: String? = nil
}

/// What a worker does, written by the worker itself.
public struct WorkerActivity: Hashable, Sendable, Codable {
    public var jobsAccepted: UInt64 = 0
    public var jobsProcessed: UInt64 = 0
    public var jobsErrors: UInt64 = 0
    public var jobsRejected: UInt64 = 0
    public var jobsInFlight: UInt64 = 0
    public var inFlightWeight: UInt64 = 0
    public var connectionsAccepted: UInt64 = 0
    public var connectionsProcessed: UInt64 = 0
    public var connectionsErrors: UInt64 = 0
    public var connectionsActive: UInt64 = 0
    /// The job being run, 0 for none.
    public var currentJobID: UInt64 = 0
    /// Since when, in nanoseconds since the epoch.
    public var currentJobSince: UInt64 = 0
    /// The worker's last write, in nanoseconds since the epoch.
    public var lastUpdate: UInt64 = 0
    /// `jobsProcessed` when the current process started: what it processed itself is the difference.
    public var jobsProcessedBeforeStart: UInt64 = 0

    public init() {}
}

/// One worker slot.
public struct WorkerSnapshot: Hashable, Sendable, Codable {
    public var id: WorkerID
    /// The group's name.
    public var group: String
    public var groupID: Int
    /// 0 when no process runs.
    public var pid: Int32
    public var state: WorkerState
    public var generation: Int
    public var restarts: Int
    /// Seconds since the epoch; nil when never.
    public var firstStartedAt: Double?
    public var startedAt: Double?
    public var readyAt: Double?
    public var finishedAt: Double?
    public var backoffUntil: Double?
    public var lastExit: ExitSnapshot?
    public var activity: WorkerActivity
    public var rssBytes: UInt64
    public var cpuSeconds: Double
    /// How often the slot's process ended, by reason, since the pool started (reasons never seen are absent).
    public var exits: [ExitReason: Int] = [:]
    /// How long the jobs this slot ran waited in its queue, and how long they ran.
    public var queueWait = LatencyHistogram()
    public var runTime = LatencyHistogram()

    /// The last exit of the slot's process.
    public struct ExitSnapshot: Hashable, Sendable, Codable {
        /// `exited` or `signaled`.
        public var status: String
        public var code: Int32?
        public var signal: Int32?
        public var reason: ExitReason
        /// Seconds since the epoch.
        public var at: Double
    }

    enum CodingKeys: String, CodingKey {
        case id, group, groupID, pid, state, stoppedForGood, generation, restarts, firstStartedAt, startedAt, readyAt
        case finishedAt, backoffUntil, lastExit, jobs, connections, currentJob, rssBytes, cpuSeconds, lastUpdate
        case exits, queueWait, runTime
    }

    private struct Jobs: Codable {
        var accepted, processed, errors, rejected, inFlight, inFlightWeight: UInt64
    }

    private struct Connections: Codable {
        var accepted, processed, errors, active: UInt64
    }

    private struct CurrentJob: Codable {
        var id: UInt64
        var since: Double
    }

    public init(
        id: WorkerID, group: String, groupID: Int, pid: Int32, state: WorkerState, generation: Int, restarts: Int,
        firstStartedAt: Double?, startedAt: Double?, readyAt: Double?, finishedAt: Double?, backoffUntil: Double?,
        lastExit: ExitSnapshot?, activity: WorkerActivity, rssBytes: UInt64, cpuSeconds: Double
    ) {
        self.id = id
        self.group = group
        self.groupID = groupID
        self.pid = pid
        self.state = state
        self.generation = generation
        self.restarts = restarts
        self.firstStartedAt = firstStartedAt
        self.startedAt = startedAt
        self.readyAt = readyAt
        self.finishedAt = finishedAt
        self.backoffUntil = backoffUntil
        self.lastExit = lastExit
        self.activity = activity
        self.rssBytes = rssBytes
        self.cpuSeconds = cpuSeconds
    }

    // The status document reports a slot stopped for good as "stopped" with `stoppedForGood`,
    // keeping `state` to the six values scripts match on.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(group, forKey: .group)
        try container.encode(groupID, forKey: .groupID)
        try container.encode(pid, forKey: .pid)
        try container.encode(state == .finished ? WorkerState.stopped : state, forKey: .state)
        try container.encode(state == .finished, forKey: .stoppedForGood)
        try container.encode(generation, forKey: .generation)
        try container.encode(restarts, forKey: .restarts)
        try container.encode(firstStartedAt, forKey: .firstStartedAt)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(readyAt, forKey: .readyAt)
        try container.encode(finishedAt, forKey: .finishedAt)
        try container.encode(backoffUntil, forKey: .backoffUntil)
        try container.encode(lastExit, forKey: .lastExit)
        let a = activity
        try container.encode(
            Jobs(
                accepted: a.jobsAccepted, processed: a.jobsProcessed, errors: a.jobsErrors, rejected: a.jobsRejected,
                inFlight: a.jobsInFlight, inFlightWeight: a.inFlightWeight), forKey: .jobs)
        try container.encode(
            Connections(
                accepted: a.connectionsAccepted, processed: a.connectionsProcessed, errors: a.connectionsErrors,
                active: a.connectionsActive), forKey: .connections)
        try container.encode(
            a.currentJobID == 0 ? nil : CurrentJob(id: a.currentJobID, since: Double(a.currentJobSince) / 1e9),
            forKey: .currentJob)
        try container.encode(rssBytes, forKey: .rssBytes)
        try container.encode(cpuSeconds, forKey: .cpuSeconds)
        try container.encode(a.lastUpdate == 0 ? nil : Double(a.lastUpdate) / 1e9, forKey: .lastUpdate)
        try container.encode(exits, forKey: .exits)
        try container.encode(queueWait, forKey: .queueWait)
        try container.encode(runTime, forKey: .runTime)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(WorkerID.self, forKey: .id)
        group = try container.decode(String.self, forKey: .group)
        groupID = try container.decode(Int.self, forKey: .groupID)
        pid = try container.decode(Int32.self, forKey: .pid)
        let decodedState = try container.decode(WorkerState.self, forKey: .state)
        let forGood = try container.decodeIfPresent(Bool.self, forKey: .stoppedForGood) ?? false
        state = forGood ? .finished : decodedState
        generation = try container.decode(Int.self, forKey: .generation)
        restarts = try container.decode(Int.self, forKey: .restarts)
        firstStartedAt = try container.decodeIfPresent(Double.self, forKey: .firstStartedAt)
        startedAt = try container.decodeIfPresent(Double.self, forKey: .startedAt)
        readyAt = try container.decodeIfPresent(Double.self, forKey: .readyAt)
        finishedAt = try container.decodeIfPresent(Double.self, forKey: .finishedAt)
        backoffUntil = try container.decodeIfPresent(Double.self, forKey: .backoffUntil)
        lastExit = try container.decodeIfPresent(ExitSnapshot.self, forKey: .lastExit)
        let jobs = try container.decode(Jobs.self, forKey: .jobs)
        let connections = try container.decode(Connections.self, forKey: .connections)
        var activity = WorkerActivity()
        activity.jobsAccepted = jobs.accepted
        activity.jobsProcessed = jobs.processed
        activity.jobsErrors = jobs.errors
        activity.jobsRejected = jobs.rejected
        activity.jobsInFlight = jobs.inFlight
        activity.inFlightWeight = jobs.inFlightWeight
        activity.connectionsAccepted = connections.accepted
        activity.connectionsProcessed = connections.processed
        activity.connectionsErrors = connections.errors
        activity.connectionsActive = connections.active
        if let current = try container.decodeIfPresent(CurrentJob.self, forKey: .currentJob) {
            activity.currentJobID = current.id
            activity.currentJobSince = UInt64(clamping: Duration.saturating(seconds: current.since).nanoseconds)
        }
        activity.lastUpdate = UInt64(
            clamping: Duration.saturating(seconds: try container.decodeIfPresent(Double.self, forKey: .lastUpdate) ?? 0).nanoseconds)
        self.activity = activity
        rssBytes = try container.decode(UInt64.self, forKey: .rssBytes)
        cpuSeconds = try container.decode(Double.self, forKey: .cpuSeconds)
        exits = try container.decodeIfPresent([ExitReason: Int].self, forKey: .exits) ?? [:]
        queueWait = try container.decodeIfPresent(LatencyHistogram.self, forKey: .queueWait) ?? LatencyHistogram()
        runTime = try container.decodeIfPresent(LatencyHistogram.self, forKey: .runTime) ?? LatencyHistogram()
    }
}
