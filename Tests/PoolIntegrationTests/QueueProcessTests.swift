#if PostgresQueue
import Glibc
import Testing

@testable import PoolEngine

/// The PostgreSQL queue end to end: real pools (`PoolFixtures run`), a real PostgreSQL
/// (`scripts/with-postgres`, which `make test` runs the suite under), real SIGKILLs and a real
/// server restart. Each test works in a schema of its own.
@Suite("PostgreSQL queue across pools", .serialized, .enabled(if: QueueDatabase.isAvailable, "needs PGHOST: make test runs the suite under scripts/with-postgres"))
struct QueueProcessTests {
    /// A pool of `jobs` (the recording job worker) and a queue group on `schema`.
    func poolFile(
        _ directory: String, name: String, schema: String, concurrency: Int = 32, lease: String = "3s", retries: Int = 3,
        drain: String = "2s", jobWorkers: Int = 2, extra: String = ""
    ) -> String {
        let path = "\(directory)/\(name).yaml"
        TestSupport.write(
            path,
            """
            name: \(name)
            stopTimeout: 15s
            groups:
              - name: jobs
                kind: job
                entryPoint: recording-job
                min: \(jobWorkers)
                jobs: {maxConcurrent: 64, maxQueued: 1000}
                environment: {POOLTOP_TEST_DIR: "\(directory)", PT_TEST_TAG: "\(name)"}
              - name: queue
                kind: service
                entryPoint: postgres-queue
                environment: {PT_TEST_TAG: "\(name)"}
                settings:
                  schema: \(schema)
                  queues: {work: jobs}
                  concurrency: \(concurrency)
                  lease: \(lease)
                  retries: \(retries)
                  backoff: {initial: 20ms, max: 100ms}
                  poll: 200ms
                  drain: \(drain)
            \(extra)
            """)
        return path
    }

    func startPool(_ name: String, schema: String, directory: String, concurrency: Int = 32, lease: String = "3s",
                   retries: Int = 3, drain: String = "2s", extra: String = "") async throws -> ExternalWatcher {
        let config = poolFile(
            directory, name: name, schema: schema, concurrency: concurrency, lease: lease, retries: retries, drain: drain, extra: extra)
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory, executable: TestSupport.fixtureExecutable)
        #expect(await watcher.waitForLog("claiming from work"), "\(watcher.log)")
        return watcher
    }

    /// How often each payload ran, from every pool's job workers.
    func runs(_ directory: String) -> [String: Int] {
        var counts: [String: Int] = [:]
        for line in TestSupport.lines(directory, "runs") {
            guard let space = line.lastIndex(of: " ") else { continue }
            counts[String(line[..<space]), default: 0] += 1
        }
        return counts
    }

    /// Every run of a job was one of its counted attempts (a claim that reached a handler), and
    /// with `duplicatesNeedExpiry`, a job ran more than once only where a lease expired.
    func expectRunsOnlyAsClaimed(schema: String, directory: String, duplicatesNeedExpiry: Bool) throws {
        let rows = try QueueDatabase.sql(
            "SELECT convert_from(payload, 'UTF8'), attempts, expiries FROM \(schema).jobs", directory: directory)
        var claimed: [String: (attempts: Int, expiries: Int)] = [:]
        for row in rows.split(separator: "\n") {
            let cells = row.split(separator: "|").map(String.init)
            guard cells.count == 3 else { continue }
            claimed[cells[0]] = (Int(cells[1]) ?? 0, Int(cells[2]) ?? 0)
        }
        var wrong: [String] = []
        for (payload, count) in runs(directory) {
            guard let job = claimed[payload] else {
                wrong.append("\(payload) ran but is not in the table")
                continue
            }
            if count > job.attempts { wrong.append("\(payload) ran \(count) times in \(job.attempts) attempts") }
            // These payloads never fail: a run beyond the first needs a lease that expired.
            if duplicatesNeedExpiry, count > 1 + job.expiries {
                wrong.append("\(payload) ran \(count) times with \(job.expiries) expired lease(s)")
            }
        }
        #expect(wrong.count == 0, "\(wrong.prefix(20))")
    }

    @Test("two pools share 10,000 jobs: each ends done, none is lost, both pools work, and only the failed-once jobs ran twice")
    func twoPoolsShareAQueue() async throws {
        let name = TestSupport.uniqueName("queue-two")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        let first = try await startPool("\(name)-a", schema: schema, directory: directory)
        let second = try await startPool("\(name)-b", schema: schema, directory: directory)
        // One INSERT, as an application would enqueue a batch; every 100th job fails once.
        _ = try QueueDatabase.sql(
            """
            INSERT INTO \(schema).jobs (queue, payload)
            SELECT 'work', convert_to(CASE WHEN n % 100 = 0 THEN 'fail-once:' || n ELSE 'job:' || n END, 'UTF8')
            FROM generate_series(1, 10000) AS n
            """, directory: directory)
        let finished = await TestSupport.eventually(timeout: .seconds(180)) {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state IN ('done', 'dead')", directory: directory)) == "10000"
        }
        #expect(finished, "states: \((try? QueueDatabase.sql("SELECT state, count(*) FROM \(schema).jobs GROUP BY state", directory: directory)) ?? "?")")
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'done'", directory: directory) == "10000")
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE expiries > 0", directory: directory) == "0")
        #expect(try QueueDatabase.sql("SELECT count(DISTINCT claimed_by) FROM \(schema).jobs", directory: directory) == "2")
        let counts = runs(directory)
        var wrong: [String] = []
        for n in 1...10000 {
            let payload = n % 100 == 0 ? "fail-once:\(n)" : "job:\(n)"
            let expected = n % 100 == 0 ? 2 : 1
            if counts[payload] != expected { wrong.append("\(payload) ran \(counts[payload] ?? 0) times") }
        }
        #expect(wrong.count == 0, "\(wrong.prefix(20))")
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE payload::text LIKE '%fail-once%' AND attempts <> 2", directory: directory) == "0")
        await first.stopExpectingCleanExit()
        await second.stopExpectingCleanExit()
    }

    @Test("a pool SIGKILLed whole mid-run: its claimed jobs run on the other pool once their lease expires")
    func killedPoolsJobsAreRecovered() async throws {
        let name = TestSupport.uniqueName("queue-kill")
        // The killed pool's watcher leaves its segment and runtime directory, as it would on a host
        // (its next run takes them over); no next run comes here.
        defer { RuntimeDirectory.removeStale(pool: "\(name)-a") }
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        let doomed = try await startPool("\(name)-a", schema: schema, directory: directory, concurrency: 8, lease: "2s")
        _ = try QueueDatabase.sql(
            "INSERT INTO \(schema).jobs (queue, payload) SELECT 'work', convert_to('sleep:400:' || n, 'UTF8') FROM generate_series(1, 60) AS n",
            directory: directory)
        #expect(await TestSupport.eventually {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'running'", directory: directory)) == "8"
        })
        // The host dies: the watcher and every worker at once (frozen first, and only killed
        // once every one of them is stopped, so that none sees another die), nobody left to
        // release a claim. Sending SIGSTOP to all and then SIGKILL failed twice (a fresh-clone CI
        // run, and 1 run in 3 beside two busy loops): two running jobs had been put back with
        // their attempt uncounted, which only a stopping queue worker does (by design, see the
        // graceful-stop test), while the other six waited for their lease. Most likely the queue
        // worker had not stopped yet when the watcher died, and stopped as an orphan.
        let processes = await TestSupport.freezeTagged(doomed.tag)
        for pid in processes { kill(pid, SIGKILL) }
        _ = doomed.waitForExit()
        let survivor = try await startPool("\(name)-b", schema: schema, directory: directory, concurrency: 8, lease: "2s")
        #expect(await TestSupport.eventually(timeout: .seconds(60)) {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'done'", directory: directory)) == "60"
        }, "\((try? QueueDatabase.sql("SELECT state, count(*) FROM \(schema).jobs GROUP BY state", directory: directory)) ?? "?")")
        // What the dead pool held when it froze (up to its 8) came back through lease expiry, and
        // a job ran twice only where its lease expired.
        let recovered = Int(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE expiries > 0", directory: directory)) ?? 0
        #expect((1...8).contains(recovered), "\(recovered) jobs came back through lease expiry")
        try expectRunsOnlyAsClaimed(schema: schema, directory: directory, duplicatesNeedExpiry: true)
        await survivor.stopExpectingCleanExit()
        await TestSupport.expectNoOrphans(doomed.tag, leavesRuntime: true)
    }

    @Test("a graceful stop releases what is still running after the drain: no job waits for its lease")
    func gracefulStopReleasesClaims() async throws {
        let name = TestSupport.uniqueName("queue-stop")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        let pool = try await startPool(name, schema: schema, directory: directory, concurrency: 4, lease: "60s", drain: "500ms")
        _ = try QueueDatabase.sql(
            "INSERT INTO \(schema).jobs (queue, payload) SELECT 'work', convert_to('sleep:30000:' || n, 'UTF8') FROM generate_series(1, 10) AS n",
            directory: directory)
        #expect(await TestSupport.eventually {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'running'", directory: directory)) == "4"
        })
        await pool.stopExpectingCleanExit()
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'pending' AND attempts = 0 AND claim IS NULL", directory: directory) == "10")
        #expect(pool.log.contains("releasing 4 job(s)"), "\(pool.log)")
    }

    @Test("unique keys, runAt, the SQL function in a rolled-back transaction, and dead jobs retried and discarded from the CLI")
    func enqueueOptionsAndDeadLetters() async throws {
        let name = TestSupport.uniqueName("queue-cli")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        func cli(_ arguments: String...) throws -> CommandOutput {
            try TestSupport.shell(
                "'\(TestSupport.fixtureExecutable)' " + arguments.map { "'\($0)'" }.joined(separator: " ") + " --schema \(schema)",
                directory: directory)
        }
        // Before any pool runs: the CLI migrates the schema itself.
        let first = try cli("enqueue", "work", "job:unique", "--unique-key", "k1", "--run-at", "3s")
        #expect(first.status == .exited(0), "\(first)")
        let second = try cli("enqueue", "work", "job:unique-again", "--unique-key", "k1")
        #expect(second.stdout.contains("not enqueued"), "\(second)")
        _ = try QueueDatabase.sql("BEGIN; SELECT \(schema).enqueue('work', 'job:rolled-back'); ROLLBACK", directory: directory)
        _ = try QueueDatabase.sql("SELECT \(schema).enqueue('work', 'fail-always:x', max_attempts => 2)", directory: directory)
        let figures = try cli("queue", "--json")
        #expect(figures.stdout.contains("\"scheduled\":1"), "\(figures)")

        let pool = try await startPool(name, schema: schema, directory: directory, retries: 0)
        // By the pool's name alone: the queue group published where it works.
        let byName = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' queue \(name) --json", directory: directory)
        #expect(byName.status == .exited(0) && byName.stdout.contains("\"queue\":\"work\""), "\(byName)")
        let notRunning = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' queue \(name)-none", directory: directory)
        #expect(notRunning.status == .exited(1) && notRunning.stderr.contains("is not running here"), "\(notRunning)")
        #expect(await TestSupport.eventually {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state IN ('done', 'dead')", directory: directory)) == "2"
        })
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'done' AND started_at >= run_at AND run_at >= created_at + interval '3 s'", directory: directory) == "1")
        #expect(runs(directory)["job:rolled-back"] == nil && runs(directory)["job:unique-again"] == nil)
        #expect(runs(directory)["fail-always:x"] == 2, "max_attempts 2 overrides retries 0")

        let dead = try cli("dead", "--json")
        #expect(dead.stdout.contains("failed on purpose: fail-always:x") && dead.stdout.contains("\"attempts\":2"), "\(dead)")
        let id = try QueueDatabase.sql("SELECT id FROM \(schema).jobs WHERE state = 'dead'", directory: directory)
        #expect(try cli("dead", "--retry", id).stdout.contains("pending again"))
        #expect(await TestSupport.eventually { runs(directory)["fail-always:x"] == 4 })
        #expect(await TestSupport.eventually {
            (try? QueueDatabase.sql("SELECT state FROM \(schema).jobs WHERE id = \(id)", directory: directory)) == "dead"
        })
        #expect(try cli("dead", "--discard", id).stdout.contains("discarded"))
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE id = \(id)", directory: directory) == "0")
        let missing = try cli("dead", "--discard", id)
        #expect(missing.status == .exited(1) && missing.stderr.contains("no dead job has id \(id)"), "\(missing)")
        await pool.stopExpectingCleanExit()
    }

    @Test("the console's queue view (Q) shows the queues live and the dead jobs with their errors; retry and discard ask first")
    func consoleQueueView() async throws {
        let name = TestSupport.uniqueName("queue-console")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        let pool = try await startPool(name, schema: schema, directory: directory, retries: 0)
        _ = try QueueDatabase.sql(
            "SELECT \(schema).enqueue('work', 'fail-always:a'); SELECT \(schema).enqueue('work', 'fail-always:b')", directory: directory)
        func dead() -> String {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'dead'", directory: directory)) ?? "?"
        }
        #expect(await TestSupport.eventually { dead() == "2" })
        /// The first dead job the view lists: its order (newest death first).
        func newestDead() throws -> String {
            try QueueDatabase.sql(
                "SELECT id FROM \(schema).jobs WHERE state = 'dead' ORDER BY finished_at DESC, id DESC LIMIT 1", directory: directory)
        }
        /// The id on the row the view has selected.
        func selected(_ screen: String) -> String? {
            screen.split(separator: "\n").first { $0.contains(" > ") }
                .flatMap { $0.split(separator: ">").last?.split(separator: " ").first.map(String.init) }
        }
        /// The figures on the queue's row of the view: available, scheduled, retrying, running, dead.
        func figures(_ screen: String) -> [String] {
            guard let row = screen.split(separator: "\n").first(where: { $0.hasPrefix(" work ") }) else { return [] }
            return Array(row.split(separator: " ").dropFirst().prefix(5).map(String.init))
        }

        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("attach \(name)", tag: "\(name)-console")
        #expect(await tmux.waitFor("[attached]"), "screen:\n\(tmux.screen())")
        try tmux.keys("Q")
        #expect(await tmux.waitFor("DEAD JOBS (2"), "screen:\n\(tmux.screen())")
        var screen = tmux.screen()
        #expect(screen.contains("group queue: connected to") && screen.contains("failed on purpose: fail-a"), "\(screen)")
        #expect(figures(screen) == ["0", "0", "0", "0", "2"], "\(screen)")
        // Live: a job scheduled for later shows up without a key pressed.
        _ = try QueueDatabase.sql("SELECT \(schema).enqueue('work', 'job:later', run_at => now() + interval '1 hour')", directory: directory)
        #expect(await TestSupport.eventually { figures(tmux.screen()) == ["0", "1", "0", "0", "2"] }, "screen:\n\(tmux.screen())")

        // Retry: Enter on the default button cancels; y retries, and the job runs again.
        let first = try newestDead()
        let payload = try QueueDatabase.sql("SELECT convert_from(payload, 'UTF8') FROM \(schema).jobs WHERE id = \(first)", directory: directory)
        #expect(selected(tmux.screen()) == first, "screen:\n\(tmux.screen())")
        try tmux.keys("r")
        #expect(await tmux.waitFor("Retry dead job \(first)"), "screen:\n\(tmux.screen())")
        #expect(tmux.screen().contains("[ Cancel ]"))
        try tmux.keys("Enter")
        #expect(await TestSupport.eventually { !tmux.screen().contains("Retry dead job") })
        #expect(runs(directory)[payload] == 1 && dead() == "2", "cancelled: nothing changed")
        try tmux.keys("r")
        #expect(await tmux.waitFor("Retry dead job \(first)"))
        try tmux.keys("y")
        #expect(await tmux.waitFor("dead job \(first) is pending again"), "screen:\n\(tmux.screen())")
        #expect(await TestSupport.eventually { runs(directory)[payload] == 2 && dead() == "2" }, "it ran again and died again")

        // Discard the one the view now lists first, once the view shows it.
        let newest = try newestDead()
        #expect(await TestSupport.eventually { selected(tmux.screen()) == newest }, "screen:\n\(tmux.screen())")
        try tmux.keys("x")
        #expect(await tmux.waitFor("Discard dead job \(newest)"), "screen:\n\(tmux.screen())")
        try tmux.keys("y")
        #expect(await tmux.waitFor("DEAD JOBS (1"), "screen:\n\(tmux.screen())")
        #expect(try QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE id = \(newest)", directory: directory) == "0")
        screen = tmux.screen()
        #expect(figures(screen) == ["0", "1", "0", "0", "1"], "\(screen)")
        try tmux.keys("Escape")
        try tmux.keys("q")
        #expect(await TestSupport.eventually { !tmux.screen().contains("[attached]") }, "the console detached")
        await pool.stopExpectingCleanExit()
    }

    @Test("a recurring job fires once per tick whatever the number of pools; the fleet view lists both pools, then drops the stopped one and flags the killed one")
    func cronAcrossPoolsAndFleet() async throws {
        let name = TestSupport.uniqueName("queue-cron")
        // What the killed second pool's watcher leaves (see the kill test above).
        defer { RuntimeDirectory.removeStale(pool: "\(name)-b") }
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        // Indented to sit under `settings:` in the pool file.
        let cron = """
                  cron:
                    tick: {schedule: "*/2 * * * * *", queue: work, payload: "job:tick"}
            """
        let first = try await startPool("\(name)-a", schema: schema, directory: directory, extra: cron)
        let second = try await startPool("\(name)-b", schema: schema, directory: directory, extra: cron)
        #expect(await TestSupport.eventually {
            (Int((try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE unique_key LIKE 'cron:tick:%' AND state = 'done'", directory: directory)) ?? "") ?? 0) >= 4
        })
        // Every firing enqueued once: as many jobs as distinct firings, each run once.
        let counts = try QueueDatabase.sql(
            "SELECT count(*), count(DISTINCT unique_key) FROM \(schema).jobs WHERE unique_key LIKE 'cron:tick:%'", directory: directory)
        let parts = counts.split(separator: "|")
        #expect(parts.count == 2 && parts[0] == parts[1], "\(counts)")
        #expect(first.log.contains("recurring job tick") || second.log.contains("recurring job tick"))

        func fleet() throws -> CommandOutput {
            try TestSupport.shell("'\(TestSupport.fixtureExecutable)' fleet --json --schema \(schema)", directory: directory)
        }
        #expect(await TestSupport.eventually { ((try? fleet())?.stdout.split(separator: "\n").count ?? 0) == 2 })
        let both = try fleet()
        #expect(both.status == .exited(0) && both.stdout.contains("\"pool\":\"\(name)-a\"") && both.stdout.contains("\"pool\":\"\(name)-b\""), "\(both)")
        #expect(both.stdout.contains("\"workersReady\":3"), "\(both)")

        await first.stopExpectingCleanExit()
        let afterStop = try fleet()
        #expect(!afterStop.stdout.contains("\(name)-a\"") && afterStop.stdout.contains("\(name)-b\""), "\(afterStop)")
        // Killed: its row stays and goes stale (15 s without a heartbeat), and fleet exits 1.
        for pid in TestSupport.taggedProcesses(second.tag) { kill(pid, SIGKILL) }
        _ = second.waitForExit()
        #expect(await TestSupport.eventually(timeout: .seconds(30)) { (try? fleet())?.status == .exited(1) })
        let table = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' fleet --schema \(schema)", directory: directory)
        #expect(table.stdout.contains("STALE"), "\(table)")
        await TestSupport.expectNoOrphans(second.tag, leavesRuntime: true)
    }

    @Test("pools migrating the same schema at once apply each migration exactly once")
    func migrationsRace() async throws {
        let name = TestSupport.uniqueName("queue-migrate")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        // Eight migrators started together, as pools on eight hosts booting at once.
        let command = (1...8).map { _ in "'\(TestSupport.fixtureExecutable)' queue --schema \(schema) >/dev/null &" }.joined(separator: " ") + " wait"
        let race = try TestSupport.shell(command, directory: directory)
        #expect(race.status == .exited(0), "\(race)")
        #expect(try QueueDatabase.sql("SELECT count(*), max(version) FROM \(schema).migrations", directory: directory) == "2|2")
    }

    @Test("PostgreSQL restarted under load: the pool says so, reconnects, and every job still ends done")
    func databaseRestartUnderLoad() async throws {
        let name = TestSupport.uniqueName("queue-restart")
        let directory = TestSupport.makeDirectory(name)
        let schema = QueueDatabase.schema(for: name)
        let pool = try await startPool(name, schema: schema, directory: directory, concurrency: 16, lease: "5s")
        _ = try QueueDatabase.sql(
            "INSERT INTO \(schema).jobs (queue, payload) SELECT 'work', convert_to('sleep:20:' || n, 'UTF8') FROM generate_series(1, 1500) AS n",
            directory: directory)
        #expect(await TestSupport.eventually { runs(directory).count > 100 })
        let stop = try QueueDatabase.control("-m fast stop", directory: directory)
        #expect(stop.status == .exited(0), "\(stop)")
        #expect(await pool.waitForLog("database unreachable"), "\(pool.log)")
        func metrics() throws -> String {
            try TestSupport.shell("'\(TestSupport.fixtureExecutable)' metrics \(name)", directory: directory).stdout
        }
        #expect(try metrics().contains("pooltop_queue_connected{group=\"queue\"} 0"))
        let down = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' status \(name)", directory: directory)
        #expect(down.stdout.contains("queue group 'queue': DATABASE UNREACHABLE"), "\(down)")
        let downJSON = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' status \(name) --json", directory: directory)
        let group = try JSONValue.parse(downJSON.stdout)["queues"]?.array?.first
        #expect(group?["connected"]?.bool == false && group?["outageReason"]?.string != nil && group?["outageSince"]?.number != nil, "\(downJSON)")
        #expect(group?["database"]?.string?.hasPrefix("postgres://") == true && group?["schema"]?.string == schema, "\(downJSON)")
        try await Task.sleep(for: .seconds(1))
        let start = try QueueDatabase.control("start", directory: directory)
        #expect(start.status == .exited(0), "\(start)")
        #expect(await pool.waitForLog("database reachable again"), "\(pool.log)")
        #expect(await TestSupport.eventually {
            let text = (try? metrics()) ?? ""
            return text.contains("pooltop_queue_connected{group=\"queue\"} 1") && text.contains("pooltop_queue_reconnects_total{group=\"queue\"} 1")
                && text.contains("pooltop_queue_depth{group=\"queue\",queue=\"work\",state=\"available\"}")
        }, "\((try? metrics()) ?? "")")
        #expect(await TestSupport.eventually(timeout: .seconds(90)) {
            (try? QueueDatabase.sql("SELECT count(*) FROM \(schema).jobs WHERE state = 'done'", directory: directory)) == "1500"
        }, "\((try? QueueDatabase.sql("SELECT state, count(*) FROM \(schema).jobs GROUP BY state", directory: directory)) ?? "?")")
        #expect(runs(directory).count == 1500)
        try expectRunsOnlyAsClaimed(schema: schema, directory: directory, duplicatesNeedExpiry: true)
        let up = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' status \(name)", directory: directory)
        #expect(up.stdout.contains("queue group 'queue': connected to"), "\(up)")
        let upJSON = try TestSupport.shell("'\(TestSupport.fixtureExecutable)' status \(name) --json", directory: directory)
        #expect(try JSONValue.parse(upJSON.stdout)["queues"]?.array?.first?["connected"]?.bool == true, "\(upJSON)")
        let text = try metrics()
        #expect(text.contains("pooltop_queue_jobs_total{group=\"queue\",outcome=\"done\"}"), "\(text)")
        #expect(text.contains("pooltop_queue_claim_latency_seconds_count{group=\"queue\"}"), "\(text)")
        await pool.stopExpectingCleanExit()
    }
}

/// The test cluster `scripts/with-postgres` started: psql and pg_ctl against it.
enum QueueDatabase {
    static var isAvailable: Bool { getenv("PGHOST") != nil }

    /// A schema per test: the pool name, in the characters a schema name allows.
    static func schema(for name: String) -> String {
        "q_" + String(name.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// Runs SQL with psql and returns its unaligned output, trimmed; throws on an SQL error.
    static func sql(_ statement: String, directory: String) throws -> String {
        let path = "\(directory)/statement-\(Int.random(in: 0..<1_000_000_000)).sql"
        TestSupport.write(path, statement)
        let output = try TestSupport.shell("psql -X -q -tA -v ON_ERROR_STOP=1 -f '\(path)'", directory: directory)
        guard output.status == .exited(0) else { throw QueueTestError(description: "psql failed: \(output.stderr)") }
        return output.stdout.trimmingWhitespace
    }

    /// Runs the cluster's pg_ctl (`stop`, `start`) as its owner.
    static func control(_ arguments: String, directory: String) throws -> CommandOutput {
        guard let ctl = getenv("POOLTOP_TEST_PG_CTL").map({ String(cString: $0) }) else {
            throw QueueTestError(description: "POOLTOP_TEST_PG_CTL is not set: run under scripts/with-postgres")
        }
        return try TestSupport.shell("'\(ctl)' \(arguments)", directory: directory)
    }
}

struct QueueTestError: Error, CustomStringConvertible {
    var description: String
}

extension String {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
#endif
