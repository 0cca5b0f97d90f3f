@testable import PoolEngine

/// A clock the test moves by hand; the watcher core only ever sees the instants it is given.
struct ManualClock {
    var now = PoolInstant(nanoseconds: 1_000_000_000)

    mutating func advance(_ duration: Duration) {
        now = now + duration
    }
}

/// A watcher core with a manual clock and helpers that play the watcher loop's part.
struct CoreHarness {
    var core: WatcherCore
    var clock = ManualClock()
    var nextPID: Int32 = 1000
    /// Every action the core asked for, in order.
    var log: [WatcherAction] = []
    var nextToken: UInt64 = 1
    /// The answers the core gave to commands, by token.
    var replies: [ReplyToken: CommandReply] = [:]

    init(_ groups: [WorkerGroup], stopTimeout: Duration = .seconds(10)) throws {
        let description = try PoolValidator.validate(
            name: "test", stopTimeout: stopTimeout, groups: groups, entryPoints: nil)
        core = WatcherCore(pool: description)
    }

    /// Feeds an input; answers every spawn with a pid, as the loop would.
    @discardableResult
    mutating func send(_ input: WatcherInput) -> [WatcherAction] {
        var actions = core.handle(input, at: clock.now)
        var all = actions
        // A standby handed a slot is the slot's process from then on, as a spawn is.
        func started(_ action: WatcherAction) -> (WorkerID, Int)? {
            switch action {
            case .spawn(let id, let generation), .promoteStandby(let id, let generation, _): return (id, generation)
            default: return nil
            }
        }
        while let index = actions.firstIndex(where: { started($0) != nil }) {
            guard let (id, generation) = started(actions.remove(at: index)) else { break }
            nextPID += 1
            let more = core.handle(.processDidSpawn(id, generation: generation, pid: nextPID), at: clock.now)
            actions += more
            all += more
        }
        log += all
        for action in all {
            if case .reply(let token, let answer) = action { replies[token] = answer }
        }
        return all
    }

    /// Sends a command with a fresh reply token; returns the actions and the token.
    @discardableResult
    mutating func command(_ command: WatcherCommand) -> [WatcherAction] {
        commandToken(command).actions
    }

    mutating func commandToken(_ command: WatcherCommand) -> (actions: [WatcherAction], token: ReplyToken) {
        let token = ReplyToken(rawValue: nextToken)
        nextToken += 1
        return (send(.command(command, reply: token)), token)
    }

    /// The refusal code a command got at once, or nil when it was accepted (or not answered yet).
    mutating func refusal(_ command: WatcherCommand) -> CommandError.Code? {
        let token = commandToken(command).token
        if case .failure(let error) = replies[token] { return error.code }
        return nil
    }

    /// Tells the core which workers have work in flight.
    mutating func busy(_ ids: [Int]) {
        var samples: [WorkerID: WorkerSample] = [:]
        for slot in core.slots where slot.state.hasProcess {
            var activity = WorkerActivity()
            if ids.contains(slot.id.rawValue) { activity.jobsInFlight = 1 }
            samples[slot.id] = WorkerSample(activity: activity)
        }
        send(.workersSampled(samples))
    }

    func generation(_ id: Int) -> Int { core.slot(WorkerID(id))!.generation }
    func state(_ id: Int) -> WorkerState { core.slot(WorkerID(id))!.state }

    mutating func ready(_ id: Int) { send(.workerDidBecomeReady(WorkerID(id), generation: generation(id))) }

    @discardableResult
    mutating func exit(_ id: Int, _ status: TerminationStatus, report: WorkerExitReport? = nil) -> [WatcherAction] {
        let generation = generation(id)
        if let report { send(.workerDidReport(WorkerID(id), generation: generation, report)) }
        return send(.processDidExit(WorkerID(id), generation: generation, status))
    }

    @discardableResult
    mutating func advance(_ duration: Duration) -> [WatcherAction] {
        clock.advance(duration)
        return send(.clockDidAdvance)
    }
}

extension [WatcherAction] {
    var spawned: [Int] {
        compactMap { if case .spawn(let id, _) = $0 { return id.rawValue } else { return nil } }
    }
    var stopRequests: [(Int, ExitReason)] {
        compactMap { if case .requestStop(let id, _, let request) = $0 { return (id.rawValue, request.reason) } else { return nil } }
    }
    /// Slots given a standby's process.
    var promoted: [Int] {
        compactMap { if case .promoteStandby(let id, _, _) = $0 { return id.rawValue } else { return nil } }
    }
    /// Standby generations started, by group index.
    var standbysStarted: [(group: Int, generation: Int)] {
        compactMap { if case .spawnStandby(let group, let generation, false) = $0 { return (group, generation) } else { return nil } }
    }
    /// Fork server generations started, by group index.
    var forkServersStarted: [(group: Int, generation: Int)] {
        compactMap { if case .spawnStandby(let group, let generation, true) = $0 { return (group, generation) } else { return nil } }
    }
    /// Slots whose process a fork server forks, with the server's generation.
    var forked: [(slot: Int, server: Int)] {
        compactMap { if case .forkWorker(let id, _, let server) = $0 { return (id.rawValue, server) } else { return nil } }
    }
    var killed: [Int] {
        compactMap { if case .kill(let id, _) = $0 { return id.rawValue } else { return nil } }
    }
    var finish: PoolFailure?? {
        for action in self { if case .finish(let failure) = action { return .some(failure) } }
        return nil
    }
    var exits: [WorkerExitRecord] {
        compactMap { if case .emit(.workerExited(let record)) = $0 { return record } else { return nil } }
    }
    var backoffDelays: [Duration] {
        compactMap { if case .emit(.workerBackingOff(_, _, let delay)) = $0 { return delay } else { return nil } }
    }
}
