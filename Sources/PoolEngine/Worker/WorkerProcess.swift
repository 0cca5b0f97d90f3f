import Logging
import CPoolShims
import NIOCore
import NIOPosix
import Synchronization

/// The worker side of the process boundary: how a spawned process becomes a worker.
///
/// The watcher and its workers are one executable. Call ``runIfWorker(entryPoints:)`` first
/// thing in `main`: in a worker it runs the entry point and exits; in the watcher it returns at once.
/// ```swift
/// @main struct App {
///     static func main() async throws {
///         var entryPoints = EntryPoints()
///         entryPoints.register("jobs") { JobWorker() }
///         await WorkerProcess.runIfWorker(entryPoints: entryPoints)   // never returns in a worker
///         let pool = WorkerPool(name: "app", entryPoints: entryPoints)
///         try pool.describeGroup(WorkerGroup(entryPoint: "jobs", kind: .job, minWorkers: 2))
///         try await pool.run()
///     }
/// }
/// ```
public enum WorkerProcess {
    /// The environment variable naming the inherited control-channel descriptor.
    static let controlFDVariable = "POOLTOP_CONTROL_FD"
    /// Set in a standby process, to its group's name: it waits for its bootstrap as long as the
    /// channel is open.
    static let standbyVariable = "POOLTOP_STANDBY"
    /// Set, besides ``standbyVariable``, in a fork server (decision 0028): each bootstrap it
    /// reads is forked into a worker, and it reads the next.
    static let forkServerVariable = "POOLTOP_FORK_SERVER"
    /// How long a worker waits for its bootstrap message before giving up.
    static let bootstrapTimeoutMilliseconds: Int32 = 5_000
    /// How long a worker whose watcher died may take to finish before it exits anyway.
    static let orphanGraceMilliseconds: UInt32 = 900

    /// Exit codes of a worker process, for the cases where no report could be sent.
    enum ExitCode {
        static let clean: Int32 = 0
        static let failed: Int32 = 1
        static let noBootstrap: Int32 = 78
        static let watcherLost: Int32 = 75
    }

    /// Whether this process was spawned as a worker.
    public static var isWorker: Bool { Posix.getenv(controlFDVariable) != nil }

    /// In a worker process: runs its entry point and exits with the outcome. Elsewhere: returns at once.
    ///
    /// It runs on the caller's executor (the main thread, called from `main`) up to the ready
    /// message: hopping to Swift's global executor first made libdispatch start a thread, about
    /// 0.2 ms of every worker's start (decision 0020). `run()` gets the global executor's threads.
    nonisolated(nonsending) public static func runIfWorker(entryPoints: EntryPoints) async {
        guard let value = Posix.getenv(controlFDVariable) else { return }
        // Not for our own children: a worker that starts processes must not make them workers.
        Posix.unsetenv(controlFDVariable)
        guard let fd = Int32(value), fd >= 0 else {
            failBeforeBootstrap("\(controlFDVariable)=\(value) is not a descriptor number")
        }
        await run(controlFD: fd, entryPoints: entryPoints)
    }

    /// Runs the worker and exits the process from here (see its end).
    nonisolated(nonsending) private static func run(controlFD: Int32, entryPoints: EntryPoints) async -> Never {
        Posix.ignoreSignal(PosixSignal.pipe)
        let firstChannel = WorkerControlChannel(fd: controlFD)
        let standbyGroup = Posix.getenv(standbyVariable)
        let standby = standbyGroup != nil
        let forkServer = standby && Posix.getenv(forkServerVariable) != nil
        // What `ps` and `top` show while it waits (the command line says so too).
        if let standbyGroup { Posix.setProcessName("\(standbyGroup)#\(forkServer ? "fork-server" : "standby")") }
        var request: WorkerBootstrap
        var passed: [Int32] = []
        do {
            request = try firstChannel.readBootstrap(timeoutMilliseconds: standby ? nil : bootstrapTimeoutMilliseconds, descriptors: &passed)
        } catch let missing as BootstrapMissing where standby && missing.closed {
            // The watcher discarded this standby, or stopped: nothing was asked of it.
            if forkServer { Posix.waitForAllChildren() }
            Posix.exitProcess(ExitCode.clean)
        } catch {
            failBeforeBootstrap("no bootstrap message from the watcher: \(error)")
        }
        var requestChannel = firstChannel
        if forkServer {
            // Returns in the forked child only, with its bootstrap, its slot's sockets and its
            // own control channel.
            (request, passed, requestChannel) = serveForks(first: request, passed: passed, channel: firstChannel, controlFD: controlFD)
            Posix.unsetenv(forkServerVariable)
        }
        let bootstrap = request
        let channel = requestChannel
        guard let group = bootstrap.pool.group(owning: bootstrap.workerID) else {
            failBeforeBootstrap("worker id \(bootstrap.workerID) belongs to no group of pool '\(bootstrap.pool.name)'")
        }
        if standby {
            // Still one thread here (decision 0020), so changing the environment and the
            // descriptor table is safe. The slot's id and sockets are known only now; a worker
            // spawned for its slot had them from the start.
            Posix.unsetenv(standbyVariable)
            takeSlot(bootstrap.slotEnvironment, sockets: passed)
            // `worker POOL/GROUP#standby` becomes `worker POOL/GROUP#ID`, as a spawned worker's
            // reads (an id of up to 7 digits fits in place of "standby").
            Posix.replaceArgument(2, with: "\(bootstrap.pool.name)/\(group.name)#\(bootstrap.workerID)")
        }
        Posix.setProcessName("\(group.name)#\(bootstrap.workerID)")
        var logger = Logger(label: "\(bootstrap.pool.name).\(group.name)") { _ in ControlChannelLogHandler(channel: channel) }
        logger.logLevel = Logger.Level(rawValue: bootstrap.logLevel) ?? .info
        let recorder: WorkerActivityRecorder? = bootstrap.sharedMemoryName.flatMap { segmentName in
            do {
                return try WorkerActivityRecorder(segmentName: segmentName, id: bootstrap.workerID) { channel.send(.activity) }
            } catch {
                // The pool still works without the worker's counters; say so once.
                logger.warning("cannot write activity to shared memory: \(error)")
                return nil
            }
        }
        let reader = bootstrap.sharedMemoryName.flatMap { try? SharedSegment.open(name: $0, writable: false) }.map(PoolStateReader.init(segment:))
        // The process's one NIO event loop group, started on first use (HTTP, the user's own).
        let eventLoops = EventLoopGroupHolder()
        let heartbeat = group.hangTimeout.flatMap { timeout in
            recorder.map { recorder in WorkerHeartbeat(hangTimeout: timeout) { recorder.beat() } }
        }
        if let heartbeat {
            // A job worker's job server beats it; any other worker's event loop.
            if group.jobExecutor == nil { startHeartbeat(heartbeat, on: eventLoops) }
            // Under Yama's ptrace_scope 1, the watcher's backtrace tool may attach to a hang.
            _ = pt_allow_tracer(bootstrap.watcherPID)
        }
        let makeJobClient: @Sendable () -> JobClient = {
            JobClient(
                pool: bootstrap.pool, senderID: bootstrap.workerID, senderGroup: group.id, allowed: Set(group.jobGroups),
                runtimeDirectory: bootstrap.runtimeDirectory ?? "/nonexistent", reader: reader ?? PoolStateReader.empty(bootstrap.pool),
                pickup: PickupStrategies.make(group.strategies["pickup"], registry: entryPoints) ?? LeastJobsPickup(),
                requestScale: { target in channel.send(.scaleRequest(target)) },
                countPickupMiss: recorder.map { recorder in { @Sendable target in recorder.countPickupMiss(group: target) } },
                wait: group.jobWait)
        }
        let worker = Worker(
            bootstrap: bootstrap, group: group, logger: logger, activityRecorder: recorder, makeJobClient: makeJobClient,
            listeners: InheritedListener.fromEnvironment(group: group), eventLoops: eventLoops)

        do {
            try channel.startReading(worker: worker)
        } catch {
            channel.report(.crash("cannot watch the control channel: \(error)"))
            Posix.exitProcess(ExitCode.failed)
        }

        guard var entryPoint = entryPoints.make(group.entryPoint) else {
            let known = entryPoints.names.joined(separator: ", ")
            channel.report(.fatal("entry point '\(group.entryPoint)' is not registered in this executable (it has: \(known))"))
            Posix.exitProcess(ExitCode.failed)
        }

        let report: WorkerExitReport
        var jobServer: JobServer?
        do {
            try await entryPoint.initialize(worker: worker)
            if let limits = group.jobExecutor {
                guard let handler = worker.jobHandler else {
                    throw WorkerExit.fatal(
                        "group '\(group.name)' runs jobs but its entry point '\(group.entryPoint)' registered no JobHandler; call worker.handleJobs(with:) in initialize(worker:)")
                }
                guard let directory = bootstrap.runtimeDirectory else {
                    throw WorkerExit.fatal("the watcher gave no runtime directory for the job socket")
                }
                let scheduler = JobScheduler(
                    limits: limits, workerID: worker.id, handler: handler,
                    activity: recorder.map { recorder in { @Sendable body in recorder.update(body) } },
                    describe: recorder.map { recorder in { @Sendable job in recorder.describeCurrentJob(job) } },
                    latency: recorder.map { recorder in { @Sendable wait, run in recorder.observeLatency(wait: wait, run: run) } },
                    runningJobs: recorder?.runningJobsTable(pool: bootstrap.pool, id: worker.id),
                    journal: try JobJournal.fromEnvironment())
                // Listening before saying ready: pickup only offers workers that can take a job.
                jobServer = try JobServer.start(
                    path: JobServer.socketPath(runtimeDirectory: directory, worker: worker.id), scheduler: scheduler,
                    logger: logger, heartbeat: heartbeat)
            }
            if worker.isStopRequested {
                report = .clean
            } else {
                // A new process starts with nothing in flight; its totals carry on from the slot's.
                worker.recordActivity { activity in
                    activity.resetPerProcess()
                    activity.jobsProcessedBeforeStart = activity.jobsProcessed
                }
                channel.send(.ready)
                // `run()` gets a task of its own so that a stop request can cancel it.
                let task = Task { [entryPoint] in try await entryPoint.run() }
                worker.attach(task)
                try await task.value
                report = .clean
            }
        } catch {
            report = classify(error, worker: worker, group: group)
        }
        if let jobServer {
            // Finish what was accepted (the watcher's stop timeout bounds this), unless the
            // watcher is gone or the process was told to stop by a signal: then cancel it all.
            switch worker.stopReason {
            case .requested?, nil: await jobServer.scheduler.drain()
            case .signal?, .watcherLost?: jobServer.scheduler.cancelEverything()
            }
            await jobServer.close()
        }
        if worker.stopReason == .watcherLost, let directory = bootstrap.runtimeDirectory {
            // The watcher died without cleaning up: the last of its workers to leave removes the
            // pool's runtime directory (this fails harmlessly while anything else is in it).
            Posix.removeDirectory(directory)
        }
        await worker.existingJobClient?.shutdown()
        // Graceful: replies already handed to the event loop are written before the process exits.
        await eventLoops.shutdown()
        channel.report(report)
        let code = switch report {
        case .clean, .terminate: ExitCode.clean
        case .fatal, .crash: ExitCode.failed
        }
        // The process ends here with everything still referenced: no deinit runs, since the
        // kernel frees the memory anyway. Tearing the objects down cost each stopping job
        // worker about 0.2 ms of CPU in the Swift runtime's conformance scans alone (the first
        // use of some types' metadata is their destruction), and 32 workers stopping together
        // on 2 CPUs wait for each other's (docs/benchmarks.md, "What a graceful stop of 32 waits for").
        withExtendedLifetime((worker, jobServer, recorder, reader, channel)) { Posix.exitProcess(code) }
    }

    private static func classify(_ error: any Error, worker: Worker, group: GroupDescription) -> WorkerExitReport {
        if let exit = error as? WorkerExit {
            switch exit.code {
            case .terminate: return .terminate(exit.message)
            case .fatal: return .fatal(exit.message)
            case .restart: return .crash(exit.message)
            }
        }
        if error is CancellationError && worker.isStopRequested { return .clean }
        let message = "uncaught error: \(String(reflecting: error))"
        switch group.onUncaughtError {
        case .stopPool: return .fatal(message)
        case .restart: return .crash(message)
        }
    }

    /// The heartbeat of a worker that runs no jobs: a repeated task on the event loop's own
    /// thread, so that a worker whose loop is stuck (a blocking call, a deadlock, an endless
    /// loop on it) stops beating.
    private static func startHeartbeat(_ heartbeat: WorkerHeartbeat, on eventLoops: EventLoopGroupHolder) {
        let loop = eventLoops.group.next()
        loop.scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(Int64(heartbeat.nanoseconds))) { _ in heartbeat.beat() }
    }

    /// A fork server's life (decision 0028): it forks a child for each bootstrap the watcher
    /// sends, with the new worker's control channel as the last descriptor that came with it,
    /// and returns in that child only, the channel moved to the fork server's descriptor.
    /// The child tells the watcher its pid and a pidfd of itself over the fork server's channel
    /// (race-free: a process's own pidfd cannot name another); only one child is ever asked for
    /// at a time, so nothing else writes there. A child whose answer came too late finds its
    /// own channel closed by the watcher and leaves as a worker whose watcher is lost does.
    /// The kernel reaps the children (SIGCHLD ignored) and the watcher reads their exit status
    /// from its pidfd. When the channel closes, the fork server leaves once its children have:
    /// they stay its children, never orphans.
    private static func serveForks(
        first: WorkerBootstrap, passed firstPassed: [Int32], channel: WorkerControlChannel, controlFD: Int32
    ) -> (WorkerBootstrap, [Int32], WorkerControlChannel) {
        Posix.ignoreSignal(PosixSignal.child)
        var request = first
        var passed = firstPassed
        var saidProblem: String?
        while true {
            let threads = Posix.threadCount
            if let workerChannel = passed.last, threads == 1 {
                let pid: pid_t
                do {
                    pid = try Posix.forkWorker()
                } catch {
                    // Said with pid 0: the watcher closes the channel it sent and spawns instead.
                    reportFork(pid: 0, pidfd: nil, on: controlFD)
                    pid = -1
                }
                if pid == 0 {
                    guard let pidfd = try? Posix.pidfdOpen(Posix.processID) else {
                        // Unwatchable: the watcher spawns the slot instead.
                        reportFork(pid: 0, pidfd: nil, on: controlFD)
                        Posix.exitProcess(ExitCode.noBootstrap)
                    }
                    reportFork(pid: Posix.processID, pidfd: pidfd, on: controlFD)
                    Posix.close(pidfd)
                    // Its own channel takes the fork server's descriptor: where a spawned
                    // worker of the group has its channel.
                    do {
                        try Posix.duplicate(workerChannel, to: controlFD)
                    } catch {
                        failBeforeBootstrap("cannot place the control channel at descriptor \(controlFD): \(error)")
                    }
                    Posix.close(workerChannel)
                    return (request, Array(passed.dropLast()), WorkerControlChannel(fd: controlFD))
                }
            } else {
                // A fork of a process with other threads could inherit a lock one of them held
                // (the binary started threads before `runIfWorker`); a request without a channel
                // is the watcher's mistake. Either way the watcher spawns instead; said once,
                // not at every start of the group's workers.
                let problem = passed.isEmpty
                    ? "a fork request came without the new worker's control channel"
                    : "cannot fork workers: this process has \(threads) threads (call WorkerProcess.runIfWorker before starting any); they are spawned instead"
                if problem != saidProblem { sayBeforeBootstrap(problem) }
                saidProblem = problem
                reportFork(pid: 0, pidfd: nil, on: controlFD)
            }
            for fd in passed { Posix.close(fd) }
            passed = []
            do {
                request = try channel.readBootstrap(timeoutMilliseconds: nil, descriptors: &passed)
            } catch {
                // Closed: the watcher discarded it or stopped. Anything else is the same to it.
                Posix.waitForAllChildren()
                Posix.exitProcess(ExitCode.clean)
            }
        }
    }

    /// A fork server's answer: the child's pid (4 bytes, little-endian; 0 when there is none)
    /// with the child's pidfd attached.
    private static func reportFork(pid: pid_t, pidfd: Int32?, on fd: Int32) {
        let bytes = withUnsafeBytes(of: pid.littleEndian) { Array($0) }
        if (try? Posix.send(fd, bytes, passing: pidfd.map { [$0] } ?? [])) != bytes.count {
            // The watcher no longer waits (it gave up, or is gone): a child it will not watch
            // must not run.
            if pid == Posix.processID { Posix.exitProcess(ExitCode.noBootstrap) }
        }
    }

    /// A standby taking its slot: the slot's listening sockets go where a spawned worker has
    /// them (descriptors 3 on, over the /dev/null the watcher left there), and the slot's
    /// variables are set.
    private static func takeSlot(_ environment: [String: String], sockets: [Int32]) {
        for (index, socket) in sockets.enumerated() {
            // dup2 leaves the copy without close-on-exec, as an inherited socket is.
            do {
                try Posix.duplicate(socket, to: Int32(3 + index))
            } catch {
                failBeforeBootstrap("cannot place listening socket \(index) at descriptor \(3 + index): \(error)")
            }
            Posix.close(socket)
        }
        for (key, value) in environment { Posix.setenv(key, value) }
    }

    private static func failBeforeBootstrap(_ message: String) -> Never {
        sayBeforeBootstrap(message)
        Posix.exitProcess(ExitCode.noBootstrap)
    }

    /// Before the bootstrap there is nobody to report to but stderr.
    private static func sayBeforeBootstrap(_ message: String) {
        let line = Array("pooltop worker \(Posix.processID): \(message)\n".utf8)
        _ = line.withUnsafeBytes { try? Posix.write(2, $0) }
    }
}
