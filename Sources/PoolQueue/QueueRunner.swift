#if PostgresQueue
import Logging
import PoolEngine
import PostgresNIO

/// The queue's loop, in the `postgres-queue` worker: claims jobs in batches when notified (or
/// on the poll), runs each on the pool's job groups through the worker's job client, writes
/// outcomes back in batches, renews the leases of what runs, and puts back what a lost pool
/// left. One task owns all of its state; jobs report through the ``QueueInbox``.
///
/// The database going away costs no job: outcomes wait in memory and are written once it is
/// back (a claim whose lease ran out meanwhile is no longer ours, and its job runs again
/// elsewhere: at least once).
final class QueueRunner: Sendable {
    let worker: Worker
    let configuration: PostgresQueueConfiguration
    let address: DatabaseAddress
    let store: QueueStore
    let schema: QueueSchema
    /// Who claims, in `claimed_by` and the fleet view: host, pool and the watcher's pid.
    let owner: String
    let inbox = QueueInbox()
    private let jobGroups: [String: String]

    init(worker: Worker, configuration: PostgresQueueConfiguration, address: DatabaseAddress) {
        self.worker = worker
        self.configuration = configuration
        self.address = address
        self.store = QueueStore(schema: configuration.schema)
        self.schema = QueueSchema(schema: configuration.schema)
        self.owner = "\(PoolHost.name)/\(worker.pool.name)/\(worker.watcherPID)"
        self.jobGroups = Dictionary(configuration.queues.map { ($0.name, $0.jobGroup) }, uniquingKeysWith: { first, _ in first })
    }

    private var logger: Logger { worker.logger }

    /// Runs until the worker is asked to stop, then finishes or releases what it claimed.
    func run() async {
        publishEndpoint(State())
        defer { QueueEndpoint.withdraw(pool: worker.pool.name, group: worker.group.name) }
        await withDiscardingTaskGroup { group in
            group.addTask { [self] in
                await worker.awaitTermination()
                inbox.post(.stop)
            }
            group.addTask { [self] in await tick() }
            group.addTask { [self] in await listen() }
            await loop(jobs: &group)
            group.cancelAll()
        }
    }

    /// The loop's state: owned by the loop alone.
    private struct State {
        /// The open connection, and its calls in flight (abandoned when it closes).
        var open: OpenConnection?
        var connection: PostgresConnection? { open?.connection }
        var migrated = false
        /// When the database is unreachable: since when, why, and when to try again.
        var outage: (since: ContinuousClock.Instant, reason: String)?
        var reconnectAt: ContinuousClock.Instant?
        var reconnectDelay: Duration = .milliseconds(250)
        var running: [Int64: ClaimedJob] = [:]
        var outcomes: [(job: ClaimedJob, outcome: JobOutcome)] = []
        /// A claim or notification says more jobs may be waiting.
        var wantClaim = true
        var lastRenewal = ContinuousClock.now
        var lastTidy: ContinuousClock.Instant?
        var stopping = false
        var drainDeadline: ContinuousClock.Instant?
        var cancelled = false
        /// The firing of each recurring job this pool last offered to enqueue.
        var cronOffered: [String: Int64] = [:]
        var lastHeartbeat: ContinuousClock.Instant?
        /// Jobs the pool's job groups had finished at the last heartbeat, and when.
        var processedAtHeartbeat: (count: UInt64, at: ContinuousClock.Instant)?
        var metrics = QueueMetrics()
        /// The pool's shared memory, mapped once for the heartbeats.
        var poolState: PoolStateReader?
    }

    /// How often the pool refreshes its row in the fleet view; `pooltop fleet` calls a row
    /// stale after three of these.
    static let heartbeatInterval: Duration = .seconds(5)

    private func loop(jobs: inout DiscardingTaskGroup) async {
        var state = State()
        for await _ in inbox.wakes {
            for event in inbox.takeAll() {
                switch event {
                case .notified: state.wantClaim = true
                case .tick: state.wantClaim = true
                case .finished(let job, let outcome):
                    state.running[job.id] = nil
                    state.outcomes.append((job, outcome))
                    state.metrics.count(outcome)
                    count(outcome, running: state.running.count)
                case .stop:
                    if !state.stopping {
                        state.stopping = true
                        state.drainDeadline = .now + configuration.drain
                        logger.info("stopping: \(state.running.count) job(s) running, up to \(DurationParser.format(configuration.drain)) to finish")
                    }
                }
            }
            if state.stopping, !state.cancelled, let deadline = state.drainDeadline, ContinuousClock.now >= deadline,
                !state.running.isEmpty
            {
                // Their senders cancel them on the job workers; they come back `released`.
                logger.info("releasing \(state.running.count) job(s) still running after the drain")
                state.cancelled = true
                jobs.cancelAll()
            }
            await connectIfDue(&state)
            if state.connection != nil { await flush(&state) }
            if state.connection != nil, !state.stopping { await claim(&state, jobs: &jobs) }
            if state.connection != nil { await maintain(&state) }
            if state.connection != nil, !state.stopping { await enqueueRecurring(&state) }
            if state.connection != nil, !state.stopping { await heartbeat(&state) }
            if state.stopping, state.running.isEmpty {
                if state.outcomes.isEmpty { break }
                if state.connection == nil, let deadline = state.drainDeadline, ContinuousClock.now >= deadline {
                    // No database to tell: their leases expire and the jobs run again
                    // elsewhere (what at least once means).
                    logger.warning("stopping with \(state.outcomes.count) outcome(s) unwritten: the database is unreachable; their jobs run again after their lease")
                    break
                }
            }
        }
        PublishedMetrics.withdraw(pool: worker.pool.name, name: metricsName)
        if let connection = state.connection {
            // A stopped pool leaves the fleet view at once rather than going stale; best effort.
            try? await store.leaveFleet(instance: owner, on: connection, logger: logger)
            try? await connection.close()  // Closing is best effort at exit.
        }
        inbox.close()
    }

    // MARK: - Connection

    private func connectIfDue(_ state: inout State) async {
        if let connection = state.connection, !connection.isClosed { return }
        if state.connection != nil { lose(&state, reason: "the connection closed") }
        if let at = state.reconnectAt, ContinuousClock.now < at { return }
        do {
            let connection = try await PostgresConnection.connect(
                on: worker.eventLoopGroup.next(), configuration: try address.connectionConfiguration(), id: 1, logger: logger)
            // The prepared claim and completion name the tables without their schema.
            try await connection.query("SET search_path TO \(unescaped: configuration.schema)", logger: logger)
            if !state.migrated {
                let applied = try await schema.migrate(on: connection, logger: logger)
                if !applied.isEmpty { logger.info("schema \(configuration.schema) migrated to version \(applied.last ?? 0)") }
                state.migrated = true
            }
            state.open = OpenConnection(connection)
            if let outage = state.outage {
                state.metrics.reconnectCount += 1
                logger.notice("database reachable again after \(DurationParser.format(ContinuousClock.now - outage.since)): \(address)")
            } else {
                logger.info("claiming from \(configuration.queues.map(\.name).joined(separator: ", ")) at \(address)")
            }
            state.outage = nil
            state.reconnectAt = nil
            state.reconnectDelay = .milliseconds(250)
            state.wantClaim = true
            publishMetrics(state)
        } catch {
            lose(&state, reason: DatabaseFailure.describe(error))
        }
    }

    /// Marks the database unreachable and schedules the next try, with backoff up to 30 s.
    private func lose(_ state: inout State, reason: String) {
        if let connection = state.connection {
            state.open = nil
            Task { try? await connection.close() }  // It is already broken; closing only frees it.
        }
        if state.outage == nil {
            state.outage = (.now, reason)
            // Stale figures would mislead: the depth is left out until the next heartbeat.
            state.metrics.figures = []
            publishMetrics(state)
            logger.error("database unreachable (\(address)): \(reason); \(state.running.count) job(s) keep running, outcomes are kept until it is back")
        }
        state.reconnectAt = .now + state.reconnectDelay
        state.reconnectDelay = min(state.reconnectDelay * 2, .seconds(30))
        // The tick wakes the loop to try again.
    }

    /// Runs `body` on the connection; a failure that closed the connection marks an outage,
    /// any other is logged. Returns nil on failure.
    private func attempt<T: Sendable>(
        _ what: String, _ state: inout State, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async -> T? {
        guard let open = state.open else { return nil }
        let connection = open.connection
        do {
            return try await open.run(body)
        } catch {
            if connection.isClosed || error is ConnectionClosed || DatabaseFailure.isConnectionFailure(error) {
                lose(&state, reason: DatabaseFailure.describe(error))
            } else {
                logger.error("\(what) failed: \(DatabaseFailure.describe(error))")
            }
            return nil
        }
    }

    // MARK: - Work

    private func flush(_ state: inout State) async {
        guard !state.outcomes.isEmpty else { return }
        let outcomes = state.outcomes
        let keepDone = configuration.keepDone > .zero
        let dead = await attempt("writing \(outcomes.count) outcome(s)", &state) { [self] connection in
            try await store.record(outcomes, retries: configuration.retries, keepDone: keepDone, on: connection, logger: logger)
        }
        guard let dead else { return }
        state.outcomes.removeAll(keepingCapacity: true)
        state.metrics.dead += UInt64(dead)
        if dead > 0 { logger.warning("\(dead) job(s) dead after their last attempt (pooltop dead lists them)") }
    }

    private func claim(_ state: inout State, jobs: inout DiscardingTaskGroup) async {
        let room = configuration.concurrency - state.running.count
        guard state.wantClaim, room > 0 else { return }
        let token = Int64.random(in: 1...Int64.max)
        let queues = configuration.queues.map(\.name)
        let claimed = await attempt("claiming", &state) { [self] connection in
            try await store.claim(
                queues: queues, limit: room, lease: configuration.lease, owner: owner, claim: token, on: connection,
                logger: logger)
        }
        guard let claimed else { return }
        // A full batch means more may wait: claim again as soon as there is room.
        state.wantClaim = claimed.count == room
        if state.wantClaim { inbox.post(.notified) }
        guard !claimed.isEmpty else { return }
        let running = state.running.count + claimed.count
        worker.recordActivity { activity in
            activity.jobsAccepted += UInt64(claimed.count)
            activity.jobsInFlight = UInt64(running)
        }
        for job in claimed {
            state.metrics.observeClaim(waited: job.waited)
            state.running[job.id] = job
            jobs.addTask { [self] in inbox.post(.finished(job, await execute(job))) }
        }
    }

    /// Runs one job on its job group and says how it ended.
    private func execute(_ job: ClaimedJob) async -> JobOutcome {
        guard let group = jobGroups[job.queue] else {
            return .failed(error: "queue '\(job.queue)' has no job group in this pool", delay: .zero, permanent: true)
        }
        do {
            let result = try await worker.jobs.submit(
                Array(job.payload.readableBytesView), to: .name(group), priority: job.priority, weight: job.weight,
                timeout: configuration.jobTimeout)
            return .done(result: ByteBuffer(bytes: result.payload))
        } catch {
            switch error.code {
            case .handlerFailed, .timedOut, .workerLost:
                let delay = configuration.backoff.delay(afterAttempt: job.attempt, random: Double.random(in: 0...1))
                return .failed(error: error.description, delay: delay, permanent: false)
            case .rejected, .noWorkerAvailable:
                // It never ran: back to the queue, its attempt not counted, soon.
                return .released(delay: .seconds(1))
            case .cancelled:
                return .released(delay: .zero)
            case .tooLarge, .notAllowed, .badRequest:
                return .failed(error: error.description, delay: .zero, permanent: true)
            }
        }
    }

    private func count(_ outcome: JobOutcome, running: Int) {
        worker.recordActivity { activity in
            switch outcome {
            case .done: activity.jobsProcessed += 1
            case .failed: activity.jobsErrors += 1
            case .released: activity.jobsRejected += 1
            }
            activity.jobsInFlight = UInt64(running)
        }
    }

    /// Renews the leases of what runs here (every third of the lease); puts back jobs whose
    /// lease ran out and deletes old done jobs (every lease).
    private func maintain(_ state: inout State) async {
        let now = ContinuousClock.now
        if now - state.lastRenewal >= configuration.lease / 3 {
            let running = Array(state.running.values)
            let held = await attempt("renewing \(running.count) lease(s)", &state) { [self] connection in
                try await store.renew(running, lease: configuration.lease, on: connection, logger: logger)
            }
            guard let held else { return }
            state.lastRenewal = now
            if held < running.count {
                logger.warning("\(running.count - held) running job(s) lost their lease (the database was away too long); another pool may run them again")
            }
        }
        if state.lastTidy.map({ now - $0 >= configuration.lease }) ?? true {
            let recovered = await attempt("recovering expired leases", &state) { [self] connection in
                try await store.recoverExpired(retries: configuration.retries, on: connection, logger: logger)
            }
            guard let recovered else { return }
            state.metrics.recovered += UInt64(recovered)
            if recovered > 0 {
                logger.warning("\(recovered) job(s) put back: their pool stopped renewing their lease")
                state.wantClaim = true
                inbox.post(.notified)
            }
            if configuration.keepDone > .zero {
                guard
                    await attempt("deleting old done jobs", &state, { [self] connection in
                        try await store.prune(keep: configuration.keepDone, on: connection, logger: logger)
                    }) != nil
                else { return }
            }
            state.lastTidy = now
        }
    }

    // MARK: - Recurring jobs and the fleet view

    /// Offers each recurring job's latest firing once; the database decides which pool enqueues it.
    private func enqueueRecurring(_ state: inout State) async {
        guard !configuration.cron.isEmpty else { return }
        let now = Int64(PoolHost.wallClock)
        for job in configuration.cron {
            guard let tick = job.schedule.latest(atOrBefore: now), state.cronOffered[job.name] != tick else { continue }
            let enqueued = await attempt("enqueueing recurring job \(job.name)", &state) { [self] connection in
                try await store.enqueueCron(job, tick: tick, on: connection, logger: logger)
            }
            guard let enqueued else { return }  // Offered again on the next tick.
            state.cronOffered[job.name] = tick
            if let id = enqueued { logger.info("recurring job \(job.name): firing at \(tick) enqueued as job \(id) in \(job.queue)") }
        }
    }

    /// Refreshes this pool's row in the fleet view every ``heartbeatInterval``.
    private func heartbeat(_ state: inout State) async {
        let now = ContinuousClock.now
        if let last = state.lastHeartbeat, now - last < Self.heartbeatInterval { return }
        if state.poolState == nil { state.poolState = try? worker.poolState() }  // No segment: nothing to report yet.
        guard let reader = state.poolState else { return }
        let snapshot = reader.snapshot()
        let processed = snapshot.workers.filter { worker in
            snapshot.groups.contains { $0.id == worker.groupID && $0.kind == .job }
        }.reduce(UInt64(0)) { $0 + $1.activity.jobsProcessed }
        var rate = 0.0
        if let previous = state.processedAtHeartbeat, processed >= previous.count {
            rate = Double(processed - previous.count) / max(0.001, (now - previous.at).seconds)
        }
        let summary = snapshot.groups.map { "\($0.name) \($0.ready)/\($0.desired)" }.joined(separator: ", ")
        let member = FleetMember(
            instance: owner, host: PoolHost.name, pool: worker.pool.name, pid: worker.watcherPID, version: PoolHost.version,
            summary: summary, workersReady: snapshot.groups.reduce(0) { $0 + $1.ready },
            workersTotal: snapshot.groups.reduce(0) { $0 + $1.desired }, jobsPerSecond: rate)
        guard
            await attempt("refreshing the fleet view", &state, { [self] connection in
                try await store.heartbeat(member, on: connection, logger: logger)
            }) != nil
        else { return }
        state.lastHeartbeat = now
        state.processedAtHeartbeat = (processed, now)
        let queues = configuration.queues.map(\.name)
        if let figures = await attempt("reading the queues' figures", &state, { [self] connection in
            try await store.figures(queues: queues, on: connection, logger: logger)
        }) {
            state.metrics.figures = figures
        }
        publishMetrics(state)
    }

    /// Writes where the group works and whether it is connected (`pooltop queue NAME`,
    /// `pooltop status`); a failure costs only those views, so it is logged at debug level.
    private func publishEndpoint(_ state: State) {
        var endpoint = QueueEndpoint(group: worker.group.name, address: address, configuration: configuration)
        endpoint.connected = state.connection != nil && state.outage == nil
        if let outage = state.outage {
            endpoint.outageSince = PoolHost.wallClock - (ContinuousClock.now - outage.since).seconds
            endpoint.outageReason = outage.reason
        }
        endpoint.running = state.running.count
        do {
            try endpoint.publish(pool: worker.pool.name)
        } catch {
            logger.debug("cannot publish the queue's endpoint: \(error)")
        }
    }

    /// The name of this group's file of published metrics.
    private var metricsName: String { "queue-\(worker.group.name)" }

    /// Publishes the queue's metric families for the pool's exposition; a failure costs only
    /// the metrics, so it is logged, at debug level as it may repeat every heartbeat.
    private func publishMetrics(_ state: State) {
        publishEndpoint(state)
        let text = state.metrics.render(group: worker.group.name, connected: state.connection != nil && state.outage == nil)
        do {
            try PublishedMetrics.publish(text, pool: worker.pool.name, name: metricsName)
        } catch {
            logger.debug("cannot publish the queue's metrics: \(error)")
        }
    }

    // MARK: - Wakes

    /// Wakes the loop for polling, renewals and reconnects.
    private func tick() async {
        let interval = min(configuration.poll, configuration.lease / 3)
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            inbox.post(.tick)
        }
    }

    /// Listens on its own connection, reconnecting with backoff; every notification for one of
    /// our queues wakes the loop, and so does every (re)connect, which may have missed some.
    private func listen() async {
        var delay: Duration = .milliseconds(250)
        let queues = Set(configuration.queues.map(\.name))
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    on: worker.eventLoopGroup.next(), configuration: try address.connectionConfiguration(), id: 2,
                    logger: logger)
                defer { Task { try? await connection.close() } }  // Best effort: the loop is leaving.
                try await connection.listen(on: schema.channel) { notifications in
                    delay = .milliseconds(250)
                    inbox.post(.notified)
                    for try await notification in notifications where queues.contains(notification.payload) {
                        inbox.post(.notified)
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listening failed: \(DatabaseFailure.describe(error)); again in \(DurationParser.format(delay))")
            }
            do { try await Task.sleep(for: delay) } catch { return }
            delay = min(delay * 2, .seconds(30))
        }
    }
}
#endif
