import Logging
import ServiceLifecycle
import Synchronization

/// A pool of worker processes in groups: describe the groups, then `run()`.
///
/// ```swift
/// let pool = WorkerPool(name: "app", entryPoints: entryPoints)
/// try pool.describeGroup(WorkerGroup(entryPoint: "http", kind: .reactor, minWorkers: 4))
/// try await pool.run()   // returns when every slot has stopped for good
/// ```
/// The process that calls `run()` is the watcher: it spawns, watches, restarts and scales the
/// workers and runs no user code. It is a swift-service-lifecycle `Service`: in a `ServiceGroup`,
/// a graceful shutdown stops the pool. Cancelling the task that runs it stops the pool too.
public final class WorkerPool: Service, Sendable {
    /// Pool-wide settings.
    public struct Configuration: Sendable {
        /// How long a stopping worker may take before it is killed (a group may override it).
        public var stopTimeout: Duration
        /// A file to hold our pid under an exclusive lock while the pool runs; nil for none.
        public var pidFile: String?
        /// Whether the pool traps SIGTERM/SIGINT/SIGHUP (stop), SIGUSR1 (hard restart) and
        /// SIGUSR2 (soft restart). Turn it off when the host program handles signals itself.
        public var handlesSignals: Bool
        /// The level worker loggers start at.
        public var workerLogLevel: Logger.Level
        /// How often the watcher samples each worker's RSS and CPU time from /proc while someone
        /// looks (a console, `status`, an events stream) or a group has a recycle quota; nil for never.
        public var sampleInterval: Duration?
        /// How often it samples them while nobody looks: an idle pool then costs next to nothing.
        /// The workers of a group with a memory quota are sampled at `sampleInterval` always.
        public var backgroundSampleInterval: Duration
        /// Where workers' stdout and stderr go: nil inherits the watcher's (`pooltop run`);
        /// a file name puts them in that file of the runtime directory (the console does, so
        /// a worker's print or crash report cannot scribble over the screen).
        public var workerOutputFile: String?
        /// How operators' job submissions (`submitJob`, `pooltop job`, the console) wait for
        /// their answers; see ``JobWaitPolicy``.
        public var jobWait: JobWaitPolicy
        /// Log lines (and spawn, ready and exit markers) kept per worker, across its restarts:
        /// what `pooltop logs` and a console that attaches later are given.
        public var logHistory: Int
        /// The combined stream written to a file, rotated by size; nil for none.
        public var logFile: LogFileSettings?
        /// How much of the pool's past the flight recorder keeps, a frame a second, in
        /// `flight.rec` of its state directory (`pooltop replay`); nil records nothing.
        public var recordFor: Duration?

        public init(
            stopTimeout: Duration = .seconds(10),
            pidFile: String? = nil,
            handlesSignals: Bool = true,
            workerLogLevel: Logger.Level = .info,
            sampleInterval: Duration? = .seconds(1),
            backgroundSampleInterval: Duration = .seconds(10),
            workerOutputFile: String? = nil,
            jobWait: JobWaitPolicy = .suspend,
            recordFor: Duration? = PoolConfiguration.defaultRecordFor,
            logHistory: Int = EventLog.defaultPerWorker,
            logFile: LogFileSettings? = nil
        ) {
            self.logHistory = logHistory
            self.logFile = logFile
            self.jobWait = jobWait
            self.recordFor = recordFor
            self.backgroundSampleInterval = backgroundSampleInterval
            self.workerOutputFile = workerOutputFile
            self.stopTimeout = stopTimeout
            self.pidFile = pidFile
            self.handlesSignals = handlesSignals
            self.workerLogLevel = workerLogLevel
            self.sampleInterval = sampleInterval
        }
    }

    /// How a restart of the whole pool proceeds.
    public enum RestartMode: Sendable {
        /// Stop every worker, wait until all have exited, start them all again.
        case hard
        /// Ask every worker to finish; each is replaced as soon as it exits.
        case soft
    }

    enum Phase {
        case describing([WorkerGroup])
        case running(description: PoolDescription, monitor: EventMonitor)
        /// nil: run() failed before the pool was described (``endBeforeStart()``).
        case finished(PoolDescription?)
    }

    struct State: ~Copyable {
        var phase: Phase = .describing([])
        /// Requests sent before `run()` built its monitor; posted as soon as it has.
        var early: [WatcherRequest] = []
        var stopRequested = false
        var subscribers: [Int: AsyncStream<PoolEvent>.Continuation] = [:]
        var recordSubscribers: [Int: AsyncStream<PoolEventRecord>.Continuation] = [:]
        var nextSubscriber = 0
        /// Recent events and each worker's log history, replayed to new `events` clients.
        var log = EventLog()
        var hardRestarts = 0
        var softRestarts = 0
        var reader: PoolStateReader?
        var operatorJobs: JobClient?
        /// The log file while the pool runs (`logFile`).
        var logFile: LogFile?
        /// The flight recorder while the pool runs: every published event goes into its next frame.
        var recorder: FlightRecorder?
    }

    public let name: String
    public let configuration: Configuration
    let entryPoints: EntryPoints?
    private let logger: Logger
    /// Everything the API and the watcher share; reached from this file and its extensions.
    let state = Mutex(State())
    /// Whether anyone looks at the live figures: the watcher samples /proc at full rate only then.
    private let viewers = ViewerTracker()

    /// - Parameters:
    ///   - name: The pool's name: letters, digits, `-`, `_` and `.`; it names its runtime files.
    ///   - entryPoints: When given, `run()` refuses groups whose entry point is not registered.
    ///     Leave it nil only when workers run another executable (``WorkerRunner/executable``).
    public init(
        name: String,
        entryPoints: EntryPoints? = nil,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "pooltop")
    ) {
        self.name = name
        self.entryPoints = entryPoints
        self.configuration = configuration
        self.logger = logger
        state.withLock { $0.log = EventLog(perWorker: configuration.logHistory) }
    }

    /// Adds a group. Groups are frozen once `run()` starts: describing one later throws.
    public func describeGroup(_ group: WorkerGroup) throws(CommandError) {
        try state.withLock { state throws(CommandError) in
            guard case .describing(var groups) = state.phase else {
                throw CommandError(.misuse, "groups cannot be described after run() started")
            }
            groups.append(group)
            state.phase = .describing(groups)
        }
    }

    /// The pool's description once `run()` has validated it, as `apply` last changed it.
    public var poolDescription: PoolDescription? {
        state.withLock { state in
            switch state.phase {
            case .describing: return nil
            case .running(let description, _): return description
            case .finished(let description): return description
            }
        }
    }

    /// Hard and soft restarts of the last `run()`, set when it returns: (0, 0) before and while
    /// it runs. The running figures are in ``snapshot()`` (`pool.restarts`).
    public var restartCounts: (hard: Int, soft: Int) {
        state.withLock { ($0.hardRestarts, $0.softRestarts) }
    }

    /// The pool's live state from its shared memory; nil before `run()` set it up or after it ended.
    public func snapshot() -> PoolSnapshot? {
        let reader = state.withLock { state -> PoolStateReader? in
            if case .running = state.phase { return state.reader }
            return nil
        }
        guard let reader else { return nil }
        if viewers.noteView() { submit(.sampleNow) }
        return reader.snapshot()
    }

    /// An events stream (an attached console, `logs --follow`) opened: sample at full rate while it lasts.
    func viewerStreamStarted() {
        if viewers.streamStarted() { submit(.sampleNow) }
    }

    func viewerStreamEnded() { viewers.streamEnded() }

    /// Validates the groups without running anything.
    public func validate() throws(ConfigurationError) -> PoolDescription {
        let groups = state.withLock { state -> [WorkerGroup] in
            if case .describing(let groups) = state.phase { return groups }
            return []
        }
        return try PoolValidator.validate(
            name: name, stopTimeout: configuration.stopTimeout, groups: groups,
            entryPoints: entryPoints)
    }

    /// Runs the pool until every slot has stopped for good (all workers exited under their
    /// restart policy, or `stop()`), then returns.
    ///
    /// - Throws: ``ConfigurationError`` when the groups are invalid (nothing is started);
    ///   ``CommandError`` (`misuse`) when `run()` was already called; ``PoolStartError`` when
    ///   the pool cannot start (its name is taken, a listener cannot bind, shared memory cannot
    ///   be created); ``PoolFailure`` when a worker failed fatally or the pool gave up on
    ///   workers; ``SystemCallError`` when the watcher cannot set itself up.
    public func run() async throws {
        let description: PoolDescription
        let monitor: EventMonitor
        do {
            description = try validate()
            // The watcher's thread-to-be: requests queue in it until its thread starts.
            monitor = try EventMonitor()
        } catch {
            // The pool will never run: `awaitStart()` and early commands, made before this call
            // or after it, must not wait for it.
            endBeforeStart()
            throw error
        }
        try state.withLock { state throws(CommandError) in
            guard case .describing = state.phase else {
                throw CommandError(.misuse, "run() was already called on pool '\(name)'")
            }
            state.phase = .running(description: description, monitor: monitor)
            for request in state.early { monitor.post(request) }
            state.early = []
        }
        defer { finish(description, monitor: monitor) }

        // Descriptors: two per worker, one per listener socket, one per control connection.
        // A refusal is not fatal: running out later is a spawn failure with backoff.
        do {
            let (before, after) = try Posix.raiseDescriptorLimit()
            if after != before { logger.debug("raised the open-descriptor limit from \(before) to \(after)") }
        } catch {
            logger.warning("cannot raise the open-descriptor limit (\(Posix.descriptorLimit()) now): \(error)")
        }

        let pidFile = try configuration.pidFile.map { try PIDFile(path: $0, poolName: name) }
        defer { pidFile?.release() }
        if let settings = configuration.logFile {
            do {
                let file = try LogFile(settings)
                state.withLock { $0.logFile = file }
            } catch {
                throw PoolStartError(code: .logFile, message: "cannot open the log file \(settings.path) (logFile): \(error)")
            }
        }
        defer { state.withLock { $0.logFile = nil } }

        // One watcher per pool name: the runtime directory's lock says who; a stale directory,
        // socket or segment left by a killed watcher is replaced here.
        let runtime = try RuntimeDirectory.claim(pool: name)
        defer { runtime.release() }
        // A crash removes these too (the directory once the orphaned workers took their sockets).
        let runtimeGuards = [runtime.directory, "\(runtime.directory)/watcher.lock", "\(runtime.directory)/workers.log"]
            .compactMap { CrashGuard.removeOnCrash($0) }
        defer { for registration in runtimeGuards { registration.release() } }
        let segment: SharedSegment
        do {
            segment = try SharedSegment.create(
                name: SharedLayout.segmentName(pool: name, uid: Posix.userID), pool: description,
                watcherPID: Posix.processID, startedAt: Posix.wallClockNanoseconds())
        } catch let error as SystemCallError {
            // /dev/shm full or not writable: the errno stays readable to a caller.
            throw PoolStartError(
                code: .sharedState, message: "cannot create the shared-memory segment of pool '\(name)'", underlying: error)
        } catch {
            throw PoolStartError(code: .sharedState, message: "cannot create the shared-memory segment of pool '\(name)': \(error)")
        }
        defer { Posix.unlinkSharedMemory(name: segment.name) }
        let segmentGuard = CrashGuard.removeOnCrash("/dev/shm\(segment.name)")
        defer { segmentGuard?.release() }
        let sharedState = SharedStatePublisher(segment: segment, pool: description)
        defer { sharedState.setPoolState(.stopped) }
        let operatorJobs = JobClient(
            pool: description, senderID: nil, senderGroup: nil, allowed: nil, runtimeDirectory: runtime.directory,
            reader: PoolStateReader(segment: segment), pickup: LeastJobsPickup(),
            requestScale: { [weak self] group in self?.submit(.input(.scaleUpRequested(group))) },
            countPickupMiss: { [weak self] group in
                segment.countPickupMiss(group: group)
                if segment.takeDozeBell() { self?.submit(.sharedMemoryChanged) }
            }, wait: configuration.jobWait)
        state.withLock { state in
            state.reader = PoolStateReader(segment: segment)
            state.operatorJobs = operatorJobs
        }

        Posix.ignoreSignal(PosixSignal.pipe)
        let signals = configuration.handlesSignals ? try SignalRoute(monitor: monitor) : nil
        defer { signals?.restore() }

        // Bound before any worker starts: a bad listener fails run() with nothing half-started.
        // Sockets systemd passed (socket activation) are served instead of binding new ones.
        let listeners = try ListenerSockets.bindInitial(pool: description, activation: SocketActivation.fromEnvironment())
        for listener in listeners.activatedListeners { logger.info("serving the socket systemd passed for listener \(listener)") }
        for socket in listeners.unmatched {
            logger.warning("systemd passed socket \(socket), which no listener of pool '\(name)' serves; it was closed")
        }
        defer { listeners.closeAll() }
        // Post-mortems and the flight recording outlive the pool (and a SIGKILL of it): a state
        // directory that cannot be used costs them, not the pool.
        let stateDirectory: String?
        do {
            stateDirectory = try StateDirectory.claim(pool: name)
        } catch {
            stateDirectory = nil
            logger.warning("no post-mortems (pooltop why) and no flight recording (pooltop replay): \(error)")
        }
        var postMortemFile: PostMortemFile?
        do {
            postMortemFile = try stateDirectory.map { try PostMortemFile(directory: $0) }
        } catch {
            logger.warning("post-mortems will not be kept (pooltop why): \(error)")
        }
        var recorder: FlightRecorder?
        if let recordFor = configuration.recordFor, let stateDirectory {
            do {
                let file = try FlightRecordingFile(
                    directory: stateDirectory, pool: name,
                    capacity: FlightRecordingFile.capacity(recordFor: recordFor, groups: description.groupCapacity, slots: description.slotCapacity),
                    recordFor: recordFor)
                recorder = FlightRecorder(file: file, reader: PoolStateReader(segment: segment))
                state.withLock { $0.recorder = recorder }
            } catch {
                logger.warning("the flight recorder is off (pooltop replay): \(error)")
            }
        }
        defer { state.withLock { $0.recorder = nil } }
        let finished = OneShot<WatcherOutcome>()
        let watcher = try Watcher(
            pool: description, monitor: monitor, logger: logger, workerLogLevel: configuration.workerLogLevel,
            sharedState: sharedState, sampleInterval: configuration.sampleInterval,
            backgroundSampleInterval: configuration.backgroundSampleInterval,
            isViewed: { [viewers] in viewers.isViewed },
            // Under systemd `Type=notify`: READY, STATUS, RELOADING, STOPPING and the watchdog.
            notifier: SystemdNotifier(),
            runtimeDirectory: runtime.directory,
            workerOutput: try configuration.workerOutputFile.map { try Posix.openForAppending("\(runtime.directory)/\($0)") },
            listeners: listeners,
            postMortems: PostMortemRecorder(file: postMortemFile),
            recorder: recorder,
            publish: { [weak self] event in self?.publish(event) },
            onFinish: { outcome in finished.fulfill(outcome) })
        let control: ControlServer
        do {
            control = try await ControlServer.start(path: runtime.controlSocketPath, pool: self, logger: logger)
        } catch {
            throw PoolStartError(
                code: .sharedState, message: "cannot open the control socket \(runtime.controlSocketPath): \(error)")
        }
        let controlGuard = CrashGuard.removeOnCrash(runtime.controlSocketPath)
        defer { controlGuard?.release() }
        sharedState.setPoolState(.running)
        // From here on the watcher lives on the monitor thread.
        try monitor.start { event in watcher.handle(event) }
        defer { monitor.shutdown() }
        logger.info(
            "pool \(name) starting",
            metadata: ["groups": "\(description.groups.map(\.name).joined(separator: ","))", "pid": "\(Posix.processID)"])

        let outcome = await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                // Not ended by cancellation: a cancelled run() stops the pool and still waits for it.
                await finished.value()
            } onGracefulShutdown: {
                self.stop()
            }
        } onCancel: {
            self.stop()
        }
        let failure = outcome.failure
        state.withLock { state in
            state.hardRestarts = outcome.hardRestarts
            state.softRestarts = outcome.softRestarts
        }
        sharedState.setPoolState(.stopped)
        // Clients streaming events get the end of their stream before the socket goes.
        finishSubscribers()
        await control.shutdown()
        await operatorJobs.shutdown()
        logger.info("pool \(name) stopped")
        if let failure { throw failure }
    }

    /// Stops the pool: every worker is asked to stop and killed after its stop timeout.
    /// A second call while stopping kills the remaining workers at once.
    public func stop() {
        submit(.input(.stopRequested(reason: "stop requested")))
    }

    /// Restarts every worker, hard or soft (see ``RestartMode``). Also on SIGUSR1 (hard) and SIGUSR2 (soft).
    public func restart(_ mode: RestartMode) {
        submit(.input(.restartRequested(hard: mode == .hard)))
    }

    /// Restarts one worker: a running one is asked to stop and replaced; a stopped, backing-off
    /// or given-up one is started at once.
    /// With `hard`, a running worker is killed at once instead of being asked to finish.
    public func restartWorker(_ id: WorkerID, hard: Bool = false) async throws(CommandError) {
        try await command(.restartWorker(id, hard: hard))
    }

    /// Restarts every running worker of a group; each is replaced as soon as it exits.
    /// With `hard`, they are killed at once instead of being asked to finish.
    public func restartGroup(_ group: GroupReference, hard: Bool = false) async throws(CommandError) {
        try await command(.restartGroup(try resolve(group).id, hard: hard))
    }

    /// Kills one worker with SIGKILL now, as a crash would: its restart policy brings it back.
    /// For rehearsing recovery; to replace a worker gracefully use ``restartWorker(_:hard:)``.
    public func killWorker(_ id: WorkerID) async throws(CommandError) {
        try await command(.killWorker(id))
    }

    /// Stops one worker and keeps its slot stopped; the group's desired count drops by one.
    public func stopWorker(_ id: WorkerID) async throws(CommandError) {
        try await command(.stopWorker(id))
    }

    /// Replaces a group's running workers one at a time, never running fewer than before; see
    /// ``RollingRestart`` for the steps. Returns how many were replaced once the roll is over.
    ///
    /// - Throws: ``CommandError`` `busy` when a roll of the group is already under way, `failed`
    ///   when a replacement did not get ready (the workers not yet reached are left running),
    ///   `notRunning` when the pool stopped or restarted meanwhile.
    @discardableResult
    public func rollingRestart(_ group: GroupReference) async throws(CommandError) -> Int {
        try await command(.rollingRestart(try resolve(group).id))
    }

    func resolve(_ group: GroupReference) throws(CommandError) -> GroupDescription {
        guard let description = poolDescription else {
            throw CommandError(.notRunning, "the pool is not running")
        }
        guard let target = description.group(group) else {
            throw CommandError(
                .noSuchGroup, "no group '\(group)'; groups are: \(description.groups.map(\.name).joined(separator: ", "))")
        }
        return target
    }

    /// Scales a group to `count` workers, within its `minWorkers...maxWorkers`.
    public func scale(_ group: GroupReference, to count: Int) async throws(CommandError) {
        try await command(.scale(try resolve(group).id, to: count))
    }

    /// Submits a job as an operator (`pooltop job`, the console) to any group whose workers run
    /// jobs, and waits for its result; see ``JobClient/submit(_:to:priority:weight:timeout:retries:)-(([UInt8],_,_,_,_,_))``.
    public func submitJob(
        _ payload: [UInt8], to group: GroupReference, priority: Int = 0, weight: Int = 1, timeout: Duration? = nil,
        retries: Int = 0
    ) async throws(JobError) -> JobResult {
        let client = state.withLock { state -> JobClient? in
            if case .running = state.phase { return state.operatorJobs }
            return nil
        }
        guard let client else { throw JobError(code: .noWorkerAvailable, message: "the pool is not running") }
        return try await client.submit(payload, to: group, priority: priority, weight: weight, timeout: timeout, retries: retries)
    }

    /// Waits until no worker is starting: each one that was started is ready or has exited.
    /// Returns at once when the pool has finished.
    public func awaitStart() async {
        await withCheckedContinuation { continuation in
            let finished = state.withLock { state -> Bool in
                if case .finished = state.phase { return true }
                return false
            }
            if finished {
                continuation.resume()
            } else {
                submit(.awaitStart(continuation))
            }
        }
    }

    /// Closes the pool to commands, answers those still queued, and ends every event stream.
    private func finish(_ description: PoolDescription, monitor: EventMonitor) {
        state.withLock { state in
            // The description as `apply` left it.
            if case .running(let current, _) = state.phase { state.phase = .finished(current) } else { state.phase = .finished(description) }
        }
        finishSubscribers()
        // No request can be posted any more; those the watcher never saw are answered here.
        answerUnseen(monitor.shutdown(), "the pool has stopped")
    }

    /// Ends a pool whose run() failed before it started (an invalid description): what was
    /// asked of it meanwhile is answered, and it is finished as a stopped pool is.
    private func endBeforeStart() {
        let early = state.withLock { state -> [WatcherRequest] in
            // A second run() while one is under way fails on its own; this one's pool goes on.
            guard case .describing = state.phase else { return [] }
            state.phase = .finished(nil)
            defer { state.early = [] }
            return state.early
        }
        finishSubscribers()
        answerUnseen(early, "the pool did not start")
    }

    private func answerUnseen(_ requests: [WatcherRequest], _ reason: String) {
        for request in requests {
            switch request {
            case .input, .sampleNow, .sharedMemoryChanged: break
            case .command(_, let reply): reply(.failure(CommandError(.notRunning, reason)))
            case .awaitStart(let continuation): continuation.resume()
            }
        }
    }

    private func submit(_ request: WatcherRequest) {
        let refused = state.withLock { state -> WatcherRequest? in
            switch state.phase {
            case .describing:
                state.early.append(request)
                return nil
            case .running(_, let monitor):
                return monitor.post(request) ? nil : request
            case .finished:
                return request
            }
        }
        if case .awaitStart(let continuation) = refused { continuation.resume() }
    }

    /// Sends a command to the watcher and waits for its answer.
    @discardableResult
    func command(_ command: WatcherCommand) async throws(CommandError) -> Int {
        let reply = await withCheckedContinuation { (continuation: CheckedContinuation<CommandReply, Never>) in
            let posted = state.withLock { state -> Bool in
                guard case .running(_, let monitor) = state.phase else { return false }
                return monitor.post(.command(command, reply: { continuation.resume(returning: $0) }))
            }
            if !posted { continuation.resume(returning: .failure(CommandError(.notRunning, "the pool is not running"))) }
        }
        return try reply.get()
    }
}
