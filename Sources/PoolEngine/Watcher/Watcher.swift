import Logging

/// A spawn the watcher did not attempt, and why.
private struct SpawnRefusal: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A spawned worker process as the loop owns it. Only the loop closes these descriptors,
/// so a descriptor number is never reused while a stop request may still be written to it.
private struct WorkerProcessHandle {
    var pid: Int32
    var pidfd: Int32
    var control: Int32
    var generation: Int
    /// A standby's: descriptors it holds (on /dev/null) for the listening sockets of the slot it takes.
    var reservedListeners = 0
    /// Set for a fork server (decision 0028).
    var forkServer: ForkServerState?
    /// Control bytes the channel had no room for, sent when the monitor says it has.
    var outbound: [UInt8] = []
    /// Whether the monitor reports room on the channel (only while bytes wait).
    var watchesWritable = false
    /// Set for a program worker (`command:`), which has no control channel (`control` is -1).
    var program: ProgramHandle?
}

/// A standby spawned for a group whose listeners have changed since: it cannot take a slot.
private struct ListenerCountChanged: Error, CustomStringConvertible {
    var held: Int
    var needed: Int
    var description: String { "it holds room for \(held) listening sockets, the slot has \(needed)" }
}

/// Where a fork server stands, for the loop.
private enum ForkServerState {
    /// It takes requests.
    case serving
    /// Its channel was closed: it leaves once its children have (they keep their parent); a
    /// second kill is a SIGKILL.
    case toldToGo
    /// It failed a request and was killed: no request goes to it while its exit is on the way.
    case failed
}

/// A fork server that did not answer a request as it should: it is killed, the slot spawned.
private struct ForkServerFailure: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// What the loop owns of a running program worker besides its pidfd.
private struct ProgramHandle {
    var descriptors: [Int32]
    var notifyPath: String
    var stopSignal: Int32
    var environment: [String]
    var probe: ProbeRunner?
}

/// How a pool's watcher loop ended.
struct WatcherOutcome: Sendable {
    var failure: PoolFailure?
    var hardRestarts: Int
    var softRestarts: Int
}

/// The watcher loop: the one writer of pool state. It runs on the ``EventMonitor``'s thread:
/// every input arrives there as a ``MonitorEvent`` (what the kernel said, or a request another
/// thread posted); ``WatcherCore`` decides; this loop performs the actions, spawns included,
/// so no blocking call ever holds one of Swift concurrency's pool threads.
final class Watcher: @unchecked Sendable {
    // @unchecked: after `init` every method runs on the monitor thread, which owns this object
    // as an event loop owns its channels (see ``EventMonitor``).
    /// The pool as it is now: the core's (`apply` changes it).
    private var pool: PoolDescription { core.pool }
    private var core: WatcherCore
    private var processes: [WorkerID: WorkerProcessHandle] = [:]
    private let monitor: EventMonitor
    let logger: Logger
    private let executable: String
    private let baseEnvironment: [String]
    private let workerLogLevel: Logger.Level
    private let publish: @Sendable (PoolEvent) -> Void
    private var startWaiters: [CheckedContinuation<Void, Never>] = []
    /// Callers waiting for a command's answer, by the token the core will answer.
    private var replies: [ReplyToken: @Sendable (CommandReply) -> Void] = [:]
    private var nextReply: UInt64 = 1
    /// Set once the pool finished: later requests are answered at once.
    private var outcome: WatcherOutcome?
    private let onFinish: @Sendable (WatcherOutcome) -> Void
    /// When the workers are sampled; nil when never.
    private var sampling: SamplingSchedule?
    private let isViewed: @Sendable () -> Bool
    /// systemd's notification socket, when systemd runs the watcher as `Type=notify`.
    private let notifier: SystemdNotifier?
    private var lastWatchdog: PoolInstant?
    /// Whether `READY=1` was sent since the start or the last restart.
    private var readySent = false
    private var lastStatus = ""
    private let sharedState: SharedStatePublisher?
    private let runtimeDirectory: String?
    /// Workers' stdout and stderr, when not the watcher's own.
    private let workerOutput: Int32?
    /// Reactor groups' listening sockets, owned here and inherited by each worker at spawn.
    private let listeners: ListenerSockets
    /// Indices in the core's slots of the workers that serve listeners: steering looks at
    /// these only, on every turn of the loop.
    private var listenerSlots: [Int]
    private let programLauncher: ProgramLauncher
    /// Program workers whose stop signal waits until their own sockets have no connection
    /// queued, with when it is sent anyway (see ``requestProgramStop(_:at:)``).
    private var pendingStops: [WorkerID: PoolInstant] = [:]
    /// What is kept of each process for its post-mortem (`pooltop why`); nil without a state directory.
    private let postMortems: PostMortemRecorder?
    /// The flight recorder (`pooltop replay`); nil when `recordFor` is off or there is no state directory.
    private let recorder: FlightRecorder?

    init(
        pool: PoolDescription,
        monitor: EventMonitor,
        logger: Logger,
        workerLogLevel: Logger.Level,
        sharedState: SharedStatePublisher?,
        sampleInterval: Duration?,
        backgroundSampleInterval: Duration,
        isViewed: @escaping @Sendable () -> Bool,
        notifier: SystemdNotifier? = nil,
        runtimeDirectory: String?,
        workerOutput: Int32? = nil,
        listeners: ListenerSockets? = nil,
        postMortems: PostMortemRecorder? = nil,
        recorder: FlightRecorder? = nil,
        publish: @escaping @Sendable (PoolEvent) -> Void,
        onFinish: @escaping @Sendable (WatcherOutcome) -> Void
    ) throws {
        self.onFinish = onFinish
        self.postMortems = postMortems
        self.recorder = recorder
        self.sharedState = sharedState
        self.runtimeDirectory = runtimeDirectory
        self.workerOutput = workerOutput
        self.listeners = listeners ?? ListenerSockets(pool: pool)
        self.listenerSlots = Self.listenerSlots(of: pool)
        self.isViewed = isViewed
        self.notifier = notifier
        sampling = sharedState == nil ? nil : sampleInterval.map {
            SamplingSchedule(pool: pool, interval: $0, backgroundInterval: backgroundSampleInterval)
        }
        var seed = SystemRandomNumberGenerator()
        self.core = WatcherCore(pool: pool, jitter: .generator(state: seed.next()))
        core.canFork = Posix.pidfdReportsExitStatus
        self.monitor = monitor
        self.logger = logger
        self.workerLogLevel = workerLogLevel
        self.publish = publish
        self.executable = try Posix.executablePath()
        // Workers must not mistake an inherited marker of ours (a worker starting a pool) for their own.
        // Nor a socket-activation announcement, or systemd's notification socket, meant for the watcher itself.
        let activation =
            [InheritedListener.countVariable, InheritedListener.namesVariable, InheritedListener.pidVariable]
            + SystemdNotifier.variables
        self.baseEnvironment = Posix.environment().filter { entry in
            !entry.hasPrefix("POOLTOP_") && !activation.contains { entry.hasPrefix("\($0)=") }
        }
        programLauncher = ProgramLauncher(
            trampoline: executable, baseEnvironment: baseEnvironment, runtimeDirectory: runtimeDirectory, poolName: pool.name)
    }

    /// Handles one event on the monitor thread.
    func handle(_ event: MonitorEvent) {
        let now = PoolInstant.now
        if let outcome {
            // The pool finished: nothing more to decide, only callers to answer.
            if case .request(let request) = event { answerFinished(request, outcome) }
            return
        }
        let actions: [WatcherAction]
        switch event {
        case .started:
            actions = core.handle(.poolDidStart, at: now)
        case .request(.input(let input)):
            actions = core.handle(input, at: now)
        case .request(.command(let command, let reply)):
            let token = ReplyToken(rawValue: nextReply)
            nextReply += 1
            replies[token] = reply
            var sampled: [WatcherAction] = []
            switch command {
            case .scale, .apply:
                // Which workers are busy right now: a scale-down stops them last.
                sampled = core.handle(.workersSampled(samples(resources: nil)), at: now)
            default:
                break
            }
            if case .apply(let change) = command, core.check(apply: change) == nil {
                actions = sampled + apply(change, reply: token, at: now)
            } else {
                actions = sampled + core.handle(.command(command, reply: token), at: now)
            }
        case .request(.awaitStart(let continuation)):
            startWaiters.append(continuation)
            actions = []
        case .request(.sampleNow):
            // Someone started looking: fresh figures now, then full rate while they look.
            actions = sampleTick(at: now)
        case .tick where sampling?.isDue(at: now) != true && !isWatchdogDue(at: now):
            // Only the flight recorder's second: nothing changes, so nothing is decided or
            // published. After a few unchanged seconds the recorder dozes, and this tick stops.
            if let recorder, recorder.isDue(at: now) { recorder.record(at: now) }
            scheduleTick()
            return
        case .request(.sharedMemoryChanged):
            // This process changed shared memory while the recorder dozed (a pick-up miss of
            // an operator's job): as a worker's bell would.
            recorder?.wake(at: now)
            actions = []
        default:
            actions = handle(monitorEvent: event, at: now)
        }
        guard let failure = perform(actions) else { return }
        finish(WatcherOutcome(failure: failure, hardRestarts: core.hardRestarts, softRestarts: core.softRestarts))
    }

    /// Carries out `apply`: the new groups' sockets are bound first, so an address in use
    /// refuses the change with the pool untouched; then the core changes the slots, and the
    /// loop's own views of the pool (listeners, sampling, shared memory) follow it.
    private func apply(_ change: PoolChange, reply token: ReplyToken, at now: PoolInstant) -> [WatcherAction] {
        let started = change.groups(.start)
        let slots = core.slots
        if let failure = listeners.prepare(started, in: change.next, hasProcess: { id in slots[id.rawValue - 1].state.hasProcess }) {
            return [.reply(token, .failure(CommandError(.cannotApply, failure)))]
        }
        let actions = core.handle(.command(.apply(change), reply: token), at: now)
        listenerSlots = Self.listenerSlots(of: pool)
        if let schedule = sampling {
            sampling = SamplingSchedule(pool: pool, interval: schedule.interval, backgroundInterval: schedule.backgroundInterval)
        }
        sharedState?.reconfigure(pool)
        return actions
    }

    /// The slots (indices in the core's slots) of every group that serves listeners.
    private static func listenerSlots(of pool: PoolDescription) -> [Int] {
        pool.groups.flatMap { group in
            group.listeners.isEmpty || group.retired ? [] : group.workerIDs.map { $0.rawValue - 1 }
        }
    }

    /// The pool ended: answer everyone still waiting and tell `run()`.
    private func finish(_ outcome: WatcherOutcome) {
        self.outcome = outcome
        // The last frame: every worker gone, and the events that ended the pool.
        sharedState?.publish(core, at: PoolInstant.now)
        recorder?.record(at: PoolInstant.now)
        for waiter in startWaiters { waiter.resume() }
        startWaiters = []
        for (_, reply) in replies { reply(.failure(CommandError(.notRunning, "the pool has stopped"))) }
        replies = [:]
        // Normally none is left; should one be, kill it rather than orphan it.
        for (_, process) in processes {
            try? Posix.pidfdSignal(process.pidfd, PosixSignal.kill)  // try?: it may be gone already, which is the aim
            if process.program != nil { Posix.signalProcessGroup(process.pid, PosixSignal.kill) }
            process.program?.probe?.cancel()
        }
        if let workerOutput { Posix.close(workerOutput) }
        monitor.setTick(every: nil)
        monitor.setDeadline(nil)
        onFinish(outcome)
    }

    private func answerFinished(_ request: WatcherRequest, _ outcome: WatcherOutcome) {
        switch request {
        case .input, .sampleNow, .sharedMemoryChanged: break
        case .command(_, let reply): reply(.failure(CommandError(.notRunning, "the pool has stopped")))
        case .awaitStart(let continuation): continuation.resume()
        }
    }

    /// The last heartbeat of each of these workers, from their shared-memory records (nil
    /// before the first, or without shared memory).
    private func heartbeats(of ids: [WorkerID]) -> [WorkerID: PoolInstant?] {
        var beats: [WorkerID: PoolInstant?] = [:]
        for id in ids {
            // Without shared memory there is no heartbeat to read: nobody is found hung.
            guard let sharedState else {
                beats[id] = PoolInstant.now
                continue
            }
            let word = sharedState.segment.load(sharedState.segment.slotBase(id) + SharedLayout.Activity.heartbeat)
            beats[id] = word == 0 ? nil : PoolInstant(nanoseconds: word)
        }
        return beats
    }

    /// What the workers wrote of their activity, and the RSS from /proc of those `resources` names.
    private func samples(resources: SamplingSchedule.Resources?) -> [WorkerID: WorkerSample] {
        guard let sharedState else { return [:] }
        return sharedState.sample(core, resources: resources)
    }

    /// A sampling tick: what to read follows whether anyone is looking (see ``SamplingSchedule``).
    private func sampleTick(at now: PoolInstant) -> [WatcherAction] {
        guard var schedule = sampling else { return [] }
        let viewed = isViewed()
        let resources = schedule.resourcesToRead(at: now, viewed: viewed)
        schedule.sampled(at: now, viewed: viewed, shrinkPending: core.onDemandExtra.values.contains { $0 > 0 })
        sampling = schedule
        let taken = samples(resources: resources)
        if let postMortems {
            let wall = Posix.wallClockSeconds()
            for (id, sample) in taken {
                guard let rss = sample.rssBytes else { continue }
                postMortems.sample(id, at: wall, rssBytes: rss, cpuSeconds: Double(sample.cpuNanoseconds ?? 0) / 1e9)
            }
        }
        return core.handle(.workersSampled(taken), at: now)
    }

    /// The periodic tick: systemd's watchdog, from this loop itself so that a stuck loop stops
    /// it, and the workers' sample when it is due.
    private func tick(at now: PoolInstant) -> [WatcherAction] {
        if isWatchdogDue(at: now), let notifier {
            notifier.send("WATCHDOG=1")
            lastWatchdog = now
        }
        let actions = sampling?.isDue(at: now) == true ? sampleTick(at: now) : []
        // After the sample, so a frame has this second's RSS and CPU when one was taken.
        if let recorder, recorder.isDue(at: now) { recorder.record(at: now) }
        return actions
    }

    /// Whether systemd's watchdog wants its `WATCHDOG=1` (10 % slack, like the samples).
    private func isWatchdogDue(at now: PoolInstant) -> Bool {
        guard let interval = notifier?.watchdogInterval else { return false }
        return lastWatchdog.map { now.duration(since: $0) >= interval * 0.9 } ?? true
    }

    /// The monitor ticks for whichever comes first: the next sample, the next frame of the
    /// flight recorder (unless it dozes), or the watchdog.
    private func scheduleTick() {
        let frames = recorder.flatMap { $0.isDozing ? nil : FlightRecorder.interval }
        let intervals = [sampling?.tickInterval, frames, notifier?.watchdogInterval].compactMap { $0 }
        monitor.setTick(every: intervals.min())
    }

    /// Tells systemd how the pool stands: `READY=1` once every group has its minimum ready (a
    /// one-shot group that completed counts), and a one-line `STATUS=` when it changes.
    private func notifySystemd() {
        guard let notifier, core.mode == .running else { return }
        // One pass over the slots: this runs after every turn of the loop under systemd. The
        // pool is read once (it is the core's, copied out at each read).
        let pool = self.pool
        var readyByGroup = [Int](repeating: 0, count: pool.groups.count)
        var completedByGroup = [Bool](repeating: true, count: pool.groups.count)
        for slot in core.slots {
            if slot.state == .ready { readyByGroup[slot.groupIndex] += 1 }
            if slot.state.hasProcess || slot.isDesired || ![.cleanExit, .terminate].contains(slot.lastExit?.reason) {
                completedByGroup[slot.groupIndex] = false
            }
        }
        let ready = readyByGroup.reduce(0, +)
        let wanted = pool.groups.reduce(0) { $0 + $1.minWorkers }
        // A group has its minimum ready, or is a one-shot group that completed.
        let satisfied = pool.groups.indices.allSatisfy { readyByGroup[$0] >= pool.groups[$0].minWorkers || completedByGroup[$0] }
        let status = "\(ready) of \(wanted) workers ready in \(pool.groups.count { !$0.retired }) group(s)"
        if !readySent && satisfied {
            readySent = true
            lastStatus = status
            notifier.send("READY=1\nSTATUS=\(status)")
        } else if status != lastStatus {
            lastStatus = status
            notifier.send("STATUS=\(status)")
        }
    }

    private func handle(monitorEvent event: MonitorEvent, at now: PoolInstant) -> [WatcherAction] {
        switch event {
        case .message(let id, let generation, let message):
            switch message {
            case .ready:
                return core.handle(.workerDidBecomeReady(id, generation: generation), at: now)
            case .exiting(let report):
                return core.handle(.workerDidReport(id, generation: generation, report), at: now)
            case .log(let record):
                guard core.slot(id)?.generation == generation, let group = pool.group(owning: id) else { return [] }
                return [.emit(.workerLog(id, group: group.name, record: record))]
            case .scaleRequest(let group):
                return core.handle(.scaleUpRequested(group), at: now)
            case .activity:
                // The worker's change found the flight recorder dozing: record it now.
                recorder?.wake(at: now)
                return []
            }
        case .badFrame(let id, _, let error):
            logger.error("worker \(id) sent a malformed control frame; closing its channel", metadata: ["error": "\(error)"])
            return []
        case .channelClosed(let id, let generation):
            return core.handle(.channelDidClose(id, generation: generation), at: now)
        case .channelWritable(let id, let generation):
            if processes[id]?.generation == generation { flush(id) }
            return []
        case .execFinished(let id, let generation, let failure):
            if failure == nil { startProbe(id, generation: generation) }
            return core.handle(.programDidExec(id, generation: generation, failure: failure), at: now)
        case .notified(let id, let generation, let message):
            var actions: [WatcherAction] = []
            if let status = message.status, core.slot(id)?.generation == generation, let group = pool.group(owning: id) {
                let record = LogRecord(level: "info", message: "STATUS=\(status)", metadata: ["stream": "notify"], timestamp: Posix.wallClockSeconds())
                actions.append(.emit(.workerLog(id, group: group.name, record: record)))
            }
            return actions + core.handle(.programDidNotify(id, generation: generation, message), at: now)
        case .exited(let id, let generation, let status):
            let actions = core.handle(.processDidExit(id, generation: generation, status), at: now)
            if let process = processes[id], process.generation == generation {
                release(id, process)
            }
            // Sockets for listeners `apply` removed or changed go with the process that held them.
            listeners.slotExited(id)
            if core.slot(id)?.state.isLive == false {
                // Nobody will accept on the slot's sockets: stop the kernel hashing connections to them.
                listeners.retire(id)
                // A group `apply` removed gives its shared sockets back with its last worker.
                if let group = pool.group(owning: id), group.retired,
                    !core.slots.contains(where: { group.owns($0.id) && $0.state.hasProcess })
                {
                    listeners.release(group)
                }
            }
            return actions
        case .signal(let signal):
            switch signal {
            case PosixSignal.user1: return core.handle(.restartRequested(hard: true), at: now)
            case PosixSignal.user2: return core.handle(.restartRequested(hard: false), at: now)
            default: return core.handle(.stopRequested(reason: "received \(signalName(signal))"), at: now)
            }
        case .deadlineReached:
            deliverPendingStops(at: now)
            // Hang checks that are due get the heartbeats first (plain loads from shared memory).
            let due = core.hangChecksDue(at: now)
            let checked = due.isEmpty ? [] : core.handle(.heartbeatsRead(heartbeats(of: due)), at: now)
            return checked + core.handle(.clockDidAdvance, at: now)
        case .tick:
            return tick(at: now)
        case .started, .request:
            // Handled by `handle(_:)`.
            return []
        }
    }

    /// Performs actions (which may produce more input); returns non-nil once the pool finished.
    private func perform(_ initial: [WatcherAction]) -> PoolFailure?? {
        // Before any stop request goes out: a worker asked to leave gets no new connections.
        steerConnections()
        var queue = initial[...]
        var finished: PoolFailure??
        var answers: [(ReplyToken, CommandReply)] = []
        // Each event's delivery, log line and post-mortem entry, once the batch's actions are
        // done: a replacement is spawned before its predecessor's death is formatted and
        // written (about 0.4 ms a death, the post-mortem's JSON most of it; decision 0018),
        // and a subscriber that reads shared memory on an event finds the event's effect there.
        var aftermath: [(PoolEvent, DeathReading?)] = []
        var standbySpawns: [(groupIndex: Int, generation: Int, forkServer: Bool)] = []
        while let action = queue.popFirst() {
            switch action {
            case .spawn(let id, let generation):
                queue.append(contentsOf: spawn(id, generation: generation))
            case .spawnStandby(let groupIndex, let generation, let forkServer):
                if forkServer && queue.contains(where: { if case .forkWorker(_, _, generation) = $0 { true } else { false } }) {
                    // Ahead of its group's workers, which this batch forks (a large group's
                    // start): they wait for it, so it starts now, before the first of them.
                    queue.append(contentsOf: spawnStandby(groupIndex: groupIndex, generation: generation, forkServer: true))
                    continue
                }
                // Not urgent: started once this batch's events are out, so that a subscriber
                // hears of the ready worker that made it wanted without waiting for a spawn.
                standbySpawns.append((groupIndex, generation, forkServer))
            case .promoteStandby(let id, let generation, let standby):
                queue.append(contentsOf: promote(standby: standby, to: id, generation: generation))
            case .forkWorker(let id, let generation, let server):
                queue.append(contentsOf: fork(id, generation: generation, server: server))
            case .requestStop(let id, let generation, let request):
                guard processes[id]?.generation == generation else {
                    // Its process already ended (its exit is on the way) or was replaced.
                    logger.debug("stop request for worker \(id) (generation \(generation)) not sent: no such process")
                    continue
                }
                if processes[id]?.program != nil {
                    requestProgramStop(id, at: PoolInstant.now)
                    continue
                }
                // Never waits; should it not arrive, the kill deadline set with it still ends the process.
                send(.stop(request), to: id)
            case .kill(let id, let generation):
                guard let process = processes[id], process.generation == generation else { continue }
                if process.forkServer == .serving {
                    // It leaves once its children have; its end is watched like a standby's.
                    Posix.shutdownWriting(process.control)
                    processes[id]?.forkServer = .toldToGo
                    continue
                }
                do {
                    try Posix.pidfdSignal(process.pidfd, PosixSignal.kill)
                } catch {
                    logger.error("could not kill worker \(id) (pid \(process.pid)): \(error)")
                }
                // A program's own children go with it (its exit is not yet reaped: the group is its).
                if process.program != nil { Posix.signalProcessGroup(process.pid, PosixSignal.kill) }
            case .emit(let event):
                aftermath.append((event, readDeath(event)))
                switch event {
                case .poolRestarting:
                    // systemd waits for READY=1 again once the workers are back.
                    readySent = false
                    notifier?.send("RELOADING=1\nMONOTONIC_USEC=\(Posix.monotonicNanoseconds() / 1000)")
                case .poolStopping:
                    notifier?.send("STOPPING=1")
                default:
                    break
                }
            case .reply(let token, let answer):
                answers.append((token, answer))
            case .finish(let failure):
                finished = .some(failure)
            case .captureBacktrace(let id, let generation, let pid):
                let monitor = monitor
                BacktraceCapture.start(pid: pid, worker: id, directory: runtimeDirectory, environment: baseEnvironment) { text in
                    monitor.post(.input(.backtraceCaptured(id, generation: generation, text)))
                }
            }
        }
        steerConnections()
        sharedState?.publish(core, at: PoolInstant.now)
        for (event, death) in aftermath {
            publish(event)
            log(event)
            keepForPostMortem(event, death: death)
        }
        let deadline = core.nextDeadline
        monitor.setDeadline(nextPendingStop.map { pending in deadline.map { min($0, pending) } ?? pending } ?? deadline)
        scheduleTick()
        notifySystemd()
        // Answered once the effect is applied and shared memory shows it, so a caller that reads
        // the pool right after its command returns sees what it asked for.
        for (token, answer) in answers {
            replies.removeValue(forKey: token)?(answer)
        }
        if !core.slots.contains(where: { $0.state == .starting }) || finished != nil {
            for waiter in startWaiters { waiter.resume() }
            startWaiters = []
        }
        // A standby that could not start is the core's to hear of; what it decides is a batch
        // of its own.
        let failed = standbySpawns.flatMap { spawnStandby(groupIndex: $0.groupIndex, generation: $0.generation, forkServer: $0.forkServer) }
        if !failed.isEmpty, finished == nil { return perform(failed) }
        return finished
    }

    /// What a dead worker's slot said it was doing (the job, the request), read from shared
    /// memory when its death is emitted: before anything replaces the process and before the
    /// batch's end clears the slot's in-flight fields (see `perform`).
    private struct DeathReading {
        var activity: WorkerActivity?
        var details: PostMortem.Job?
        var request: PostMortem.Request?
        var at: Double
    }

    private func readDeath(_ event: PoolEvent) -> DeathReading? {
        guard postMortems != nil, case .workerExited(let exit) = event else { return nil }
        let now = Posix.wallClockSeconds()
        guard pool.group(owning: exit.id)?.program == nil, let sharedState else { return DeathReading(at: now) }
        let reader = PoolStateReader(segment: sharedState.segment)
        let base = sharedState.segment.slotBase(exit.id)
        let activity = reader.readActivity(base)
        var details: PostMortem.Job?
        if activity.currentJobID != 0 {
            let job = reader.currentJob(base)
            let pool = self.pool
            details = PostMortem.Job(
                id: activity.currentJobID, runningSeconds: 0,
                sender: job.sender.map { "worker \($0.0) (\(pool.group($0.1)?.name ?? "group \($0.1)"))" }, priority: job.priority,
                weight: job.weight, payloadHead: String(decoding: job.head, as: UTF8.self), payloadBytes: job.length)
        }
        let request = reader.currentRequest(base).map { request in
            PostMortem.Request(
                head: String(decoding: request.head, as: UTF8.self), bytes: request.length, runningSeconds: max(0, now - request.startedAt))
        }
        return DeathReading(activity: activity, details: details, request: request, at: now)
    }

    /// Feeds the post-mortem recorder, after the batch (see `perform`); a death with what
    /// ``readDeath(_:)`` read when it was emitted.
    private func keepForPostMortem(_ event: PoolEvent, death: DeathReading?) {
        guard let postMortems else { return }
        switch event {
        case .workerStarting(let id, _, _, let generation):
            postMortems.started(id, generation: generation)
        case .workerLog(let id, _, let record):
            postMortems.log(id, record)
        case .workerBacktrace(let id, _, _, let text):
            postMortems.backtrace(id, text)
        case .workerExited(let exit):
            guard let death else { return }
            postMortems.died(exit, activity: death.activity, details: death.details, request: death.request, at: death.at)
        default:
            break
        }
    }

    /// Sends reactors' new connections only to ready workers that are staying (see ``ListenerSockets``).
    private func steerConnections() {
        guard !listenerSlots.isEmpty else { return }
        let slots = core.slots
        let accepting = Set(listenerSlots.lazy.map { slots[$0] }.filter { $0.isDesired && $0.state == .ready }.map(\.id))
        for failure in listeners.steer(accepting: accepting) {
            logger.warning("cannot steer connections; the kernel spreads them over every socket: \(failure)")
        }
    }

    private func spawn(_ id: WorkerID, generation: Int) -> [WatcherAction] {
        guard let group = pool.group(owning: id) else { return [] }
        if let program = group.program { return spawn(program, group: group, id, generation: generation) }
        let now = PoolInstant.now
        do {
            let pid = try startProcess(of: group, as: id, generation: generation)
            sendBootstrap(to: id, generation: generation)
            return core.handle(.processDidSpawn(id, generation: generation, pid: pid), at: now)
        } catch {
            return core.handle(.spawnDidFail(id, generation: generation, error: "\(error)"), at: now)
        }
    }

    /// Starts a process of `group` watched as `id` (a slot, or ``WorkerID/standby(_:)``); a
    /// standby gets no slot's id or sockets, and waits for its bootstrap without a deadline.
    /// On failure nothing is left behind: no process, no descriptor.
    private func startProcess(of group: GroupDescription, as id: WorkerID, generation: Int, forkServer: Bool = false) throws -> Int32 {
        let standby = id.standbyGeneration != nil
        var parentEnd: Int32 = -1
        var childEnd: Int32 = -1
        var pidfd: Int32 = -1
        var placeholder: Int32 = -1
        var spawned: Int32?
        defer { if placeholder >= 0 { Posix.close(placeholder) } }
        do {
            // A worker costs the watcher two descriptors for good (its control channel and pidfd).
            try checkDescriptorHeadroom(forWorkerNeeding: 2)
            let sockets = standby ? [] : try listeners.descriptors(for: id)
            // A standby holds /dev/null where its slot's sockets will go (descriptors 3 on, the
            // socket-activation convention), so that its control channel is where a worker's is.
            let reserved = standby ? group.listeners.count : 0
            if reserved > 0 { placeholder = try Posix.openNullDevice() }
            (parentEnd, childEnd) = try Posix.socketPair()
            var environment = baseEnvironment
            for (key, value) in group.runner.environment.sorted(by: { $0.key < $1.key }) {
                environment.append("\(key)=\(value)")
            }
            environment += [
                "\(WorkerProcess.controlFDVariable)=\(3 + sockets.count + reserved)",
                "POOLTOP_POOL=\(pool.name)",
            ]
            if standby {
                environment.append("\(WorkerProcess.standbyVariable)=\(group.name)")
                if forkServer { environment.append("\(WorkerProcess.forkServerVariable)=1") }
            } else {
                environment += slotEnvironment(id, sockets: sockets).map { "\($0)=\($1)" }
            }
            let path = group.runner.executable ?? executable
            let pid = try Posix.spawn(
                path: path, arguments: ["worker", "\(pool.name)/\(group.name)#\(forkServer ? "fork-server" : standby ? "standby" : "\(id)")"],
                environment: environment,
                inherited: sockets.map(\.fd) + Array(repeating: placeholder, count: reserved) + [childEnd],
                standardOutput: workerOutput, standardError: workerOutput)
            Posix.close(childEnd)
            childEnd = -1
            spawned = pid
            pidfd = try Posix.pidfdOpen(pid)
            processes[id] = WorkerProcessHandle(
                pid: pid, pidfd: pidfd, control: parentEnd, generation: generation, reservedListeners: reserved,
                forkServer: forkServer ? .serving : nil)
            try monitor.watch(id, generation: generation, pidfd: pidfd, control: parentEnd)
            return pid
        } catch {
            if childEnd >= 0 { Posix.close(childEnd) }
            if let process = processes.removeValue(forKey: id), process.generation == generation {
                // Spawned but not watchable: make sure it does not outlive us unobserved.
                discard(process)
            } else {
                if let spawned {
                    // Spawned, but no pidfd (out of descriptors): our unreaped child, so its pid
                    // cannot have been reused; kill and reap it rather than leave it unwatched.
                    Posix.killAndReap(spawned)
                }
                if parentEnd >= 0 { Posix.close(parentEnd) }
                if pidfd >= 0 { Posix.close(pidfd) }
            }
            throw error
        }
    }

    /// Kills, reaps and forgets a process the loop cannot watch.
    private func discard(_ process: WorkerProcessHandle) {
        monitor.forget(descriptor: process.control)
        monitor.forget(descriptor: process.pidfd)
        try? Posix.pidfdSignal(process.pidfd, PosixSignal.kill)  // try?: it may be gone already, which is the aim
        _ = try? Posix.reap(pidfd: process.pidfd, waiting: true)
        Posix.close(process.pidfd)
        Posix.close(process.control)
    }

    /// What a worker of slot `id` finds in its environment besides the group's: its id, and its
    /// listeners by the systemd socket-activation convention (descriptors from 3 on, named in order).
    private func slotEnvironment(_ id: WorkerID, sockets: [ListenerSockets.Handed]) -> [(String, String)] {
        var variables = [("POOLTOP_WORKER_ID", "\(id)")] + InheritedListener.variables(names: sockets.map(\.name))
        let shared = sockets.filter { listeners.isSharedSocket($0) }.map(\.name)
        if !shared.isEmpty { variables.append((InheritedListener.sharedVariable, shared.joined(separator: ":"))) }
        return variables
    }

    private func bootstrap(for id: WorkerID, generation: Int) -> WorkerBootstrap {
        WorkerBootstrap(
            workerID: id, generation: generation, pool: pool, watcherPID: Posix.processID,
            logLevel: workerLogLevel.rawValue, sharedMemoryName: sharedState?.segment.name,
            runtimeDirectory: runtimeDirectory)
    }

    private func sendBootstrap(to id: WorkerID, generation: Int) {
        send(.bootstrap(bootstrap(for: id, generation: generation)), to: id)
    }

    private func spawnStandby(groupIndex: Int, generation: Int, forkServer: Bool) -> [WatcherAction] {
        let id = WorkerID.standby(generation)
        let group = pool.groups[groupIndex]
        guard core.standbys.contains(where: { $0.generation == generation && !$0.discarded }) else {
            // Discarded in the batch that wanted it (started late, see `perform`): never started.
            return core.handle(.spawnDidFail(id, generation: generation, error: "discarded before it started"), at: PoolInstant.now)
        }
        do {
            let pid = try startProcess(of: group, as: id, generation: generation, forkServer: forkServer)
            logger.debug("\(forkServer ? "fork server" : "standby process") \(pid) started for group '\(group.name)'")
            return []
        } catch {
            logger.warning("cannot start a \(forkServer ? "fork server" : "standby process") for group '\(group.name)': \(error)")
            return core.handle(.spawnDidFail(id, generation: generation, error: "\(error)"), at: PoolInstant.now)
        }
    }

    /// Hands the slot to the standby: watched under the slot's id from now on, then bootstrapped
    /// with the slot's environment, its listening sockets passed with the message (SCM_RIGHTS).
    private func promote(standby: Int, to id: WorkerID, generation: Int) -> [WatcherAction] {
        guard var process = processes.removeValue(forKey: .standby(standby)) else {
            // Its exit was reaped first: the slot gets a process the usual way.
            return spawn(id, generation: generation)
        }
        let now = PoolInstant.now
        monitor.forget(descriptor: process.control)
        monitor.forget(descriptor: process.pidfd)
        process.generation = generation
        do {
            let (bytes, sockets) = try slotHandoff(id, generation: generation, holding: process.reservedListeners)
            try monitor.watch(id, generation: generation, pidfd: process.pidfd, control: process.control)
            processes[id] = process
            // The channel is new and empty: the message fits at once but for a pathological
            // buffer; what did not go waits like any other control bytes (the sockets went with
            // the first byte).
            let sent = try Posix.send(process.control, bytes, passing: sockets.map(\.fd))
            if sent < bytes.count {
                processes[id]?.outbound = Array(bytes[sent...])
                flush(id)
            }
        } catch {
            processes.removeValue(forKey: id)
            discard(process)
            logger.warning("could not hand slot \(id) to the standby process \(process.pid): \(error); spawning instead")
            return spawn(id, generation: generation)
        }
        return core.handle(.processDidSpawn(id, generation: generation, pid: process.pid), at: now)
    }

    /// What a process started without a slot (a standby, a fork server's child) is sent to take
    /// slot `id`: its bootstrap, with the variables a spawned worker would have had from the
    /// start, and the slot's listening sockets to pass with it. It must hold room for exactly
    /// as many sockets as the slot has (a group whose listeners changed since cannot use it).
    private func slotHandoff(_ id: WorkerID, generation: Int, holding reserved: Int) throws -> (bytes: [UInt8], sockets: [ListenerSockets.Handed]) {
        let sockets = try listeners.descriptors(for: id)
        guard sockets.count == reserved else { throw ListenerCountChanged(held: reserved, needed: sockets.count) }
        var bootstrap = bootstrap(for: id, generation: generation)
        bootstrap.slotEnvironment = Dictionary(uniqueKeysWithValues: slotEnvironment(id, sockets: sockets))
        return (ControlCodec.encode(WatcherMessage.bootstrap(bootstrap)).encoded, sockets)
    }

    /// Has fork server `server` fork the slot's process (decision 0028): the slot's bootstrap
    /// goes to it with the slot's sockets and the new worker's end of a fresh control channel;
    /// the child answers with its pid and a pidfd of itself. It waits for that answer, as a
    /// spawn waits for the child's `exec` (about a tenth of that). Whatever goes wrong, the
    /// slot is spawned instead; a fork server that did not answer properly is killed.
    private func fork(_ id: WorkerID, generation: Int, server: Int) -> [WatcherAction] {
        guard let forkServer = processes[.standby(server)], forkServer.forkServer == .serving else {
            // Its exit was reaped first, or it failed a request or was told to go: the slot gets
            // a process the usual way.
            return spawn(id, generation: generation)
        }
        let now = PoolInstant.now
        var parentEnd: Int32 = -1
        var pidfd: Int32 = -1
        var sent = false
        var answered = false
        do {
            try checkDescriptorHeadroom(forWorkerNeeding: 2)
            let (bytes, sockets) = try slotHandoff(id, generation: generation, holding: forkServer.reservedListeners)
            let childEnd: Int32
            (parentEnd, childEnd) = try Posix.socketPair()
            defer { Posix.close(childEnd) }
            // The fork server's channel carries nothing else, one request at a time: all of it
            // fits at once but for a pathological buffer, and then the channel is out of step.
            guard try Posix.send(forkServer.control, bytes, passing: sockets.map(\.fd) + [childEnd]) == bytes.count else {
                throw ForkServerFailure(reason: "the request did not fit in its channel")
            }
            sent = true
            guard try Posix.pollReadable(forkServer.control, timeoutMilliseconds: Self.forkAnswerMilliseconds) else {
                throw ForkServerFailure(reason: "no answer within \(Self.forkAnswerMilliseconds) ms")
            }
            var answer = [UInt8](repeating: 0, count: 4)
            var passed: [Int32] = []
            let n = try answer.withUnsafeMutableBytes { try Posix.receive(forkServer.control, into: $0, descriptors: &passed) }
            answered = true
            pidfd = passed.first ?? -1
            for extra in passed.dropFirst() { Posix.close(extra) }
            guard n == 4 else { throw ForkServerFailure(reason: n == 0 ? "it closed its channel" : "a short answer (\(n) bytes)") }
            let pid = answer.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(as: Int32.self)) }
            guard pid > 0, pidfd >= 0 else {
                // It could not fork (out of memory or processes): it stays, this slot is spawned.
                Posix.close(parentEnd)
                if pidfd >= 0 { Posix.close(pidfd) }
                (parentEnd, pidfd) = (-1, -1)
                logger.warning("fork server \(forkServer.pid) could not fork slot \(id)'s process; spawning instead")
                return spawn(id, generation: generation)
            }
            let process = WorkerProcessHandle(pid: pid, pidfd: pidfd, control: parentEnd, generation: generation)
            // The handle owns both descriptors from here.
            (parentEnd, pidfd) = (-1, -1)
            processes[id] = process
            do {
                try monitor.watch(id, generation: generation, pidfd: process.pidfd, control: process.control)
            } catch {
                processes.removeValue(forKey: id)
                discard(process)
                throw error
            }
            return core.handle(.processDidSpawn(id, generation: generation, pid: pid), at: now)
        } catch {
            if parentEnd >= 0 { Posix.close(parentEnd) }
            if pidfd >= 0 { Posix.close(pidfd) }
            if sent && (error is ForkServerFailure || !answered) {
                // Its channel may hold half a request or a late answer: it cannot serve again.
                try? Posix.pidfdSignal(forkServer.pidfd, PosixSignal.kill)  // try?: it may be gone already
                processes[.standby(server)]?.forkServer = .failed
            }
            logger.warning("fork server \(forkServer.pid) could not start slot \(id)'s process: \(error); spawning instead")
            return spawn(id, generation: generation)
        }
    }

    /// How long the loop waits for a fork server's answer; a fork takes about 0.2 ms.
    static let forkAnswerMilliseconds: Int32 = 1_000

    private func release(_ id: WorkerID, _ process: WorkerProcessHandle) {
        if let program = process.program {
            pendingStops[id] = nil
            program.probe?.cancel()
            for fd in program.descriptors {
                monitor.forget(descriptor: fd)
                Posix.close(fd)
            }
            Posix.removeFile(program.notifyPath)
        } else {
            monitor.forget(descriptor: process.control)
            Posix.close(process.control)
        }
        Posix.close(process.pidfd)
        processes.removeValue(forKey: id)
    }

    // MARK: - Program workers

    private func spawn(_ program: ExternalProgram, group: GroupDescription, _ id: WorkerID, generation: Int) -> [WatcherAction] {
        let now = PoolInstant.now
        let launched: ProgramLauncher.Launched
        do {
            // A program costs five descriptors for good (pidfd, exec status, stdout, stderr, notify).
            try checkDescriptorHeadroom(forWorkerNeeding: 5)
            let sockets = try listeners.descriptors(for: id)
            launched = try programLauncher.launch(program, group: group, id: id, generation: generation, sockets: sockets)
        } catch {
            return core.handle(.spawnDidFail(id, generation: generation, error: "\(error)"), at: now)
        }
        processes[id] = WorkerProcessHandle(
            pid: launched.pid, pidfd: launched.pidfd, control: -1, generation: generation,
            program: ProgramHandle(
                descriptors: launched.descriptors, notifyPath: launched.notifyPath, stopSignal: program.stopSignal,
                environment: launched.environment))
        do {
            try monitor.watchProgram(
                id, generation: generation, pidfd: launched.pidfd, execStatus: launched.execStatus,
                outputs: [(launched.standardOutput, "stdout"), (launched.standardError, "stderr")], notify: launched.notify,
                processGroup: launched.pid)
        } catch {
            // Not watchable: it must not outlive us unobserved.
            Posix.signalProcessGroup(launched.pid, PosixSignal.kill)
            try? Posix.pidfdSignal(launched.pidfd, PosixSignal.kill)  // try?: the group kill above reached it already
            _ = try? Posix.reap(pidfd: launched.pidfd, waiting: true)  // try?: a reap of a killed child has nothing to report
            if let process = processes[id] { release(id, process) }
            return core.handle(.spawnDidFail(id, generation: generation, error: "cannot watch the program: \(error)"), at: now)
        }
        return core.handle(.processDidSpawn(id, generation: generation, pid: launched.pid), at: now)
    }

    /// A program whose readiness is a probe starts being probed once its exec succeeded.
    private func startProbe(_ id: WorkerID, generation: Int) {
        guard var process = processes[id], process.generation == generation, var program = process.program,
            case .probe(let probe)? = pool.group(owning: id)?.program?.readiness
        else { return }
        let monitor = monitor
        do {
            program.probe = try ProbeRunner(probe: probe, worker: "worker \(id)", environment: program.environment) { succeeded, why in
                monitor.post(.input(succeeded ? .probeDidSucceed(id, generation: generation) : .probeDidFail(id, generation: generation, why: why)))
            }
        } catch {
            logger.error("cannot start the readiness probe of worker \(id); its start timeout will end it", metadata: ["error": "\(error)"])
        }
        process.program = program
        processes[id] = process
    }

    /// How often a held-back stop signal looks at the worker's sockets again.
    static let drainCheckInterval: Duration = .milliseconds(2)
    /// How long a stop signal waits for the worker's queued connections to be taken.
    static let drainLimit: Duration = .milliseconds(500)

    /// Asks a program to stop with its stop signal. Its new connections were steered away
    /// already; the signal waits (up to ``drainLimit``) until it has accepted those queued on
    /// its own sockets, since a program closes its listeners on the signal and a socket that
    /// then retires would reset them.
    private func requestProgramStop(_ id: WorkerID, at now: PoolInstant) {
        guard let process = processes[id], let program = process.program else { return }
        let giveUpAt = pendingStops[id] ?? now + Self.drainLimit
        if now < giveUpAt && listeners.hasQueuedConnections(id) {
            pendingStops[id] = giveUpAt
            return
        }
        pendingStops[id] = nil
        do {
            try Posix.pidfdSignal(process.pidfd, program.stopSignal)
        } catch {
            logger.debug("stop signal to worker \(id) not delivered: \(error)")
        }
    }

    /// When a held-back stop signal is looked at next.
    private var nextPendingStop: PoolInstant? {
        pendingStops.isEmpty ? nil : PoolInstant.now + Self.drainCheckInterval
    }

    private func deliverPendingStops(at now: PoolInstant) {
        for id in Array(pendingStops.keys) { requestProgramStop(id, at: now) }
    }

    /// Refuses a spawn that would eat into the descriptors kept for the control socket, so that
    /// an operator can still reach a watcher whose descriptors ran out; the spawn fails with
    /// backoff instead.
    private func checkDescriptorHeadroom(forWorkerNeeding needed: Int) throws {
        let headroom = Posix.descriptorHeadroom()
        if headroom < Self.reservedDescriptors + needed - 2 {
            throw SpawnRefusal(
                message: "only \(headroom) of \(Posix.descriptorLimit()) descriptors left; \(Self.reservedDescriptors) are kept for the control socket (raise the hard RLIMIT_NOFILE)")
        }
    }

    /// Descriptors a spawn leaves free: room for operators' control connections.
    static let reservedDescriptors = 16

    /// The most control bytes waiting for one worker. Far above any bootstrap or stop request:
    /// only a worker that reads nothing (wedged) reaches it, and its stop deadline kills it anyway.
    static let maximumOutbound = 1 << 20

    /// Sends a control message without ever waiting: what the channel has no room for waits in
    /// the process's outbound buffer and leaves when the monitor reports room, so a wedged
    /// worker delays no one else (a stop request's kill deadline ends it whatever happens).
    private func send(_ message: WatcherMessage, to id: WorkerID) {
        guard var process = processes[id] else { return }
        let bytes = ControlCodec.encode(message).encoded
        guard process.outbound.count + bytes.count <= Self.maximumOutbound else {
            logger.warning(
                "worker \(id) (pid \(process.pid)) has read none of its last \(process.outbound.count) control bytes; a message to it was dropped")
            return
        }
        process.outbound += bytes
        processes[id] = process
        flush(id)
    }

    /// Writes what the worker's control channel takes of its outbound bytes.
    private func flush(_ id: WorkerID) {
        guard var process = processes[id] else { return }
        if !process.outbound.isEmpty {
            do {
                let sent = try process.outbound.withUnsafeBytes { try Posix.sendNonBlocking(process.control, $0) } ?? 0
                process.outbound.removeFirst(sent)
            } catch {
                // The worker closed its end or died: its exit arrives through the pidfd.
                logger.debug("control message to worker \(id) not delivered: \(error)")
                process.outbound = []
            }
        }
        let wanted = !process.outbound.isEmpty
        if wanted != process.watchesWritable {
            monitor.setWritableInterest(process.control, wanted)
            process.watchesWritable = wanted
        }
        processes[id] = process
    }
}
