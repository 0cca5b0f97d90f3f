import FoundationEssentials
import PoolDemo
import Testing

@testable import PoolEngine

/// The exposition rendered from real shared memory, its documentation, the dashboard's
/// queries, and the metrics group's configuration rules.
@Suite("Prometheus exposition, docs/metrics.md and the Grafana dashboard", .serialized)
struct MetricsTests {
    /// A snapshot read from a real segment written by the publisher and a worker's recorder:
    /// worker 1 ready with jobs and latency, worker 2 killed by a signal once, one scale-up.
    func snapshot() throws -> PoolSnapshot {
        let groups = [
            WorkerGroup(entryPoint: "a", kind: .job, minWorkers: 2, maxWorkers: 4, name: "jobs"),
            WorkerGroup(entryPoint: "b", kind: .reactor, minWorkers: 1, maxWorkers: 2, name: "we\"b\\"),
        ]
        let pool = try PoolValidator.validate(name: "metrics-test-\(Posix.processID)", stopTimeout: .seconds(1), groups: groups, entryPoints: nil)
        let name = SharedLayout.segmentName(pool: pool.name, uid: Posix.userID)
        let segment = try SharedSegment.create(name: name, pool: pool, watcherPID: 4242, startedAt: 1_000_000_000_000)
        defer { Posix.unlinkSharedMemory(name: name) }
        var core = WatcherCore(pool: pool)
        let clock = PoolInstant.now
        _ = core.handle(.poolDidStart, at: clock)
        for id in [1, 2, 5] {
            _ = core.handle(.processDidSpawn(WorkerID(id), generation: 1, pid: Int32(100 + id)), at: clock)
            _ = core.handle(.workerDidBecomeReady(WorkerID(id), generation: 1), at: clock)
        }
        // Past the backoff's reset period, so the slot restarts at once.
        let later = clock + .seconds(60)
        _ = core.handle(.processDidExit(WorkerID(2), generation: 1, .signaled(9)), at: later)
        _ = core.handle(.command(.scale(GroupID(1), to: 3), reply: ReplyToken(rawValue: 1)), at: later)
        let publisher = SharedStatePublisher(segment: segment, pool: pool)
        publisher.publish(core, at: later)
        publisher.setPoolState(.running)
        let recorder = try WorkerActivityRecorder(segmentName: name, id: WorkerID(1))
        recorder.update { activity in
            activity.jobsAccepted = 7
            activity.jobsProcessed = 6
            activity.jobsErrors = 1
            activity.jobsInFlight = 1
        }
        recorder.observeLatency(wait: 40_000, run: 2_000_000)  // 40 µs, 2 ms
        recorder.observeLatency(wait: 3_000_000, run: nil)  // expired in the queue after 3 ms
        segment.countPickupMiss(group: GroupID(1))
        segment.countPickupMiss(group: GroupID(1))
        return try PoolStateReader(pool: pool.name).snapshot()
    }

    static func value(_ series: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.map { String($0.dropFirst(series.count + 1)) }
    }

    @Test("every family has HELP and TYPE before its samples, samples of a family are together, the text ends with a newline")
    func wellFormed() throws {
        let text = PrometheusExposition.text(try snapshot())
        #expect(text.hasSuffix("\n"))
        var seen: [String] = []
        var current = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                current = String(line.split(separator: " ")[2])
                #expect(!seen.contains(current), "\(current) is declared twice")
                seen.append(current)
                continue
            }
            if line.hasPrefix("# TYPE ") {
                #expect(line.split(separator: " ")[2] == current)
                continue
            }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            let family = ["_bucket", "_sum", "_count"].reduce(name) { base, suffix in
                base.hasSuffix(suffix) && current.hasSuffix("_seconds") ? String(base.dropLast(suffix.count)) : base
            }
            #expect(family == current, "sample \(name) outside its family \(current)")
        }
        #expect(seen == PrometheusExposition.families.map(\.name))
        for family in PrometheusExposition.families {
            #expect(family.name.hasPrefix("pooltop_"))
            #expect(family.name.hasSuffix("_total") == (family.kind == .counter), "\(family.name): only counters end in _total")
        }
    }

    @Test("the values are the snapshot's: workers by state, exits by reason, scaling, pickup misses, jobs, histograms")
    func values() throws {
        let snapshot = try snapshot()
        let text = PrometheusExposition.text(snapshot)
        #expect(Self.value("pooltop_pool_info{pool=\"\(snapshot.pool.name)\",pid=\"4242\"}", in: text) == "1")
        #expect(Self.value("pooltop_up", in: text) == "1")
        #expect(Self.value("pooltop_start_time_seconds", in: text) == "1000")
        #expect(Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"ready\"}", in: text) == "1", "worker 1")
        #expect(Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"starting\"}", in: text) == "2", "worker 2 again and the scaled-up 3")
        #expect(Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"stopped\"}", in: text) == "1", "slot 4")
        #expect(Self.value("pooltop_group_desired_workers{group=\"jobs\",kind=\"job\"}", in: text) == "3")
        #expect(Self.value("pooltop_group_scaling_events_total{group=\"jobs\",kind=\"job\"}", in: text) == "1")
        #expect(Self.value("pooltop_group_pickup_misses_total{group=\"jobs\",kind=\"job\"}", in: text) == "2")
        #expect(Self.value("pooltop_worker_exits_total{group=\"jobs\",worker=\"2\",reason=\"signal\"}", in: text) == "1")
        #expect(!text.contains("pooltop_worker_exits_total{group=\"jobs\",worker=\"1\""), "reasons never seen are absent")
        #expect(Self.value("pooltop_worker_restarts_total{group=\"jobs\",worker=\"2\"}", in: text) == "1")
        #expect(Self.value("pooltop_worker_jobs_processed_total{group=\"jobs\",worker=\"1\"}", in: text) == "6")
        #expect(Self.value("pooltop_worker_job_errors_total{group=\"jobs\",worker=\"1\"}", in: text) == "1")
        #expect(Self.value("pooltop_worker_jobs_in_flight{group=\"jobs\",worker=\"1\"}", in: text) == "1")
        #expect(Self.value("pooltop_worker_up{group=\"jobs\",worker=\"1\"}", in: text) == "1")
        #expect(Self.value("pooltop_worker_up{group=\"jobs\",worker=\"4\"}", in: text) == "0")
        // Buckets are cumulative: 40 µs falls in the first (50 µs), 3 ms in the 5 ms one.
        #expect(Self.value("pooltop_job_queue_wait_seconds_bucket{group=\"jobs\",le=\"5e-05\"}", in: text) == "1")
        #expect(Self.value("pooltop_job_queue_wait_seconds_bucket{group=\"jobs\",le=\"0.0025\"}", in: text) == "1")
        #expect(Self.value("pooltop_job_queue_wait_seconds_bucket{group=\"jobs\",le=\"0.005\"}", in: text) == "2")
        #expect(Self.value("pooltop_job_queue_wait_seconds_bucket{group=\"jobs\",le=\"+Inf\"}", in: text) == "2")
        #expect(Self.value("pooltop_job_queue_wait_seconds_count{group=\"jobs\"}", in: text) == "2")
        #expect(Self.value("pooltop_job_queue_wait_seconds_sum{group=\"jobs\"}", in: text) == "0.00304")
        #expect(Self.value("pooltop_job_run_seconds_count{group=\"jobs\"}", in: text) == "1", "the expired job never ran")
        #expect(Self.value("pooltop_job_run_seconds_bucket{group=\"jobs\",le=\"0.001\"}", in: text) == "0")
        #expect(Self.value("pooltop_job_run_seconds_bucket{group=\"jobs\",le=\"0.0025\"}", in: text) == "1")
        #expect(!text.contains("pooltop_job_run_seconds_bucket{group=\"we"), "reactor groups run no jobs: no histogram")
        // Label values are escaped: the group named we"b\ .
        #expect(text.contains("pooltop_group_max_workers{group=\"we\\\"b\\\\\",kind=\"reactor\"} 2\n"))
    }

    @Test("status --json carries the same figures as the exposition (one data model)")
    func statusDocumentAgrees() throws {
        let snapshot = try snapshot()
        let json = try JSONValue.parse(try JSONValue.encodeLine(snapshot))
        let worker2 = try #require(json["workers"]?.array?.first { $0["id"]?.integer == 2 })
        #expect(worker2["exits"]?["signal"]?.integer == 1)
        let worker1 = try #require(json["workers"]?.array?.first { $0["id"]?.integer == 1 })
        #expect(worker1["queueWait"]?["count"]?.integer == 2 && worker1["runTime"]?["count"]?.integer == 1)
        let jobs = try #require(json["groups"]?.array?.first { $0["name"]?.string == "jobs" })
        #expect(jobs["scalingEvents"]?.integer == 1 && jobs["pickupMisses"]?.integer == 2)
        // And it decodes back to the same snapshot (pooltop attach and the console read it).
        let decoded = try JSONDecoder().decode(PoolSnapshot.self, from: Data(try JSONValue.encodeLine(snapshot).utf8))
        #expect(decoded.workers.map(\.exits) == snapshot.workers.map(\.exits))
        #expect(decoded.workers.map(\.runTime) == snapshot.workers.map(\.runTime))
        #expect(decoded.groups == snapshot.groups)
    }

    @Test("a latency observation lands in the first bucket whose bound holds it")
    func buckets() {
        #expect(LatencyHistogram.bucket(for: 0) == 0)
        #expect(LatencyHistogram.bucket(for: 50_000) == 0, "bounds are inclusive (le)")
        #expect(LatencyHistogram.bucket(for: 50_001) == 1)
        #expect(LatencyHistogram.bucket(for: 1_000_000_000) == LatencyHistogram.bounds.firstIndex(of: 1))
        #expect(LatencyHistogram.bucket(for: 31_000_000_000) == LatencyHistogram.bounds.count, "+Inf")
        #expect(LatencyHistogram.bounds == LatencyHistogram.bounds.sorted())
    }

    /// The rows of the table under "## Metrics": name, type, labels.
    static func documentedFamilies() -> [(name: String, kind: String, labels: [String])] {
        let text = DocumentationTests.read("docs/metrics.md")
        var inSection = false
        var rows: [(String, String, [String])] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { inSection = line == "## Metrics" }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let unquote = { (cell: String) in cell.replacingOccurrences(of: "`", with: "") }
            let labels = cells[3].split(separator: ",").map { unquote($0.trimmingCharacters(in: .whitespaces)) }
            rows.append((unquote(cells[1]), cells[2], labels))
        }
        return rows
    }

    @Test("docs/metrics.md lists every family with its type and labels, and nothing else")
    func documented() {
        let documented = Self.documentedFamilies()
        #expect(documented.map(\.name) == PrometheusExposition.families.map(\.name))
        for family in PrometheusExposition.families {
            let row = documented.first { $0.name == family.name }
            #expect(row?.kind == family.kind.rawValue, "\(family.name)")
            #expect(row?.labels == family.labels, "\(family.name)")
        }
    }

    /// Every PromQL expression of the dashboard, with its template variables as they are queried.
    static func dashboardQueries() throws -> [String] {
        let dashboard = try JSONValue.parse(DocumentationTests.read("docs/grafana/dashboard.json"))
        var queries: [String] = []
        for panel in dashboard["panels"]?.array ?? [] {
            for target in panel["targets"]?.array ?? [] {
                if let expression = target["expr"]?.string { queries.append(expression) }
            }
        }
        return queries
    }

    @Test("the dashboard is a current Grafana model with a Prometheus data-source variable, and queries only metrics that exist")
    func dashboard() throws {
        let dashboard = try JSONValue.parse(DocumentationTests.read("docs/grafana/dashboard.json"))
        #expect((dashboard["schemaVersion"]?.integer ?? 0) >= 36)
        let variables = dashboard["templating"]?["list"]?.array ?? []
        #expect(variables.contains { $0["type"]?.string == "datasource" && $0["query"]?.string == "prometheus" && $0["name"]?.string == "datasource" })
        let panels = dashboard["panels"]?.array ?? []
        for panel in panels where panel["type"]?.string != "row" {
            #expect(panel["datasource"]?["uid"]?.string == "${datasource}", "\(panel["title"]?.string ?? "?") uses the variable")
        }
        let titles = Set(panels.compactMap { $0["title"]?.string })
        for wanted in [
            "Workers by state per group", "Restarts by reason", "Job rate", "Job error rate", "Job run time percentiles",
            "Queue rejections and pickup misses", "Connections", "Memory per worker", "CPU per worker",
        ] {
            #expect(titles.contains(wanted), "panel \(wanted)")
        }
        let exposed = Set(PrometheusExposition.families.flatMap { family in
            family.kind == .histogram ? ["_bucket", "_sum", "_count"].map { family.name + $0 } : [family.name]
        })
        let queries = try Self.dashboardQueries()
        #expect(queries.count > 20)
        var used: Set<String> = []
        for query in queries {
            var rest = Substring(query)
            while let start = rest.range(of: "pooltop_") {
                let name = String(rest[start.lowerBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                used.insert(name)
                rest = rest[start.upperBound...]
            }
        }
        #expect(used.subtracting(exposed).isEmpty, "queried but not exposed: \(used.subtracting(exposed).sorted())")
        #expect(used.count >= 18, "the dashboard covers most families: \(used.sorted())")
    }

    @Test("entryPoint prometheus listens on 127.0.0.1:9091 by default; other interfaces need exposed: true; job groups cannot listen")
    func configuration() throws {
        let yaml = """
            name: m
            groups:
              - name: metrics
                kind: service
                entryPoint: prometheus
            """
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: DemoPool.entryPoints)
        #expect(description.groups[0].listeners.map(\.description) == ["127.0.0.1:9091"])
        #expect(description.groups[0].listeners.first?.name == "metrics")

        let open = yaml + "\n    listen: [\"0.0.0.0:9091\"]"
        #expect {
            _ = try PoolConfiguration.parse(yaml: open, file: "pool.yaml", entryPoints: DemoPool.entryPoints)
        } throws: { error in
            "\(error)".contains("groups[0].listen[0]") && "\(error)".contains("exposed: true")
        }
        let exposed = yaml + "\n    listen: [{address: \"0.0.0.0:9091\", exposed: true}]"
        let (_, allowed) = try PoolConfiguration.parse(yaml: exposed, file: "pool.yaml", entryPoints: DemoPool.entryPoints)
        #expect(allowed.groups[0].listeners.first?.exposed == true)

        let jobs = """
            name: m
            groups:
              - name: jobs
                kind: job
                entryPoint: demo-job
                listen: ["127.0.0.1:9999"]
            """
        #expect {
            _ = try PoolConfiguration.parse(yaml: jobs, file: "pool.yaml", entryPoints: DemoPool.entryPoints)
        } throws: { error in
            "\(error)".contains("groups[0].listen") && "\(error)".contains("job group")
        }
        // In code: one line, loopback by default.
        #expect(PrometheusGroup().workerGroup.entryPoint == "prometheus")
        #expect(PrometheusGroup().workerGroup.kind == .service)
        #expect(EntryPoints().names.contains("prometheus"), "every binary has the entry point")
    }
}
