#if PostgresQueue
import PoolEngine

/// The PostgreSQL queue group: one service worker that claims jobs from PostgreSQL and runs
/// them on this pool's job groups (docs/queue.md).
///
/// ```swift
/// var queue = PostgresQueueConfiguration(url: "postgres://app@db/app", queues: [.init("emails", jobGroup: "mail")])
/// queue.concurrency = 64
/// try pool.describeGroup(PostgresQueueGroup(queue))
/// ```
/// In pool.yaml: `{kind: service, entryPoint: postgres-queue, settings: {url: …, queues: {emails: mail}}}`.
/// Register the entry point in the binary's ``EntryPoints`` with
/// ``PoolEngine/EntryPoints/registerPostgresQueue()`` (PoolTopCLI binaries built with the
/// `PostgresQueue` trait have it).
public struct PostgresQueueGroup: Sendable {
    public static let entryPoint = "postgres-queue"

    public var workerGroup: WorkerGroup

    public init(_ configuration: PostgresQueueConfiguration, name: String = "queue") {
        workerGroup = WorkerGroup(entryPoint: Self.entryPoint, kind: .service, minWorkers: 1, maxWorkers: 1, name: name)
        workerGroup.settings = configuration.settings
        Self.complete(&workerGroup, configuration)
    }

    /// What the settings imply for the group: it may send jobs to its queues' job groups, and
    /// it starts once they are ready and stops before them, so that a stopping pool's queue
    /// releases its claims while the job workers still answer.
    static func complete(_ group: inout WorkerGroup, _ configuration: PostgresQueueConfiguration) {
        for queue in configuration.queues {
            let reference = GroupReference.name(queue.jobGroup)
            if !group.jobGroups.contains(reference) { group.jobGroups.append(reference) }
            if !group.after.contains(where: { $0.group == reference }) { group.after.append(GroupDependency(reference, .ready)) }
        }
    }

    /// The settings check registered with the entry point (``SettingsCheck``).
    static let check: SettingsCheck = { group, path throws(ConfigurationError) in
        guard group.kind == .service else {
            throw ConfigurationError(path: "\(path).kind", message: "the postgres-queue entry point runs in a service group")
        }
        let configuration = try PostgresQueueConfiguration(settings: group.settings, path: path)
        if group.maxWorkers > 1 || group.minWorkers > 1 {
            // One claimer per pool: `concurrency` is the knob for more jobs at once.
            throw ConfigurationError(
                path: "\(path).max", message: "a postgres-queue group has one worker; raise settings.concurrency for more jobs at once")
        }
        complete(&group, configuration)
    }
}

extension EntryPoints {
    /// Registers the `postgres-queue` entry point and its settings check.
    public mutating func registerPostgresQueue() {
        register(PostgresQueueGroup.entryPoint, checkingSettings: PostgresQueueGroup.check) { PostgresQueueService() }
    }
}

extension WorkerPool {
    /// Adds the queue group (see ``PostgresQueueGroup``).
    public func describeGroup(_ group: PostgresQueueGroup) throws(CommandError) {
        try describeGroup(group.workerGroup)
    }
}

/// The queue group's worker.
struct PostgresQueueService: WorkerEntryPoint {
    private var runner: QueueRunner?

    mutating func initialize(worker: Worker) async throws {
        let configuration: PostgresQueueConfiguration
        do {
            configuration = try PostgresQueueConfiguration(settings: worker.group.settings, path: "groups[\(worker.group.name)]")
        } catch {
            throw WorkerExit.fatal("the postgres-queue group's settings are wrong: \(error)")
        }
        let address: DatabaseAddress
        do {
            address = try DatabaseAddress(url: configuration.url, environment: DatabaseAddress.processEnvironment())
        } catch {
            throw WorkerExit.fatal("the postgres-queue group's database address is wrong: \(error)")
        }
        runner = QueueRunner(worker: worker, configuration: configuration, address: address)
    }

    func run() async throws {
        guard let runner else { return }
        // A stop cancels the task running `run()`; the queue must outlive that to finish or
        // release its claims (it sees the stop through `awaitTermination`, and the watcher's
        // stop timeout still bounds it), so it runs in a task of its own.
        await Task { await runner.run() }.value
    }
}
#endif
