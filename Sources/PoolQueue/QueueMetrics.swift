#if PostgresQueue
import PoolEngine

/// The queue group's own metric families, kept by its loop and published for the pool's
/// exposition (``PoolEngine/PublishedMetrics``) with every heartbeat and on every change of
/// the database connection. docs/queue.md ("Metrics") lists them; written with the engine's
/// exposition writer, so escaping and number formats are the pool's own.
struct QueueMetrics {
    typealias Family = PrometheusExposition.Family

    static let connected = Family(
        name: "pooltop_queue_connected", kind: .gauge, labels: ["group"],
        help: "1 while the queue group is connected to its database, else 0.")
    static let depth = Family(
        name: "pooltop_queue_depth", kind: .gauge, labels: ["group", "queue", "state"],
        help: "Jobs in each queue by state (available, scheduled, retrying, running, dead), as of the last heartbeat.")
    static let oldestWait = Family(
        name: "pooltop_queue_oldest_wait_seconds", kind: .gauge, labels: ["group", "queue"],
        help: "How long the oldest available job of each queue has waited, as of the last heartbeat.")
    static let claimed = Family(
        name: "pooltop_queue_claimed_total", kind: .counter, labels: ["group"], help: "Jobs this pool claimed.")
    static let jobs = Family(
        name: "pooltop_queue_jobs_total", kind: .counter, labels: ["group", "outcome"],
        help: "Claimed jobs by outcome: done, failed (to be retried), dead, released (never ran, back to the queue).")
    static let leaseExpiries = Family(
        name: "pooltop_queue_lease_expiries_total", kind: .counter, labels: ["group"],
        help: "Jobs this pool put back because the pool that claimed them stopped renewing their lease.")
    static let reconnects = Family(
        name: "pooltop_queue_reconnects_total", kind: .counter, labels: ["group"],
        help: "Times the queue group connected again after losing its database.")
    static let claimLatency = Family(
        name: "pooltop_queue_claim_latency_seconds", kind: .histogram, labels: ["group"],
        help: "From when a job could run (enqueued, or its run_at) to its claim.")

    /// Every family, in the order they are written (and documented).
    static let families = [connected, depth, oldestWait, claimed, jobs, leaseExpiries, reconnects, claimLatency]

    var claimedCount: UInt64 = 0
    var done: UInt64 = 0
    var failed: UInt64 = 0
    var dead: UInt64 = 0
    var released: UInt64 = 0
    var recovered: UInt64 = 0
    var reconnectCount: UInt64 = 0
    var latency = LatencyHistogram()
    /// The queues' figures at the last heartbeat; empty until then, and while disconnected.
    var figures: [QueueFigures] = []

    mutating func observeClaim(waited: Double) {
        claimedCount += 1
        latency.record(seconds: waited)
    }

    mutating func count(_ outcome: JobOutcome) {
        switch outcome {
        case .done: done += 1
        case .failed: failed += 1
        case .released: released += 1
        }
    }

    /// The exposition text, every series labelled with the group.
    func render(group: String, connected isConnected: Bool) -> String {
        var out = ExpositionWriter()
        let groupLabel = out.labels([("group", group)])
        out.header(Self.connected)
        out.sample(Self.connected.name, labels: groupLabel, UInt64(isConnected ? 1 : 0))
        out.header(Self.depth)
        for figure in figures {
            for (state, value) in [
                ("available", figure.available), ("scheduled", figure.scheduled), ("retrying", figure.retrying),
                ("running", figure.running), ("dead", figure.dead),
            ] {
                let labels = out.labels([("group", group), ("queue", figure.queue), ("state", state)])
                out.sample(Self.depth.name, labels: labels, UInt64(max(0, value)))
            }
        }
        out.header(Self.oldestWait)
        for figure in figures {
            out.sample(Self.oldestWait.name, labels: out.labels([("group", group), ("queue", figure.queue)]), figure.oldestAge ?? 0)
        }
        out.header(Self.claimed)
        out.sample(Self.claimed.name, labels: groupLabel, claimedCount)
        out.header(Self.jobs)
        for (outcome, value) in [("done", done), ("failed", failed), ("dead", dead), ("released", released)] {
            out.sample(Self.jobs.name, labels: out.labels([("group", group), ("outcome", outcome)]), value)
        }
        out.header(Self.leaseExpiries)
        out.sample(Self.leaseExpiries.name, labels: groupLabel, recovered)
        out.header(Self.reconnects)
        out.sample(Self.reconnects.name, labels: groupLabel, reconnectCount)
        out.header(Self.claimLatency)
        out.histogram(Self.claimLatency.name, group: group, latency)
        return String(decoding: out.bytes, as: UTF8.self)
    }
}
#endif
