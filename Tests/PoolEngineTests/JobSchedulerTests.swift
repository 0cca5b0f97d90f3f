import Testing

@testable import PoolEngine

/// A handler the test steers: each job waits until released, and the order of starts is recorded.
final class SteeredHandler: JobHandler {
    private let state = Mutex<(started: [String], gates: [String: CheckedContinuation<Void, Never>], open: Set<String>)>(([], [:], []))

    var started: [String] { state.withLock { $0.started } }

    func release(_ name: String) {
        let gate = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.open.insert(name)
            return state.gates.removeValue(forKey: name)
        }
        gate?.resume()
    }

    func handle(_ job: Job) async throws -> [UInt8] {
        let name = job.text
        if name.hasPrefix("fail") { throw SteeredFailure() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let openAlready = state.withLock { state -> Bool in
                    state.started.append(name)
                    if state.open.contains(name) { return true }
                    state.gates[name] = continuation
                    return false
                }
                if openAlready { continuation.resume() }
            }
        } onCancel: {
            self.release(name)
        }
        try Task.checkCancellation()
        return Array("done \(name)".utf8)
    }
}

struct SteeredFailure: Error, CustomStringConvertible {
    var description: String { "steered failure" }
}

/// The steered handler, starting inline: `echo` answers without suspending, anything else
/// waits at its gate.
final class InlineHandler: JobHandler {
    let steered = SteeredHandler()
    var startsInline: Bool { true }
    private let answered = Mutex<[(text: String, task: Int)]>([])
    /// The echoes answered, in order, with the task each ran in.
    var echoes: [(text: String, task: Int)] { answered.withLock { $0 } }

    func handle(_ job: Job) async throws -> [UInt8] {
        if job.text.hasPrefix("echo ") {
            let text = String(job.text.dropFirst(5))
            let task = withUnsafeCurrentTask { $0?.hashValue ?? 0 }
            answered.withLock { $0.append((text, task)) }
            return Array(text.utf8)
        }
        return try await steered.handle(job)
    }
}

/// Collects replies by job id.
final class Replies: Sendable {
    private let frames = Mutex<[UInt64: JobFrame]>([:])
    var reply: JobScheduler.Reply { { frame in self.store(frame) } }
    func store(_ frame: JobFrame) {
        switch frame {
        case .result(let result): frames.withLock { $0[result.jobID] = frame }
        case .error(let error): frames.withLock { $0[error.jobID] = frame }
        default: break
        }
    }
    subscript(_ id: UInt64) -> JobFrame? { frames.withLock { $0[id] } }
    var count: Int { frames.withLock { $0.count } }
}

func request(_ id: UInt64, _ text: String, priority: Int32 = 0, weight: UInt32 = 1, deadline: UInt64 = 0) -> JobRequestFrame {
    JobRequestFrame(jobID: id, deadline: deadline, priority: priority, weight: weight, senderWorker: 0, senderGroup: 0, payload: Array(text.utf8))
}

func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

/// amphp-pool's SchedulerTest for the job executor's scheduler, and its limits.
@Suite("Job scheduler: priority, limits, queue bound, cancellation, drain")
struct JobSchedulerTests {
    @Test("higher priority runs first; equal priorities run in arrival order")
    func priorityOrder() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 10), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "first"), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["first"] })
        scheduler.submit(request(2, "low-a", priority: 0), connection: 1, reply: replies.reply)
        scheduler.submit(request(3, "high", priority: 5), connection: 1, reply: replies.reply)
        scheduler.submit(request(4, "low-b", priority: 0), connection: 1, reply: replies.reply)
        scheduler.submit(request(5, "mid", priority: 2), connection: 1, reply: replies.reply)
        for name in ["first", "high", "mid", "low-a", "low-b"] {
            #expect(await eventually { handler.started.last == name })
            handler.release(name)
        }
        #expect(await eventually { replies.count == 5 })
        #expect(handler.started == ["first", "high", "mid", "low-a", "low-b"])
    }

    @Test("no more than maxConcurrentJobs run at once, and weight is limited too")
    func limits() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(
            limits: JobExecutorConfiguration(maxConcurrentJobs: 2, maxConcurrentWeight: 5, maxQueuedJobs: 10), workerID: WorkerID(1),
            handler: handler)
        scheduler.submit(request(1, "a", weight: 3), connection: 1, reply: replies.reply)
        scheduler.submit(request(2, "b", weight: 3), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["a"] })
        try? await Task.sleep(for: .milliseconds(20))
        #expect(handler.started == ["a"], "b waits: 3 + 3 is over the weight limit of 5")
        handler.release("a")
        #expect(await eventually { handler.started == ["a", "b"] })
        scheduler.submit(request(3, "c", weight: 1), connection: 1, reply: replies.reply)
        scheduler.submit(request(4, "d", weight: 1), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["a", "b", "c"] })
        try? await Task.sleep(for: .milliseconds(20))
        #expect(scheduler.load.running == 2, "two at once")
        for name in ["b", "c", "d"] { handler.release(name) }
        #expect(await eventually { replies.count == 4 })
    }

    @Test("past the queue bound a job is rejected with an explicit error")
    func rejection() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 1), workerID: WorkerID(7), handler: handler)
        scheduler.submit(request(1, "run"), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["run"] })
        scheduler.submit(request(2, "queued"), connection: 1, reply: replies.reply)
        scheduler.submit(request(3, "refused"), connection: 1, reply: replies.reply)
        guard case .error(let error)? = replies[3] else {
            Issue.record("expected a rejection, got \(String(describing: replies[3]))")
            return
        }
        #expect(error.code == .rejected)
        #expect(error.message.contains("worker 7 is full"))
        handler.release("run")
        handler.release("queued")
        #expect(await eventually { replies.count == 3 })
    }

    @Test("a handler's error reaches the sender as handler-failed with its message; the executor goes on")
    func handlerError() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "fail now"), connection: 1, reply: replies.reply)
        #expect(await eventually { replies[1] != nil })
        guard case .error(let error)? = replies[1] else {
            Issue.record("expected an error")
            return
        }
        #expect(error.code == .handlerFailed && error.message == "steered failure")
        scheduler.submit(request(2, "fine"), connection: 1, reply: replies.reply)
        handler.release("fine")
        #expect(await eventually { if case .result? = replies[2] { return true } else { return false } })
    }

    @Test("cancelling a queued job answers at once; cancelling a running one cancels its task")
    func cancellation() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "running"), connection: 1, reply: replies.reply)
        scheduler.submit(request(2, "queued"), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["running"] })
        scheduler.cancel(connection: 1, jobID: 2)
        guard case .error(let queued)? = replies[2] else {
            Issue.record("expected the queued job's cancellation")
            return
        }
        #expect(queued.code == .cancelled)
        scheduler.cancel(connection: 1, jobID: 1)
        #expect(await eventually { replies[1] != nil })
        guard case .error(let running)? = replies[1] else {
            Issue.record("expected the running job's cancellation")
            return
        }
        #expect(running.code == .cancelled)
    }

    @Test("a job whose deadline passed in the queue is answered timed-out without running")
    func expiredInQueue() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "blocker"), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.started == ["blocker"] })
        scheduler.submit(request(2, "late", deadline: Posix.monotonicNanoseconds() + 1_000_000), connection: 1, reply: replies.reply)
        try? await Task.sleep(for: .milliseconds(5))
        handler.release("blocker")
        #expect(await eventually { replies[2] != nil })
        guard case .error(let error)? = replies[2] else {
            Issue.record("expected a timeout")
            return
        }
        #expect(error.code == .timedOut)
        #expect(handler.started == ["blocker"])
    }

    @Test("a handler that starts inline answers an idle worker's job before submit returns; jobs meanwhile run in parallel")
    func inlineStart() async throws {
        let handler = InlineHandler()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 4, maxQueuedJobs: 10), workerID: WorkerID(1), handler: handler)
        let replies = Replies()
        // Idle: the job runs on this thread, to its end, inside submit.
        scheduler.submit(request(1, "echo quick"), connection: 1, reply: replies.reply)
        guard case .result(let quick) = replies[1] else {
            Issue.record("no reply when submit returned: \(String(describing: replies[1]))")
            return
        }
        #expect(quick.payload == Array("quick".utf8))
        // A job that suspends lets submit return; the next one, arriving while it runs, starts
        // as a task of its own and runs beside it rather than after it.
        scheduler.submit(request(2, "first"), connection: 1, reply: replies.reply)
        #expect(handler.steered.started == ["first"])
        scheduler.submit(request(3, "second"), connection: 1, reply: replies.reply)
        #expect(await eventually { handler.steered.started.count == 2 })
        #expect(scheduler.load.running == 2)
        handler.steered.release("second")
        handler.steered.release("first")
        #expect(await eventually { replies.count == 3 })
        #expect(scheduler.load.running == 0)
    }

    @Test("requests held for the rest of their read start together: by priority, quick inline ones in one task, one that suspends beside the rest")
    func heldStarts() async throws {
        let handler = InlineHandler()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 4, maxQueuedJobs: 10), workerID: WorkerID(1), handler: handler)
        let replies = Replies()
        scheduler.submit(request(1, "echo low", priority: 0), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(2, "echo high", priority: 3), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(3, "echo mid", priority: 1), connection: 1, holdStart: true, reply: replies.reply)
        #expect(replies.count == 0, "held: nothing starts before the read is handed over")
        #expect(scheduler.load.queued == 3)
        scheduler.startHeld()
        // All answered inside startHeld, on this thread, highest priority first, in one task.
        #expect(replies.count == 3)
        #expect(handler.echoes.map(\.text) == ["high", "mid", "low"])
        #expect(Set(handler.echoes.map(\.task)).count == 1, "one task for the run: \(handler.echoes)")
        // A job that suspends ends the run; the ones behind it start at once, in parallel.
        scheduler.submit(request(4, "echo a"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(5, "waits"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(6, "echo b"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(7, "echo c"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.startHeld()
        #expect(handler.steered.started == ["waits"])
        #expect(await eventually { replies.count == 6 }, "b and c did not wait for the suspended job")
        #expect(replies[5] == nil)
        #expect(handler.echoes.map(\.text).suffix(3) == ["a", "b", "c"])
        handler.steered.release("waits")
        #expect(await eventually { replies.count == 7 })
        #expect(scheduler.load.running == 0 && scheduler.load.queued == 0)
    }

    @Test("held requests count as started against the queue bound, as if each had started on arrival")
    func heldStartsAndTheBound() {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1, maxQueuedJobs: 1), workerID: WorkerID(7), handler: handler)
        scheduler.submit(request(1, "runs"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(2, "waits"), connection: 1, holdStart: true, reply: replies.reply)
        scheduler.submit(request(3, "refused"), connection: 1, holdStart: true, reply: replies.reply)
        guard case .error(let error)? = replies[3] else {
            Issue.record("expected the third refused, got \(String(describing: replies[3]))")
            return
        }
        #expect(error.code == .rejected)
        #expect(error.message == "worker 7 is full: 0 running, 1 queued (limit 1)")
        #expect(replies[1] == nil && replies[2] == nil)
        scheduler.startHeld()
        #expect(scheduler.load.running == 1 && scheduler.load.queued == 1)
        handler.release("runs")
        handler.release("waits")
    }

    @Test("the activity part counts held jobs once each, a cancel before the start included, and names each job of a run as it runs")
    func heldStartsCounted() async {
        let handler = InlineHandler()
        let replies = Replies()
        let recorded = Mutex(WorkerActivity())
        let named = Mutex<[UInt64]>([])
        let scheduler = JobScheduler(
            limits: JobExecutorConfiguration(maxConcurrentJobs: 4, maxQueuedJobs: 10), workerID: WorkerID(1), handler: handler,
            activity: { change in
                recorded.withLock { activity in
                    change(&activity)
                    if activity.currentJobID != 0 && named.withLock({ $0.last }) != activity.currentJobID {
                        named.withLock { $0.append(activity.currentJobID) }
                    }
                }
            })
        for id in UInt64(1)...4 { scheduler.submit(request(id, "echo \(id)"), connection: 1, holdStart: true, reply: replies.reply) }
        // A cancel read with them, before they start: answered at once, never run.
        scheduler.cancel(connection: 1, jobID: 2)
        scheduler.startHeld()
        #expect(replies.count == 4)
        guard case .error(let cancelled)? = replies[2] else {
            Issue.record("expected job 2 cancelled, got \(String(describing: replies[2]))")
            return
        }
        #expect(cancelled.code == .cancelled)
        let activity = recorded.withLock { $0 }
        #expect(activity.jobsAccepted == 4)
        #expect(activity.jobsProcessed == 4)
        #expect(activity.jobsInFlight == 0 && activity.inFlightWeight == 0)
        #expect(activity.currentJobID == 0, "nothing runs any more")
        #expect(named.withLock { $0 } == [1, 3, 4], "each job of the run was named while it ran")
    }

    @Test("drain stops taking jobs and returns when queued and running ones are done (stopAll, awaitAll)")
    func drain() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 1), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "one"), connection: 1, reply: replies.reply)
        scheduler.submit(request(2, "two"), connection: 1, reply: replies.reply)
        let draining = Task { await scheduler.drain() }
        #expect(await eventually { handler.started == ["one"] })
        scheduler.submit(request(3, "late"), connection: 1, reply: replies.reply)
        guard case .error(let refused)? = replies[3] else {
            Issue.record("expected the late job refused")
            return
        }
        #expect(refused.code == .stopping)
        handler.release("one")
        #expect(await eventually { handler.started == ["one", "two"] })
        handler.release("two")
        await draining.value
        #expect(replies.count == 3)
        guard case .result? = replies[2] else {
            Issue.record("the queued job was drained, not dropped")
            return
        }
    }

    @Test("a closed connection cancels its jobs without touching other connections'")
    func connectionClosed() async {
        let handler = SteeredHandler()
        let replies = Replies()
        let scheduler = JobScheduler(limits: JobExecutorConfiguration(maxConcurrentJobs: 2), workerID: WorkerID(1), handler: handler)
        scheduler.submit(request(1, "mine"), connection: 1, reply: replies.reply)
        scheduler.submit(request(1, "theirs"), connection: 2, reply: replies.reply)
        #expect(await eventually { handler.started.count == 2 })
        scheduler.cancelAll(connection: 1)
        #expect(await eventually { scheduler.load.running == 1 })
        handler.release("theirs")
        #expect(await eventually { scheduler.load.running == 0 })
    }
}

@Suite("Pickup strategies")
struct PickupStrategyTests {
    let candidates = [
        PickupCandidate(id: WorkerID(3), jobsInFlight: 2, inFlightWeight: 1),
        PickupCandidate(id: WorkerID(1), jobsInFlight: 1, inFlightWeight: 9),
        PickupCandidate(id: WorkerID(2), jobsInFlight: 1, inFlightWeight: 4),
    ]

    @Test("least jobs picks the least loaded even when all are busy, rotating among ties")
    func leastJobs() {
        let pickup = LeastJobsPickup()
        let picks = (0..<4).compactMap { _ in pickup.pick(from: candidates, weight: 1, priority: 0)?.0 }
        #expect(Set(picks) == [WorkerID(1), WorkerID(2)])
        #expect(pickup.pick(from: [], weight: 1, priority: 0) == nil)
    }

    @Test("round robin visits every worker in id order")
    func roundRobin() {
        let pickup = RoundRobinPickup()
        let picks = (0..<6).compactMap { _ in pickup.pick(from: candidates, weight: 1, priority: 0)?.0.rawValue }
        #expect(picks == [1, 2, 3, 1, 2, 3])
    }

    @Test("first available prefers the first idle worker, else the first ready one")
    func firstAvailable() {
        let pickup = FirstAvailablePickup()
        #expect(pickup.pick(from: candidates, weight: 1, priority: 0)?.0 == WorkerID(1))
        let withIdle = candidates + [PickupCandidate(id: WorkerID(4), jobsInFlight: 0, inFlightWeight: 0)]
        #expect(pickup.pick(from: withIdle, weight: 1, priority: 0)?.0 == WorkerID(4))
    }

    @Test("by weight picks the least weight in flight")
    func byWeight() {
        #expect(ByWeightPickup().pick(from: candidates, weight: 1, priority: 0)?.0 == WorkerID(3))
    }

    @Test("each built-in says why in words an operator reads, made from the figures it keeps")
    func reasons() {
        let words = [
            LeastJobsPickup().pick(from: candidates, weight: 1, priority: 0)?.1,
            RoundRobinPickup().pick(from: candidates, weight: 1, priority: 0)?.1,
            RandomPickup().pick(from: candidates, weight: 1, priority: 0)?.1,
            FirstAvailablePickup().pick(from: candidates, weight: 1, priority: 0)?.1,
            ByWeightPickup().pick(from: candidates, weight: 1, priority: 0)?.1,
        ]
        #expect(words == [
            "least jobs in flight (1) of 3 ready", "round robin over 3 ready", "random among 3 ready",
            "first ready worker (none idle)", "least weight in flight (1) of 3 ready",
        ])
        #expect(PickupReason.leastJobs(inFlight: 1, ready: 3) == .text("least jobs in flight (1) of 3 ready"), "the same words, however kept")
    }

    @Test("a strategy of one's own is called as the built-in ones are, and its reason is its own words")
    func ownStrategy() {
        struct LastOne: PickupStrategy {
            var descriptor: StrategyDescriptor { StrategyDescriptor(name: "last-one") }
            func pick(from candidates: [PickupCandidate], weight: Int, priority: Int) -> (WorkerID, String)? {
                candidates.last.map { ($0.id, "the last of \(candidates.count), weight \(weight)") }
            }
        }
        let own = OwnPickup(strategy: LastOne())
        guard let (chosen, reason) = own.choose(from: candidates, weight: 4, priority: 0) else {
            Issue.record("no pick")
            return
        }
        #expect(chosen == WorkerID(2))
        #expect(reason == .text("the last of 3, weight 4"))
        #expect(own.descriptor.name == "last-one")
        #expect(own.choose(from: [], weight: 1, priority: 0) == nil)
    }

    @Test("random picks only among the candidates")
    func random() {
        let ids = Set(candidates.map(\.id))
        for _ in 0..<20 { #expect(ids.contains(RandomPickup().pick(from: candidates, weight: 1, priority: 0)!.0)) }
    }

    @Test("descriptors rebuild the same strategy in another process; unknown names need a registration")
    func descriptors() {
        for name in PickupStrategies.builtIn {
            #expect(PickupStrategies.make(StrategyDescriptor(name: name), registry: nil)?.descriptor.name == name)
        }
        #expect(PickupStrategies.make(StrategyDescriptor(name: "mine"), registry: nil) == nil)
        var registry = EntryPoints()
        registry.registerPickup("mine") { _ in ByWeightPickup() }
        #expect(PickupStrategies.make(StrategyDescriptor(name: "mine"), registry: registry) != nil)
    }
}

/// The wait-mode chooser of the job client, fed with made-up times per job.
@Suite("Job client: choosing how a polling sender waits")
struct JobWaitChooserTests {
    /// Runs `blocks` blocks, each job taking `cost(mode)` nanoseconds; returns the modes used.
    func run(_ chooser: inout JobWaitChooser, blocks: Int, cost: (JobWaitMode) -> UInt64) -> [JobWaitMode] {
        var clock: UInt64 = 1_000
        var used: [JobWaitMode] = []
        // A cycle runs from one answer to the next: the very first answer only starts the chain.
        if chooser.averages.allSatisfy({ $0 == nil }) { chooser.ended(chooser.mode, answered: true, now: clock) }
        for _ in 0..<blocks {
            let mode = chooser.mode
            used.append(mode)
            for _ in 0..<JobWaitChooser.blockSize {
                let chosen = chooser.next()
                #expect(chosen == mode, "a block keeps one mode")
                clock += cost(chosen)
                chooser.ended(chosen, answered: true, now: clock)
            }
        }
        return used
    }

    @Test("it tries each, keeps the fastest, tries the others in turn every 16th block, and follows a change")
    func choosesAndFollows() {
        var chooser = JobWaitChooser()
        let first = run(&chooser, blocks: 48, cost: { [.poll: 15_000, .receive: 17_500, .spin: 20_000][$0]! })
        #expect(first.prefix(3) == [.poll, .receive, .spin], "each is tried first")
        // After the 16th and 32nd blocks the next one explores; every other block uses poll.
        let explored = first.indices.dropFirst(3).filter { first[$0] != .poll }
        #expect(explored == [16, 32], "\(first)")
        #expect(first[16] != first[32], "the two others in turn: \(first)")
        // The placement changes (sender and worker on two CPUs): spinning is now much faster.
        let after = run(&chooser, blocks: 48, cost: { [.poll: 50_000, .receive: 36_000, .spin: 18_000][$0]! })
        #expect(after.suffix(16).filter { $0 == .spin }.count >= 15, "\(after)")
    }

    @Test("a difference under 5 % does not flip the mode, and a missed answer spoils its block")
    func hysteresisAndMisses() {
        var chooser = JobWaitChooser()
        _ = run(&chooser, blocks: 3, cost: { [.poll: 10_000, .receive: 10_300, .spin: 10_500][$0]! })
        let steady = run(&chooser, blocks: 15, cost: { [.poll: 10_200, .receive: 10_000, .spin: 10_400][$0]! })
        #expect(steady.filter { $0 == .poll }.count >= 14, "3 % better is not enough to switch: \(steady)")
        // A miss breaks the chain: the pause before the next answer is not a cycle.
        let before = chooser.averages
        chooser.ended(chooser.mode, answered: false, now: 5_000_000_000)
        chooser.ended(chooser.mode, answered: true, now: 9_000_000_000)
        #expect(chooser.averages == before)
    }

    @Test("an idle pause inside a block does not count against the mode in use")
    func idlePauseIgnored() {
        var chooser = JobWaitChooser()
        _ = run(&chooser, blocks: 3, cost: { [.poll: 15_000, .receive: 17_500, .spin: 20_000][$0]! })
        #expect(chooser.mode == .poll)
        var clock: UInt64 = 10_000_000_000
        chooser.ended(.poll, answered: false, now: clock)
        chooser.ended(.poll, answered: true, now: clock)
        for index in 0..<JobWaitChooser.blockSize {
            // One cycle of the block lasts a second (the sender was idle), the rest 15 µs.
            clock += index == 10 ? 1_000_000_000 : 15_000
            chooser.ended(.poll, answered: true, now: clock)
        }
        #expect(chooser.mode == .poll, "the median ignores the pause: \(chooser.averages)")
    }
}
