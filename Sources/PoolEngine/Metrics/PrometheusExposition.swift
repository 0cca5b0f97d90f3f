/// The pool's metrics in the Prometheus text exposition format (version 0.0.4), rendered from
/// one ``PoolSnapshot``: the same numbers `status --json` and the console show for that moment.
///
/// Every family has HELP and TYPE, counters end in `_total`, the text ends with a newline
/// (amphp-pool wrote no HELP, mislabelled two TYPE lines and left the last line open).
/// `docs/metrics.md` lists the families; a test keeps it and ``families`` in step.
public enum PrometheusExposition {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// One metric family: what `docs/metrics.md` documents.
    public struct Family: Hashable, Sendable {
        public enum Kind: String, Sendable { case counter, gauge, histogram }
        public var name: String
        public var kind: Kind
        public var labels: [String]
        public var help: String

        package init(name: String, kind: Kind, labels: [String], help: String) {
            self.name = name
            self.kind = kind
            self.labels = labels
            self.help = help
        }
    }

    static let poolInfo = Family(name: "pooltop_pool_info", kind: .gauge, labels: ["pool", "pid"], help: "Always 1; labels name the pool and its watcher's pid.")
    static let up = Family(name: "pooltop_up", kind: .gauge, labels: [], help: "1 while the pool runs; 0 while it starts or stops.")
    static let startTime = Family(name: "pooltop_start_time_seconds", kind: .gauge, labels: [], help: "When the pool started, in seconds since the epoch.")
    static let uptime = Family(name: "pooltop_uptime_seconds", kind: .gauge, labels: [], help: "Seconds since the pool started.")
    static let restarts = Family(name: "pooltop_restarts_total", kind: .counter, labels: ["type"], help: "Restarts of the whole pool, by type (hard or soft).")
    static let workers = Family(name: "pooltop_workers", kind: .gauge, labels: ["group", "kind", "state"], help: "Worker slots of the group in each state.")
    static let desired = Family(name: "pooltop_group_desired_workers", kind: .gauge, labels: ["group", "kind"], help: "Workers the group should run now (scaled within min and max).")
    static let minimum = Family(name: "pooltop_group_min_workers", kind: .gauge, labels: ["group", "kind"], help: "The group's minimum number of workers.")
    static let maximum = Family(name: "pooltop_group_max_workers", kind: .gauge, labels: ["group", "kind"], help: "The group's maximum number of workers (its slots).")
    static let scalingEvents = Family(name: "pooltop_group_scaling_events_total", kind: .counter, labels: ["group", "kind"], help: "Scale operations that changed the group's desired workers (by hand, by request, idle shrink).")
    static let pickupMisses = Family(name: "pooltop_group_pickup_misses_total", kind: .counter, labels: ["group", "kind"], help: "Jobs sent to the group that found no ready worker with room.")
    static let queueWait = Family(name: "pooltop_job_queue_wait_seconds", kind: .histogram, labels: ["group"], help: "How long jobs waited in a worker's queue before they ran (or expired).")
    static let runTime = Family(name: "pooltop_job_run_seconds", kind: .histogram, labels: ["group"], help: "How long jobs ran in their handler.")
    static let workerUp = Family(name: "pooltop_worker_up", kind: .gauge, labels: ["group", "worker"], help: "1 when the slot's worker is ready, else 0.")
    static let workerRestarts = Family(name: "pooltop_worker_restarts_total", kind: .counter, labels: ["group", "worker"], help: "Times the slot's worker was started again, for any reason.")
    static let workerExits = Family(name: "pooltop_worker_exits_total", kind: .counter, labels: ["group", "worker", "reason"], help: "Ends of the slot's processes, by exit reason (reasons never seen are absent).")
    static let jobsAccepted = Family(name: "pooltop_worker_jobs_accepted_total", kind: .counter, labels: ["group", "worker"], help: "Jobs the worker accepted into its queue.")
    static let jobsProcessed = Family(name: "pooltop_worker_jobs_processed_total", kind: .counter, labels: ["group", "worker"], help: "Jobs the worker finished, with a result or an error.")
    static let jobErrors = Family(name: "pooltop_worker_job_errors_total", kind: .counter, labels: ["group", "worker"], help: "Jobs the worker finished with an error (handler failed, cancelled, expired).")
    static let jobsRejected = Family(name: "pooltop_worker_jobs_rejected_total", kind: .counter, labels: ["group", "worker"], help: "Jobs the worker refused because its queue was full.")
    static let jobsInFlight = Family(name: "pooltop_worker_jobs_in_flight", kind: .gauge, labels: ["group", "worker"], help: "Jobs queued or running in the worker now.")
    static let inFlightWeight = Family(name: "pooltop_worker_jobs_in_flight_weight", kind: .gauge, labels: ["group", "worker"], help: "The summed weight of the jobs in flight.")
    static let connectionsAccepted = Family(name: "pooltop_worker_connections_accepted_total", kind: .counter, labels: ["group", "worker"], help: "Connections the worker accepted.")
    static let connectionsProcessed = Family(name: "pooltop_worker_connections_processed_total", kind: .counter, labels: ["group", "worker"], help: "Connections the worker closed cleanly.")
    static let connectionErrors = Family(name: "pooltop_worker_connection_errors_total", kind: .counter, labels: ["group", "worker"], help: "Connections that ended with an error.")
    static let connectionsActive = Family(name: "pooltop_worker_connections_active", kind: .gauge, labels: ["group", "worker"], help: "Connections open now.")
    static let rss = Family(name: "pooltop_worker_resident_memory_bytes", kind: .gauge, labels: ["group", "worker"], help: "Resident memory of the worker's process (0 without a process).")
    static let cpu = Family(name: "pooltop_worker_cpu_seconds_total", kind: .counter, labels: ["group", "worker"], help: "CPU time (user and system) of the worker's current process.")

    /// Every family, in the order they are written.
    public static let families: [Family] = [
        poolInfo, up, startTime, uptime, restarts,
        workers, desired, minimum, maximum, scalingEvents, pickupMisses, queueWait, runTime,
        workerUp, workerRestarts, workerExits, jobsAccepted, jobsProcessed, jobErrors, jobsRejected, jobsInFlight,
        inFlightWeight, connectionsAccepted, connectionsProcessed, connectionErrors, connectionsActive, rss, cpu,
    ]

    /// The exposition of `snapshot`, as UTF-8 bytes.
    public static func render(_ snapshot: PoolSnapshot) -> [UInt8] {
        var out = ExpositionWriter()
        out.reserve(4096 + snapshot.workers.count * 1200)
        let pool = snapshot.pool

        out.header(poolInfo)
        out.sample(poolInfo.name, labels: out.labels([("pool", pool.name), ("pid", String(pool.pid))]), UInt64(1))
        out.header(up)
        out.sample(up.name, labels: [], UInt64(pool.state == .running ? 1 : 0))
        out.header(startTime)
        out.sample(startTime.name, labels: [], pool.startedAt)
        out.header(uptime)
        out.sample(uptime.name, labels: [], pool.uptimeSeconds)
        out.header(restarts)
        out.sample(restarts.name, labels: out.labels([("type", "hard")]), UInt64(pool.restarts.hard))
        out.sample(restarts.name, labels: out.labels([("type", "soft")]), UInt64(pool.restarts.soft))

        let groups = snapshot.groups
        let groupLabels = groups.map { out.labels([("group", $0.name), ("kind", $0.kind.rawValue)]) }
        // Workers by group and state, counted in one pass: group ids are small integers.
        let groupIndex = Dictionary(groups.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        let states = WorkerState.allCases
        var byState = Array(repeating: [UInt64](repeating: 0, count: states.count), count: groups.count)
        var waits = Array(repeating: LatencyHistogram(), count: groups.count)
        var runs = Array(repeating: LatencyHistogram(), count: groups.count)
        for worker in snapshot.workers {
            guard let index = groupIndex[worker.groupID] else { continue }
            byState[index][states.firstIndex(of: worker.state) ?? 0] += 1
            if worker.queueWait.count > 0 { waits[index].add(worker.queueWait) }
            if worker.runTime.count > 0 { runs[index].add(worker.runTime) }
        }
        out.header(workers)
        for (index, group) in groups.enumerated() {
            for (stateIndex, state) in states.enumerated() {
                let labels = out.labels([("group", group.name), ("kind", group.kind.rawValue), ("state", state.rawValue)])
                out.sample(workers.name, labels: labels, byState[index][stateIndex])
            }
        }
        for (family, value) in [
            (desired, { (g: GroupSnapshot) in g.desired }), (minimum, { $0.min }), (maximum, { $0.max }),
            (scalingEvents, { $0.scalingEvents }), (pickupMisses, { $0.pickupMisses }),
        ] {
            out.header(family)
            for (index, group) in groups.enumerated() { out.sample(family.name, labels: groupLabels[index], UInt64(max(value(group), 0))) }
        }
        for (family, histograms) in [(queueWait, waits), (runTime, runs)] {
            out.header(family)
            // Only job groups run jobs.
            for (index, group) in groups.enumerated() where group.kind == .job {
                out.histogram(family.name, group: group.name, histograms[index])
            }
        }

        let workerLabels = snapshot.workers.map { out.labels([("group", $0.group), ("worker", String($0.id.rawValue))]) }
        func perWorker(_ family: Family, _ value: (WorkerSnapshot) -> UInt64) {
            out.header(family)
            for (index, worker) in snapshot.workers.enumerated() { out.sample(family.name, labels: workerLabels[index], value(worker)) }
        }
        perWorker(workerUp) { $0.state == .ready ? 1 : 0 }
        perWorker(workerRestarts) { UInt64(max($0.restarts, 0)) }
        out.header(workerExits)
        for worker in snapshot.workers where !worker.exits.isEmpty {
            for reason in ExitReason.allCases {
                guard let count = worker.exits[reason] else { continue }
                let labels = out.labels([("group", worker.group), ("worker", String(worker.id.rawValue)), ("reason", reason.rawValue)])
                out.sample(workerExits.name, labels: labels, UInt64(max(count, 0)))
            }
        }
        perWorker(jobsAccepted) { $0.activity.jobsAccepted }
        perWorker(jobsProcessed) { $0.activity.jobsProcessed }
        perWorker(jobErrors) { $0.activity.jobsErrors }
        perWorker(jobsRejected) { $0.activity.jobsRejected }
        perWorker(jobsInFlight) { $0.activity.jobsInFlight }
        perWorker(inFlightWeight) { $0.activity.inFlightWeight }
        perWorker(connectionsAccepted) { $0.activity.connectionsAccepted }
        perWorker(connectionsProcessed) { $0.activity.connectionsProcessed }
        perWorker(connectionErrors) { $0.activity.connectionsErrors }
        perWorker(connectionsActive) { $0.activity.connectionsActive }
        perWorker(rss) { $0.rssBytes }
        out.header(cpu)
        for (index, worker) in snapshot.workers.enumerated() { out.sample(cpu.name, labels: workerLabels[index], worker.cpuSeconds) }
        return out.bytes
    }

    /// The exposition as text.
    public static func text(_ snapshot: PoolSnapshot) -> String { String(decoding: render(snapshot), as: UTF8.self) }
}
