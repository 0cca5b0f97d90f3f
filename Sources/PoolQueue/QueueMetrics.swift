#if PostgresQueue
/// The queue group's own metric families, kept by its loop and published for the pool's
/// exposition (``PoolEngine/PublishedMetrics``) with every heartbeat and on every change of
/// the database connection. docs/queue.md ("Metrics") lists them.
struct QueueMetrics {
    /// The families, for the documentation test: name, type and help.
    static let families: [(name: String, type: String, help: String)] = [
        ("pooltop_queue_connected", "gauge", "1 while the queue group is connected to its database, else 0."),
        ("pooltop_queue_depth", "gauge", "Jobs in each queue by state (available, scheduled, retrying, running, dead), as of the last heartbeat."),
        ("pooltop_queue_oldest_wait_seconds", "gauge", "How long the oldest available job of each queue has waited, as of the last heartbeat."),
        ("pooltop_queue_claimed_total", "counter", "Jobs this pool claimed."),
        ("pooltop_queue_jobs_total", "counter", "Claimed jobs by outcome: done, failed (to be retried), dead, released (never ran, back to the queue)."),
        ("pooltop_queue_lease_expiries_total", "counter", "Jobs this pool put back because the pool that claimed them stopped renewing their lease."),
        ("pooltop_queue_reconnects_total", "counter", "Times the queue group connected again after losing its database."),
        ("pooltop_queue_claim_latency_seconds", "histogram", "From when a job could run (enqueued, or its run_at) to its claim."),
    ]

    static let latencyBounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

    var claimed: UInt64 = 0
    var done: UInt64 = 0
    var failed: UInt64 = 0
    var dead: UInt64 = 0
    var released: UInt64 = 0
    var recovered: UInt64 = 0
    var reconnects: UInt64 = 0
    var latencyCounts = [UInt64](repeating: 0, count: latencyBounds.count + 1)
    var latencySum = 0.0
    /// The queues' figures at the last heartbeat; empty until then, and while disconnected.
    var figures: [QueueFigures] = []

    mutating func observeClaim(waited: Double) {
        claimed += 1
        latencySum += max(0, waited)
        let index = Self.latencyBounds.firstIndex { waited <= $0 } ?? Self.latencyBounds.count
        latencyCounts[index] += 1
    }

    mutating func count(_ outcome: JobOutcome) {
        switch outcome {
        case .done: done += 1
        case .failed: failed += 1
        case .released: released += 1
        }
    }

    /// The exposition text, every series labelled with the group.
    func render(group: String, connected: Bool) -> String {
        let label = "group=\"\(Self.escape(group))\""
        var lines: [String] = []
        func family(_ index: Int) {
            let family = Self.families[index]
            lines.append("# HELP \(family.name) \(family.help)")
            lines.append("# TYPE \(family.name) \(family.type)")
        }
        family(0)
        lines.append("pooltop_queue_connected{\(label)} \(connected ? 1 : 0)")
        family(1)
        for figure in figures {
            let queue = "\(label),queue=\"\(Self.escape(figure.queue))\""
            for (state, value) in [
                ("available", figure.available), ("scheduled", figure.scheduled), ("retrying", figure.retrying),
                ("running", figure.running), ("dead", figure.dead),
            ] {
                lines.append("pooltop_queue_depth{\(queue),state=\"\(state)\"} \(value)")
            }
        }
        family(2)
        for figure in figures {
            lines.append("pooltop_queue_oldest_wait_seconds{\(label),queue=\"\(Self.escape(figure.queue))\"} \(figure.oldestAge ?? 0)")
        }
        family(3)
        lines.append("pooltop_queue_claimed_total{\(label)} \(claimed)")
        family(4)
        for (outcome, value) in [("done", done), ("failed", failed), ("dead", dead), ("released", released)] {
            lines.append("pooltop_queue_jobs_total{\(label),outcome=\"\(outcome)\"} \(value)")
        }
        family(5)
        lines.append("pooltop_queue_lease_expiries_total{\(label)} \(recovered)")
        family(6)
        lines.append("pooltop_queue_reconnects_total{\(label)} \(reconnects)")
        family(7)
        var cumulative: UInt64 = 0
        for (index, bound) in Self.latencyBounds.enumerated() {
            cumulative += latencyCounts[index]
            lines.append("pooltop_queue_claim_latency_seconds_bucket{\(label),le=\"\(bound)\"} \(cumulative)")
        }
        cumulative += latencyCounts[Self.latencyBounds.count]
        lines.append("pooltop_queue_claim_latency_seconds_bucket{\(label),le=\"+Inf\"} \(cumulative)")
        lines.append("pooltop_queue_claim_latency_seconds_sum{\(label)} \(latencySum)")
        lines.append("pooltop_queue_claim_latency_seconds_count{\(label)} \(cumulative)")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Label values escape backslash, quote and newline (the text format's rule).
    static func escape(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }
}
#endif
