#if PostgresQueue
import Foundation
import NIOCore
import PoolEngine
import Testing

@testable import PoolQueue

@Suite("postgres-queue settings")
struct PostgresQueueConfigurationTests {
    var entryPoints: EntryPoints {
        var entryPoints = EntryPoints()
        entryPoints.register("echo") { Idle() }
        entryPoints.registerPostgresQueue()
        return entryPoints
    }

    struct Idle: WorkerEntryPoint {
        func run() async throws {}
    }

    func load(_ settings: String) throws(ConfigurationError) -> PoolDescription {
        let yaml = """
            name: q
            groups:
              - {name: jobs, kind: job, entryPoint: echo}
              - name: queue
                kind: service
                entryPoint: postgres-queue
                settings:
            \(settings.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n"))
            """
        return try PoolConfiguration.parse(yaml: yaml, file: "pool.yaml", entryPoints: entryPoints).description
    }

    func error(_ settings: String) -> ConfigurationError? {
        do {
            _ = try load(settings)
            return nil
        } catch {
            return error
        }
    }

    @Test("a queue group gets its job groups and starts after them")
    func impliedJobGroupsAndOrder() throws {
        let pool = try load("queues: {work: jobs}\nlease: 10s")
        let queue = try #require(pool.groups.first { $0.name == "queue" })
        let jobs = try #require(pool.groups.first { $0.name == "jobs" })
        #expect(queue.jobGroups == [jobs.id])
        #expect(queue.after == [ResolvedDependency(group: jobs.id, condition: .ready)])
        let configuration = try PostgresQueueConfiguration(settings: queue.settings, path: "groups[1]")
        #expect(configuration.lease == .seconds(10))
        #expect(configuration.queues == [.init("work", jobGroup: "jobs")])
    }

    @Test("settings errors name the key and its line")
    func errorsNameKeyAndLine() {
        let unknown = error("queues: {work: jobs}\nleese: 10s")
        #expect(unknown?.path == "groups[1].settings.leese" && unknown?.line == 9, "\(String(describing: unknown))")
        #expect(unknown?.message.contains("known keys here") == true)
        let lease = error("queues: {work: jobs}\nlease: 1ms")
        #expect(lease?.path == "groups[1].settings.lease" && lease?.line == 9, "\(String(describing: lease))")
        let noQueues = error("lease: 10s")
        #expect(noQueues?.path == "groups[1].settings.queues", "\(String(describing: noQueues))")
        let badSchema = error("queues: {work: jobs}\nschema: Robert'); DROP TABLE")
        #expect(badSchema?.path == "groups[1].settings.schema", "\(String(describing: badSchema))")
        let badURL = error("queues: {work: jobs}\nurl: mysql://x")
        #expect(badURL?.message.contains("not a PostgreSQL URL") == true, "\(String(describing: badURL))")
        let unknownGroup = error("queues: {work: nowhere}")
        #expect(unknownGroup?.message.contains("nowhere") == true, "\(String(describing: unknownGroup))")
        let backoff = error("queues: {work: jobs}\nbackoff: {initial: 10s, max: 1s}")
        #expect(backoff?.path == "groups[1].settings.backoff.max", "\(String(describing: backoff))")
    }

    @Test("backoff grows by its factor up to its maximum, with half of it random")
    func backoffWithJitter() {
        let backoff = PostgresQueueConfiguration.Backoff(initial: .seconds(1), factor: 2, maximum: .seconds(10))
        #expect(backoff.delay(afterAttempt: 1, random: 1) == .seconds(1))
        #expect(backoff.delay(afterAttempt: 1, random: 0) == .milliseconds(500))
        #expect(backoff.delay(afterAttempt: 3, random: 1) == .seconds(4))
        #expect(backoff.delay(afterAttempt: 30, random: 1) == .seconds(10))
        #expect(backoff.delay(afterAttempt: 30, random: 0) == .seconds(5))
    }

    @Test("database addresses from URLs and PG variables; passwords stay out of descriptions")
    func databaseAddresses() throws {
        let tcp = try DatabaseAddress(url: "postgres://app:s%40cret@db.example:6543/orders?sslmode=require", environment: [:])
        #expect(tcp.host == "db.example" && tcp.port == 6543 && tcp.user == "app" && tcp.password == "s@cret")
        #expect(tcp.database == "orders" && tcp.tls == .require)
        #expect(!tcp.description.contains("s@cret"))
        let socket = try DatabaseAddress(url: "postgresql:///jobs?host=/run/postgresql&user=worker", environment: [:])
        #expect(socket.host == "/run/postgresql" && socket.user == "worker" && socket.database == "jobs" && socket.tls == .disable)
        let environment = try DatabaseAddress(
            url: nil, environment: ["PGHOST": "10.0.0.5", "PGPORT": "5433", "PGUSER": "u", "PGDATABASE": "d", "PGSSLMODE": "disable"])
        #expect(environment.host == "10.0.0.5" && environment.port == 5433 && environment.database == "d" && environment.tls == .disable)
        #expect(throws: DatabaseAddress.Problem.self) { try DatabaseAddress(url: "postgres://h:99999/d", environment: [:]) }
        #expect(throws: DatabaseAddress.Problem.self) { try DatabaseAddress(url: "postgres://h/d?sslmode=sometimes", environment: [:]) }
    }

    @Test("settings written by PostgresQueueGroup read back as the same configuration")
    func settingsRoundTrip() throws {
        var configuration = PostgresQueueConfiguration(url: "postgres://a@b/c", queues: [.init("mail", jobGroup: "mailers")])
        configuration.concurrency = 7
        configuration.backoff = .init(initial: .milliseconds(250), factor: 3, maximum: .seconds(60))
        let group = PostgresQueueGroup(configuration)
        #expect(try PostgresQueueConfiguration(settings: group.workerGroup.settings, path: "g") == configuration)
        #expect(group.workerGroup.jobGroups == [.name("mailers")])
    }
}
#endif

#if PostgresQueue
@Suite("docs/queue.md")
struct QueueDocumentationTests {
    @Test("the Queue keys table lists exactly the settings the group reads")
    func queueKeys() throws {
        // This file is Tests/PoolQueueTests/…: the repository is two folders up.
        let root = String(#filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/"))
        let text = try String(contentsOfFile: "\(root)/docs/queue.md", encoding: .utf8)
        var keys: [String] = []
        var inSection = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") { inSection = line.hasPrefix("### Queue keys") }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(3)
            if let end = cell.firstIndex(of: "`") { keys.append(String(cell[..<end])) }
        }
        #expect(Set(keys) == Set(PostgresQueueConfiguration.keys), "\(keys)")
        #expect(keys.count == PostgresQueueConfiguration.keys.count)
        // Every metric family the queue publishes is documented, with its type.
        for family in QueueMetrics.families {
            #expect(text.contains("| `\(family.name)` | \(family.kind.rawValue) |"), "\(family.name) is not in docs/queue.md")
        }
    }

    @Test("the published metrics are well-formed exposition text: HELP and TYPE for each family, escaped labels, cumulative buckets")
    func metricsText() {
        var metrics = QueueMetrics()
        metrics.observeClaim(waited: 0.002)
        metrics.observeClaim(waited: 0.2)
        metrics.observeClaim(waited: 1000)
        metrics.count(.done(result: ByteBuffer()))
        metrics.figures = [QueueFigures(queue: "mail", available: 3, scheduled: 1, retrying: 0, running: 2, dead: 1, doneLastMinute: 9, oldestAge: 1.5)]
        let text = metrics.render(group: "q\"1", connected: true)
        #expect(text.hasSuffix("\n"))
        for family in QueueMetrics.families {
            #expect(text.contains("# HELP \(family.name) ") && text.contains("# TYPE \(family.name) \(family.kind.rawValue)\n"))
        }
        #expect(text.contains("pooltop_queue_depth{group=\"q\\\"1\",queue=\"mail\",state=\"available\"} 3"), "\(text)")
        #expect(text.contains("pooltop_queue_claim_latency_seconds_bucket{group=\"q\\\"1\",le=\"0.0025\"} 1"))
        #expect(text.contains("pooltop_queue_claim_latency_seconds_bucket{group=\"q\\\"1\",le=\"0.25\"} 2"))
        #expect(text.contains("pooltop_queue_claim_latency_seconds_bucket{group=\"q\\\"1\",le=\"+Inf\"} 3"))
        #expect(text.contains("pooltop_queue_claimed_total{group=\"q\\\"1\"} 3"))
        #expect(text.contains("pooltop_queue_jobs_total{group=\"q\\\"1\",outcome=\"done\"} 1"))
    }
}
#endif

#if PostgresQueue
extension PostgresQueueConfigurationTests {
    @Test("recurring jobs are read with their schedules; a bad schedule names its key and line")
    func recurringJobs() throws {
        let pool = try load("queues: {work: jobs}\ncron:\n  nightly: {schedule: \"0 3 * * *\", queue: work, payload: go, priority: 2}")
        let queue = try #require(pool.groups.first { $0.name == "queue" })
        let configuration = try PostgresQueueConfiguration(settings: queue.settings, path: "groups[1]")
        #expect(configuration.cron == [.init("nightly", schedule: try CronSchedule("0 3 * * *"), queue: "work", payload: "go", priority: 2)])
        let bad = error("queues: {work: jobs}\ncron:\n  nightly: {schedule: \"0 25 * * *\", queue: work}")
        #expect(bad?.path == "groups[1].settings.cron.nightly.schedule" && bad?.line == 10, "\(String(describing: bad))")
        #expect(bad?.message.contains("is not a valid hour") == true)
        let noQueue = error("queues: {work: jobs}\ncron:\n  nightly: {schedule: \"@daily\"}")
        #expect(noQueue?.path == "groups[1].settings.cron.nightly.queue", "\(String(describing: noQueue))")
    }
}
#endif
