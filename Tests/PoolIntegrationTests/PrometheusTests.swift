import Glibc
import Testing

@testable import PoolEngine

/// The metrics group served by a real worker process, checked by Debian's `promtool` and
/// scraped by a real Prometheus server.
@Suite("Prometheus metrics with real processes", .serialized)
struct PrometheusTests {
    /// A pool of two demo job workers (ids 1, 2; max 3) and the metrics group (id 4) on a free
    /// port, with one job of each outcome run, while `body` runs.
    func withMetricsPool(
        _ prefix: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (WorkerPoolTests.Fixture, Int) async throws -> Void
    ) async throws {
        let fixture = WorkerPoolTests.Fixture(prefix)
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 2, max: 3, name: "jobs"))
        var metrics = try PrometheusGroup(address: "127.0.0.1:\(port)", name: "metrics")
        metrics.workerGroup.runner = TestSupport.runner(directory: fixture.directory, tag: fixture.name)
        try fixture.pool.describeGroup(metrics)
        try await fixture.withRunningPool(sourceLocation: sourceLocation) { _ in
            _ = try await fixture.pool.submitJob(Array("echo hi".utf8), to: "jobs")
            _ = try await fixture.pool.submitJob(Array("sleep 30".utf8), to: "jobs")
            await #expect(throws: JobError.self) { try await fixture.pool.submitJob(Array("fail on purpose".utf8), to: "jobs") }
            try await body(fixture, port)
        }
    }

    /// Fetches `/metrics`, failing the test when it does not answer 200.
    func scrape(_ port: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let reply = try #require(await HTTPClient.fetch(port: port, "/metrics"), sourceLocation: sourceLocation)
        #expect(reply.status == 200, sourceLocation: sourceLocation)
        return reply.body
    }

    static func repositoryFile(_ relative: String) -> String {
        // This file is Tests/PoolIntegrationTests/PrometheusTests.swift.
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return "\(path)/\(relative)"
    }

    /// The value of the sample `series` (name with labels, exactly as exposed).
    static func value(_ series: String, in exposition: String) -> Double? {
        for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test("/metrics passes promtool check metrics; other paths are 404 and other methods 405")
    func promtoolAccepts() async throws {
        try await withMetricsPool("promcheck") { fixture, port in
            let text = try await scrape(port)
            let file = "\(fixture.directory)/metrics.txt"
            TestSupport.write(file, text)
            let check = try await TestSupport.blocking { try? TestSupport.shell("promtool check metrics <'\(file)'", directory: fixture.directory) }
            let result = try #require(check, "promtool could not be run (scripts/ensure-deps test installs the prometheus package)")
            #expect(result.status == .exited(0), "promtool: \(result.stdout) \(result.stderr)")
            #expect(result.stdout.isEmpty && result.stderr.isEmpty, "promtool found problems: \(result.stdout) \(result.stderr)")
            #expect(text.hasSuffix("\n"))
            for family in PrometheusExposition.families {
                #expect(text.contains("# HELP \(family.name) ") && text.contains("# TYPE \(family.name) \(family.kind.rawValue)\n"), "\(family.name)")
            }
            #expect(try #require(await HTTPClient.fetch(port: port, "/")).status == 404)
            #expect(try #require(await HTTPClient.fetch(port: port, "/metricsx")).status == 404)
            let post = try await TestSupport.blocking { () -> String in
                guard let fd = SocketClient.connectTCP(port: port) else { return "" }
                defer { close(fd) }
                let request = Array("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = send(fd, request, request.count, Int32(MSG_NOSIGNAL))
                var buffer = [UInt8](repeating: 0, count: 512)
                let n = recv(fd, &buffer, buffer.count, 0)
                return n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : ""
            }
            #expect(post.hasPrefix("HTTP/1.1 405"), "\(post)")
        }
    }

    @Test("/metrics and status --json show the same numbers; jobs, latency, exits by reason and scaling are counted")
    func sameNumbersAsStatus() async throws {
        try await withMetricsPool("promsame") { fixture, port in
            // A worker killed by an operator's SIGKILL is counted as an exit for reason "signal".
            let reader = try PoolStateReader(pool: fixture.name)
            let victim = reader.snapshot().worker(WorkerID(1))!.pid
            kill(victim, SIGKILL)
            #expect(await TestSupport.eventually { reader.snapshot().worker(WorkerID(1))?.exits[.signal] == 1 && reader.snapshot().group(named: "jobs")?.ready == 2 })
            try await fixture.pool.scale(.name("jobs"), to: 3)
            #expect(await TestSupport.eventually { reader.snapshot().group(named: "jobs")?.ready == 3 })

            let text = try await scrape(port)
            let output = try await TestSupport.blocking { try? TestSupport.pooltop(["status", fixture.name, "--json"], directory: fixture.directory) }
            let status = try JSONValue.parse(try #require(output).stdout)
            let workers = try #require(status["workers"]?.array)
            for worker in workers {
                let id = try #require(worker["id"]?.integer)
                let labels = "{group=\"\(worker["group"]?.string ?? "")\",worker=\"\(id)\"}"
                #expect(Self.value("pooltop_worker_jobs_processed_total\(labels)", in: text) == worker["jobs"]?["processed"]?.number, "worker \(id)")
                #expect(Self.value("pooltop_worker_job_errors_total\(labels)", in: text) == worker["jobs"]?["errors"]?.number, "worker \(id)")
                #expect(Self.value("pooltop_worker_restarts_total\(labels)", in: text) == worker["restarts"]?.number, "worker \(id)")
            }
            #expect(Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"ready\"}", in: text) == 3)
            #expect(Self.value("pooltop_worker_exits_total{group=\"jobs\",worker=\"1\",reason=\"signal\"}", in: text) == 1)
            #expect(Self.value("pooltop_group_scaling_events_total{group=\"jobs\",kind=\"job\"}", in: text) == 1)
            #expect(Self.value("pooltop_group_desired_workers{group=\"jobs\",kind=\"job\"}", in: text) == 3)
            // Three jobs ran (echo, sleep, fail), each observed once in each histogram.
            #expect(Self.value("pooltop_job_run_seconds_count{group=\"jobs\"}", in: text) == 3)
            #expect(Self.value("pooltop_job_run_seconds_bucket{group=\"jobs\",le=\"+Inf\"}", in: text) == 3)
            #expect(Self.value("pooltop_job_queue_wait_seconds_count{group=\"jobs\"}", in: text) == 3)
            // The sleep ran 30 ms: the sum is at least that, and it is not in the 25 ms bucket.
            #expect((Self.value("pooltop_job_run_seconds_sum{group=\"jobs\"}", in: text) ?? 0) >= 0.03)
            #expect((Self.value("pooltop_job_run_seconds_bucket{group=\"jobs\",le=\"0.025\"}", in: text) ?? 9) <= 2)
            #expect(Self.value("pooltop_worker_up{group=\"metrics\",worker=\"4\"}", in: text) == 1)
            // The scrape itself is a connection of the metrics worker, counted as it is served.
            #expect((Self.value("pooltop_worker_connections_accepted_total{group=\"metrics\",worker=\"4\"}", in: text) ?? 0) >= 1)
        }
    }

    @Test("a group with no ready worker counts the job as a pickup miss")
    func pickupMiss() async throws {
        let fixture = WorkerPoolTests.Fixture("prommiss")
        let port = try SocketClient.freePort()
        // A job group whose only worker terminates itself: after that no worker can take a job.
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 1, name: "jobs", restart: .never))
        var metrics = try PrometheusGroup(address: "127.0.0.1:\(port)", name: "metrics")
        metrics.workerGroup.runner = TestSupport.runner(directory: fixture.directory, tag: fixture.name)
        try fixture.pool.describeGroup(metrics)
        try await fixture.withRunningPool { _ in
            _ = try? await fixture.pool.submitJob(Array("terminate".utf8), to: "jobs")
            let reader = try PoolStateReader(pool: fixture.name)
            #expect(await TestSupport.eventually { reader.snapshot().group(named: "jobs")?.running == 0 })
            await #expect { try await fixture.pool.submitJob(Array("echo hi".utf8), to: "jobs", timeout: .milliseconds(300)) } throws: { error in
                (error as? JobError)?.code == .noWorkerAvailable
            }
            let text = try await scrape(port)
            #expect(Self.value("pooltop_group_pickup_misses_total{group=\"jobs\",kind=\"job\"}", in: text) == 1, "\(text)")
            #expect(Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"finished\"}", in: text) == 1)
        }
    }

    @Test("a stopped (SIGSTOP) watcher does not stall scrapes: the metrics worker reads shared memory only; pooltop metrics prints the same families")
    func stuckWatcher() async throws {
        let name = TestSupport.uniqueName("promstuck")
        let directory = TestSupport.makeDirectory(name)
        let port = try SocketClient.freePort()
        let config = "\(directory)/pool.yaml"
        TestSupport.write(
            config,
            """
            name: \(name)
            groups:
              - {name: jobs, kind: job, entryPoint: demo-job, min: 1}
              - {name: metrics, kind: service, entryPoint: prometheus, listen: ["127.0.0.1:\(port)"]}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", config], tag: name, directory: directory)
        #expect(await watcher.waitForLog("serving metrics"), "\(watcher.log)")
        let cli = try await TestSupport.blocking { try? TestSupport.pooltop(["metrics", name], directory: directory) }
        #expect(cli?.status == .exited(0))
        for family in PrometheusExposition.families { #expect(cli?.stdout.contains("# TYPE \(family.name) ") == true) }

        watcher.signal(SIGSTOP)
        let reply = try await HTTPClient.fetch(port: port, "/metrics")
        watcher.signal(SIGCONT)
        #expect(reply?.status == 200)
        #expect(reply.flatMap { Self.value("pooltop_workers{group=\"jobs\",kind=\"job\",state=\"ready\"}", in: $0.body) } == 1)

        await watcher.stopExpectingCleanExit()
    }

    @Test("a real Prometheus server scrapes the pool; its API returns the series with the values status --json shows")
    func realPrometheusScrapes() async throws {
        try await withMetricsPool("promreal") { fixture, port in
            let prometheusPort = try SocketClient.freePort()
            let config = "\(fixture.directory)/prometheus.yml"
            TestSupport.write(
                config,
                """
                global:
                  scrape_interval: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: pooltop
                    static_configs:
                      - targets: ["127.0.0.1:\(port)"]
                """)
            let server = try PrometheusServer(
                config: config, storage: "\(fixture.directory)/tsdb", port: prometheusPort, log: "\(fixture.directory)/prometheus.log")
            defer { server.stop() }
            let query = "pooltop_workers{group=\"jobs\",state=\"ready\"}"
            var answer: JSONValue?
            let found = await TestSupport.eventually(timeout: .seconds(30)) {
                answer = server.query(query)
                return answer?["data"]?["result"]?.array?.isEmpty == false
            }
            #expect(found, "no series for \(query): \(String(describing: answer)); log: \(TestSupport.lines(fixture.directory, "prometheus.log").suffix(5))")
            let sample = try #require(answer?["data"]?["result"]?.array?.first)
            #expect(sample["metric"]?["instance"]?.string == "127.0.0.1:\(port)")
            #expect(sample["metric"]?["kind"]?.string == "job")
            let output = try await TestSupport.blocking { try? TestSupport.pooltop(["status", fixture.name, "--json"], directory: fixture.directory) }
            let status = try JSONValue.parse(try #require(output).stdout)
            let ready = status["groups"]?.array?.first { $0["name"]?.string == "jobs" }?["ready"]?.integer
            #expect(sample["value"]?.array?.last?.string == ready.map(String.init), "\(sample)")
            // Counters come through as well: the three jobs, summed over the group's workers.
            let processed = await TestSupport.eventually(timeout: .seconds(10)) {
                server.query("sum(pooltop_worker_jobs_processed_total{group=\"jobs\"})")?["data"]?["result"]?.array?.first?["value"]?.array?.last?.string == "3"
            }
            #expect(processed)
            #expect(server.query("up{job=\"pooltop\"}")?["data"]?["result"]?.array?.first?["value"]?.array?.last?.string == "1")

            // Every query of the Grafana dashboard is valid PromQL to this server, with the
            // template variables as Grafana fills them in.
            let dashboard = try JSONValue.parse(String(decoding: try Posix.readFile(Self.repositoryFile("docs/grafana/dashboard.json")), as: UTF8.self))
            let queries = (dashboard["panels"]?.array ?? []).flatMap { $0["targets"]?.array ?? [] }.compactMap { $0["expr"]?.string }
            #expect(queries.count > 20)
            for query in queries {
                let filled = query.replacingOccurrences(of: "$__rate_interval", with: "1m")
                    .replacingOccurrences(of: "$group", with: ".*").replacingOccurrences(of: "$instance", with: ".*")
                let answer = server.query(filled)
                #expect(answer?["status"]?.string == "success", "\(filled): \(String(describing: answer))")
            }
            // The panels have data: the ready workers of the "Workers by state" panel, for one.
            let byState = queries.first { $0.contains("sum by (group, state) (pooltop_workers") }
            let filled = byState.map { $0.replacingOccurrences(of: "$group", with: ".*").replacingOccurrences(of: "$instance", with: ".*") }
            #expect(filled.flatMap { server.query($0)?["data"]?["result"]?.array?.isEmpty } == false)
        }
    }
}

/// A Prometheus server (Debian's package) on loopback for one test; killed and reaped by `stop()`.
final class PrometheusServer: Sendable {
    let pid: pid_t
    let port: Int

    init(config: String, storage: String, port: Int, log: String) throws {
        self.port = port
        let line = "exec prometheus --config.file='\(config)' --storage.tsdb.path='\(storage)' --web.listen-address=127.0.0.1:\(port) >'\(log)' 2>&1"
        pid = try Posix.spawn(path: "/bin/sh", arguments: ["-c", line], environment: Posix.environment(), inherited: [])
    }

    /// Runs an instant query through the HTTP API; nil until the server answers.
    func query(_ promql: String) -> JSONValue? {
        var encoded = ""
        for byte in promql.utf8 {
            let character = Character(UnicodeScalar(byte))
            if character.isLetter || character.isNumber || "_-.".contains(character) {
                encoded.append(character)
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        guard let reply = HTTPClient.get(port: port, "/api/v1/query?query=\(encoded)"), reply.status == 200 else { return nil }
        return try? JSONValue.parse(reply.body)
    }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(pid, &status, WNOHANG) == pid { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
