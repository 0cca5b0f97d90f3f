import FoundationEssentials
import Glibc
import Logging
import PoolConsole
import PoolDemo
import PoolEngine

/// Figures of one benchmark, printed as one JSON line.
struct Figure {
    var name: String
    var unit = "ms"
    var samples: [Double]
    var floor: [Double] = []
    var target: Double?
    /// The target is a least value (a rate), not a most (a time).
    var targetIsMinimum = false
    /// A target on the ratio to the floor instead of on the median (issue 16's targets are
    /// ratios: absolute times move too much between hosts); `targetIsMinimum` applies to it too.
    var ratioTarget: Double?
    var note: String?

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        let rank = Int((p * Double(sorted.count - 1)).rounded())
        return sorted[rank]
    }

    func print() {
        let median = Self.percentile(samples, 0.5)
        var fields = [
            "\"bench\":\"\(name)\"", "\"unit\":\"\(unit)\"", "\"runs\":\(samples.count)",
            "\"median\":\(format(median))", "\"p90\":\(format(Self.percentile(samples, 0.9)))",
        ]
        if !floor.isEmpty {
            let floorMedian = Self.percentile(floor, 0.5)
            fields.append("\"floor_median\":\(format(floorMedian))")
            fields.append("\"ratio_to_floor\":\(format(median / floorMedian))")
        }
        if let target {
            fields.append("\"target\":\(format(target))")
            fields.append("\"meets_target\":\(targetIsMinimum ? median >= target : median <= target)")
        }
        if let ratioTarget, !floor.isEmpty {
            let ratio = median / Self.percentile(floor, 0.5)
            fields.append("\"target_ratio\":\(format(ratioTarget))")
            fields.append("\"meets_target\":\(targetIsMinimum ? ratio >= ratioTarget : ratio <= ratioTarget)")
        }
        if let note { fields.append("\"note\":\"\(note)\"") }
        Swift.print("{" + fields.joined(separator: ",") + "}")
        // stdout is a pipe or a file under `make bench`: flush so a figure is never lost.
        fflush(nil)
    }

    private func format(_ value: Double) -> String { formatFigure(value) }
}

/// A figure to three decimals, or null (JSON has no NaN).
func formatFigure(_ value: Double) -> String {
    value.isFinite ? String(Double(Int((value * 1000).rounded())) / 1000) : "null"
}

/// A knob's comma-separated words (`POOLBENCH_ONLY=spawn,kill`), nil when it is not set.
func environmentList(_ name: String) -> [String]? {
    getenv(name).map { String(cString: $0).split(separator: ",").map(String.init) }
}

func nowMicroseconds() -> Double { nowMilliseconds() * 1000 }

func nowMilliseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}

func selfExecutable() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    return String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// `posix_spawn` with every signal unblocked in the child: spawned from a Dispatch thread, a
/// child would inherit its blocked signals (SIGTERM among them) and never see the one that
/// stops it. nil when the spawn failed.
func spawnUnmasked(
    _ path: String, _ argv: [UnsafeMutablePointer<CChar>?], environment: [UnsafeMutablePointer<CChar>?]? = nil,
    actions: inout posix_spawn_file_actions_t
) -> pid_t? {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var emptyMask = sigset_t()
    sigemptyset(&emptyMask)
    posix_spawnattr_setsigmask(&attributes, &emptyMask)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    var pid: pid_t = 0
    let status = environment.map { posix_spawn(&pid, path, &actions, &attributes, argv, $0) }
        ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
    return status == 0 ? pid : nil
}

/// Spawns this binary with `extra` environment and one end of a socketpair as fd 3.
func spawnSelf(arguments: [String] = [], environment extra: [String]) -> (pid: pid_t, channel: Int32) {
    spawnProgram(selfExecutable(), arguments: arguments, environment: extra)
}

/// Spawns `path` with the bench's environment plus `extra`, one end of a socket pair at fd 3.
func spawnProgram(_ path: String, arguments: [String] = [], environment extra: [String]) -> (pid: pid_t, channel: Int32) {
    var fds: [Int32] = [0, 0]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
    var environment: [String] = []
    var cursor = 0
    while let entry = environ(at: cursor) {
        environment.append(entry)
        cursor += 1
    }
    environment += extra
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    let pid = spawnUnmasked(path, argv, environment: envp, actions: &actions) ?? 0
    posix_spawn_file_actions_destroy(&actions)
    argv.forEach { free($0) }
    envp.forEach { free($0) }
    close(fds[1])
    return (pid, fds[0])
}

/// The environment entry at `index` of this process, read from /proc (Swift 6 refuses `environ`).
func environ(at index: Int) -> String? {
    environmentEntries.count > index ? environmentEntries[index] : nil
}

let environmentEntries: [String] = {
    guard let file = fopen("/proc/self/environ", "r") else { return [] }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
}()

func waitReadable(_ fd: Int32, timeoutMilliseconds: Int32 = 10_000) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, timeoutMilliseconds) == 1
}

func reap(_ pid: pid_t) {
    var status: Int32 = 0
    waitpid(pid, &status, 0)
}

/// Time from spawn to the first byte on fd 3 for `count` floor children spawned together.
func floorSpawn(count: Int) -> Double {
    let start = nowMilliseconds()
    let children = (0..<count).map { _ in spawnSelf(environment: ["POOLBENCH_FLOOR=1"]) }
    for child in children { _ = waitReadable(child.channel) }
    let elapsed = nowMilliseconds() - start
    for child in children {
        reap(child.pid)
        close(child.channel)
    }
    return elapsed
}

/// Records the monotonic time each event arrives at a subscriber.
///
/// Waiting for a count of ready events suspends until the event that reaches it arrives: no
/// polling. A poll every 200 µs (as this used to do) woke two of this process's task threads
/// each time, on the CPU where the starting worker ran, and so slowed the very start it timed
/// (`perf sched` over `POOLBENCH_ONLY=kill`, docs/benchmarks.md).
final class TimedEvents: Sendable {
    private struct State {
        var events: [(Double, PoolEvent)] = []
        var readyCount = 0
        var waiters: [(id: Int, count: Int, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    init(_ pool: WorkerPool) {
        let stream = pool.events()
        Task { [self] in
            for await event in stream {
                let now = nowMilliseconds()
                let reached = state.withLock { state in
                    state.events.append((now, event))
                    guard case .workerReady = event else { return [CheckedContinuation<Bool, Never>]() }
                    state.readyCount += 1
                    let count = state.readyCount
                    let reached = state.waiters.filter { $0.count <= count }.map(\.continuation)
                    state.waiters.removeAll { $0.count <= count }
                    return reached
                }
                for continuation in reached { continuation.resume(returning: true) }
            }
        }
    }

    var all: [(Double, PoolEvent)] { state.withLock { $0.events } }

    /// When each worker-hung event arrived.
    var hung: [Double] {
        all.compactMap { time, event in
            if case .workerHung = event { return time } else { return nil }
        }
    }

    /// When each worker-starting event (a process spawned) arrived.
    var starting: [Double] {
        all.compactMap { time, event in
            if case .workerStarting = event { return time } else { return nil }
        }
    }

    var ready: [(Double, WorkerID, Int32)] {
        all.compactMap { time, event in
            if case .workerReady(let id, _, let pid, _) = event { return (time, id, pid) } else { return nil }
        }
    }

    /// Suspends until `count` ready events have arrived (true) or the timeout passed (false).
    func waitForReady(_ count: Int, timeoutMilliseconds: Double = 20_000) async -> Bool {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timeout = Task { [self] in
            try await Task.sleep(for: .milliseconds(Int(timeoutMilliseconds)))
            let expired = state.withLock { state in
                let waiter = state.waiters.first { $0.id == id }
                state.waiters.removeAll { $0.id == id }
                return waiter?.continuation
            }
            expired?.resume(returning: false)
        }
        defer { timeout.cancel() }
        return await withCheckedContinuation { continuation in
            let reached = state.withLock { state in
                if state.readyCount >= count { return true }
                state.waiters.append((id, count, continuation))
                return false
            }
            if reached { continuation.resume(returning: true) }
        }
    }
}

func makePool(name: String, workers: Int, backoff: RestartBackoff = .standard) -> WorkerPool {
    makePool(name: name, WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: workers, name: "idle", restart: .always(backoff: backoff)))
}

/// A quiet in-process pool of the demo's entry points with one group.
func makePool(name: String, _ group: WorkerGroup) -> WorkerPool {
    makePool(name: name, [group])
}

/// A quiet in-process pool of the demo's entry points with these groups.
func makePool(name: String, _ groups: [WorkerGroup]) -> WorkerPool {
    let pool = WorkerPool(
        name: name, entryPoints: DemoPool.entryPoints,
        configuration: WorkerPool.Configuration(stopTimeout: .seconds(5), handlesSignals: false),
        logger: quietLogger)
    // Safe: the groups are valid by construction and describeGroup only fails after run().
    for group in groups { try! pool.describeGroup(group) }
    return pool
}

/// resetAfter 0: every exit counts as the first after a stable run, so no backoff delay hides
/// a replacement's time (the default backoff would wait 100 ms from the second exit on).
let noBackoffDelay = RestartBackoff(initial: .milliseconds(100), factor: 2, maximum: .seconds(30), resetAfter: .zero)

/// The bench kills workers on purpose: their exits are not worth printing.
let quietLogger: Logger = {
    var logger = Logger(label: "bench")
    logger.logLevel = getenv("POOLBENCH_LOG") != nil ? .debug : .critical
    return logger
}()

enum Benchmarks {
    /// The demo pool's shape: five groups, seven workers (`spawn_to_ready_5_groups`).
    static let demoShape = [2, 1, 1, 2, 1]

    /// `run()` until `workers` workers are ready, in one group or in `groups`; without
    /// `forkServer` every worker is spawned, and the figure's name ends in `_spawned`.
    static func spawnReady(workers: Int, runs: Int, ratioTarget: Double?, groups: [Int]? = nil, forkServer: Bool = true) async {
        var samples: [Double] = []
        var spawned: [Double] = []
        var floor: [Double] = []
        for run in 0..<runs {
            floor.append(floorSpawn(count: workers))
            let name = "bench-spawn-\(getpid())-\(run)"
            let pool = makePool(name: name, (groups ?? [workers]).enumerated().map { index, size in
                var group = WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: size, name: "g\(index)")
                group.forkServer = forkServer
                return group
            })
            let events = TimedEvents(pool)
            let start = nowMilliseconds()
            let task = Task { try await pool.run() }
            guard await events.waitForReady(workers) else {
                print("# spawn_ready: workers did not become ready")
                pool.stop()
                pool.stop()
                return
            }
            samples.append(events.ready.map(\.0).max()! - start)
            if let last = events.starting.max() { spawned.append(last - start) }
            pool.stop()
            _ = try? await task.value
        }
        Figure(
            name: (groups.map { "spawn_to_ready_\($0.count)_groups" } ?? "spawn_to_ready_\(workers)") + (forkServer ? "" : "_spawned"),
            samples: samples, floor: floor, ratioTarget: ratioTarget,
            note: "run() to every worker ready\(groups.map { " (\($0.count) groups of \($0.map(String.init).joined(separator: ", ")) workers, the demo pool's shape)" } ?? "")\(forkServer ? ", each group's workers forked by its fork server (decision 0028)" : ", forkServer: false (every worker spawned)"); floor: \(workers) spawns of this binary to their first byte on fd 3"
        ).print()
        guard workers > 1, groups == nil, forkServer else { return }
        // Whether spawning from the watcher's one thread is the bound: the last spawn's time
        // against every worker ready, in the same runs.
        Figure(
            name: "spawn_loop_\(workers)", samples: spawned, floor: samples,
            note: "run() to the last worker-starting event (all \(workers) processes started, one spawn or fork after another on the monitor thread; by default the group's fork server is spawned first and forks the workers, decision 0028); floor: spawn_to_ready_\(workers) of the same runs, so the ratio is the share of the start spent spawning"
        ).print()
    }

    /// How a killed worker's replacement starts in ``killToReplacement(kills:start:)``.
    enum ReplacementStart: String {
        /// The group's defaults: forked by its fork server (decision 0028).
        case fork
        /// `forkServer: false`: spawned (posix_spawn, exec).
        case spawned
        /// `standby: true`: the standby process, started ahead (decision 0023).
        case standby
    }

    /// SIGKILL of one of 8 workers to its replacement's ready event, in turn.
    static func killToReplacement(kills: Int, start: ReplacementStart) async {
        var group = WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: 8, name: "idle", restart: .always(backoff: noBackoffDelay))
        group.standby = start == .standby
        group.forkServer = start != .spawned
        let pool = makePool(name: "bench-kill-\(getpid())", group)
        let events = TimedEvents(pool)
        let task = Task { try await pool.run() }
        guard await events.waitForReady(8) else {
            pool.stop()
            return
        }
        // The first standby or fork server starts once the eighth worker is ready: let it get there.
        if start != .spawned { try? await Task.sleep(for: .milliseconds(50)) }
        let samples = await killInTurn(events, slots: 8, kills: kills)
        pool.stop()
        _ = try? await task.value
        let floor = (0..<kills).map { _ in floorSpawn(count: 1) }
        let (name, note) = switch start {
        case .fork:
            ("sigkill_to_replacement_ready", "SIGKILL of one of 8 workers to its replacement ready, the group as configured by default (the replacement is forked by its fork server); floor: one spawn to first byte")
        case .spawned:
            ("sigkill_to_replacement_ready_spawned", "as sigkill_to_replacement_ready, the group with forkServer: false (the replacement is spawned), to compare: the target is the default's; floor: one spawn to first byte")
        case .standby:
            ("sigkill_to_replacement_ready_standby", "as sigkill_to_replacement_ready, the group with standby: true (the replacement is the standby process); floor: one spawn to first byte")
        }
        // The target (issue 16) is for a group as configured by default, and for one with a
        // standby (decision 0023); without the fork server the figure shows what it saves.
        Figure(name: name, samples: samples, floor: floor, ratioTarget: start == .spawned ? nil : 1.5, note: note).print()
    }

    /// SIGSTOP of one of 4 idle job workers with `hangTimeout: 1s` until the watcher says it is
    /// hung, in turn; the floor is the timeout itself (the check fires `hangTimeout` after the
    /// last beat, and beats come every 250 ms at this timeout, so 0.75–1.0× is on time).
    static func hangDetection(stops: Int) async {
        var group = WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: 4, name: "jobs", restart: .always(backoff: noBackoffDelay))
        group.hangTimeout = .seconds(1)
        let pool = makePool(name: "bench-hang-\(getpid())", group)
        let events = TimedEvents(pool)
        let task = Task { try await pool.run() }
        var samples: [Double] = []
        if await events.waitForReady(4) {
            for stop in 0..<stops {
                var live: [WorkerID: Int32] = [:]
                for (_, id, pid) in events.ready { live[id] = pid }
                let before = events.ready.count
                guard let victim = live[WorkerID(stop % 4 + 1)] else { break }
                let hungBefore = events.hung.count
                let start = nowMilliseconds()
                Glibc.kill(victim, SIGSTOP)
                let deadline = start + 10_000
                while events.hung.count == hungBefore && nowMilliseconds() < deadline { try? await Task.sleep(for: .milliseconds(1)) }
                guard events.hung.count > hungBefore else { break }
                samples.append(events.hung[hungBefore] - start)
                guard await events.waitForReady(before + 1) else { break }
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
        pool.stop()
        _ = try? await task.value
        Figure(
            name: "hang_detection_1s", samples: samples, floor: Array(repeating: 1000, count: max(samples.count, 1)),
            note: "SIGSTOP of one of 4 job workers (hangTimeout 1s) to the watcher's worker-hung event; floor: hangTimeout; the bound is hangTimeout + 1 beat (1.25 s here)"
        ).print()
    }

    /// SIGKILLs the live process of slots 1...`slots` in turn, `kills` times, timing each
    /// until its replacement's ready event.
    static func killInTurn(_ events: TimedEvents, slots: Int, kills: Int) async -> [Double] {
        var samples: [Double] = []
        for kill in 0..<kills {
            // The newest pid of each slot is the live one.
            var live: [WorkerID: Int32] = [:]
            for (_, id, pid) in events.ready { live[id] = pid }
            let before = events.ready.count
            guard let victim = live[WorkerID(kill % slots + 1)] else { break }
            let start = nowMilliseconds()
            Glibc.kill(victim, SIGKILL)
            guard await events.waitForReady(before + 1) else { break }
            samples.append(events.ready[before].0 - start)
            try? await Task.sleep(for: .milliseconds(20))
        }
        return samples
    }

    /// An external watcher with `workers` idle workers, ready when it writes a byte on fd 3.
    static func startWatcher(workers: Int, slots: Int = 0, environment: [String] = []) -> (pid: pid_t, channel: Int32)? {
        let watcher = spawnSelf(arguments: ["watch", "\(workers)", "\(slots)"], environment: environment)
        guard waitReadable(watcher.channel, timeoutMilliseconds: 20_000) else {
            kill(watcher.pid, SIGKILL)
            reap(watcher.pid)
            return nil
        }
        var byte: UInt8 = 0
        _ = read(watcher.channel, &byte, 1)
        return watcher
    }

    static func gracefulStop(workers: Int, runs: Int) {
        var samples: [Double] = []
        var floor: [Double] = []
        for _ in 0..<runs {
            guard let watcher = startWatcher(workers: workers) else { continue }
            usleep(100_000)
            let start = nowMilliseconds()
            kill(watcher.pid, SIGTERM)
            reap(watcher.pid)
            samples.append(nowMilliseconds() - start)
            close(watcher.channel)

            // Floor: SIGTERM to as many idle children of this binary and reap them all.
            let children = (0..<workers).map { _ in spawnSelf(environment: ["POOLBENCH_FLOOR=1", "POOLBENCH_FLOOR_WAIT=1"]) }
            for child in children { _ = waitReadable(child.channel) }
            let floorStart = nowMilliseconds()
            for child in children { kill(child.pid, SIGTERM) }
            for child in children {
                reap(child.pid)
                close(child.channel)
            }
            floor.append(nowMilliseconds() - floorStart)
        }
        Figure(
            name: "graceful_stop_\(workers)", samples: samples, floor: floor, target: 20,
            note: "SIGTERM to the watcher until it exited; floor: SIGTERM and reap of as many idle processes"
        ).print()
    }

    static func watcherDeath(workers: Int, runs: Int) {
        var samples: [Double] = []
        for _ in 0..<runs {
            guard let watcher = startWatcher(workers: workers) else { continue }
            let orphans = poolProcesses(of: watcher.pid)
            let start = nowMilliseconds()
            kill(watcher.pid, SIGKILL)
            reap(watcher.pid)
            close(watcher.channel)
            defer { RuntimeDirectory.removeStale(pool: "bench-watch-\(watcher.pid)") }
            // Reparented workers may linger as zombies of pid 1: count a zombie as gone.
            while orphans.contains(where: isRunning), nowMilliseconds() - start < 5000 { usleep(500) }
            samples.append(nowMilliseconds() - start)
        }
        Figure(
            name: "watcher_sigkill_to_workers_gone_\(workers)", samples: samples, target: 1000,
            note: "SIGKILL of the watcher until every worker has exited on its own"
        ).print()
    }

    static func isRunning(_ pid: pid_t) -> Bool {
        guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return false }
        let state = text[text.index(after: close)...].drop { $0 == " " }.first
        return state != "Z" && state != "X"
    }

    /// Watcher CPU while its pool idles and nobody looks: per-thread run time from schedstat
    /// (nanoseconds, not 10 ms ticks) over `windows` windows of `seconds`, and the threads born
    /// or ended meanwhile (an idle pool should create none).
    /// `dispatch`: the watcher on Swift's own executors (libdispatch) instead of `TaskThreads`.
    static func idleWatcher(workers: Int, seconds: Int, windows: Int = 3, sampling: Bool = true, dispatch: Bool = false) {
        let swiftExecutors = "\(TaskThreads.environmentVariable)=off"
        guard let watcher = startWatcher(workers: workers, environment: (sampling ? [] : ["POOLBENCH_SAMPLE=0"]) + (dispatch ? [swiftExecutors] : [])) else { return }
        // The floor, measured over the same windows: a Swift process doing nothing, on Swift's
        // own executors (what the runtime alone costs an idle process).
        let floorProcess = spawnSelf(arguments: ["idle-floor"], environment: [swiftExecutors])
        _ = waitReadable(floorProcess.channel, timeoutMilliseconds: 10_000)
        defer {
            kill(floorProcess.pid, SIGKILL)
            reap(floorProcess.pid)
            close(floorProcess.channel)
        }
        // Let start-up settle: the flight recorder dozes 3 s after the last change, and
        // libdispatch (the floor's, and the watcher's with `dispatch`) retires its idle pool
        // threads about 5 s after a burst of work, a one-time cost that is not idle activity.
        sleep(6)
        var samples: [Double] = []
        var floor: [Double] = []
        var floorBefore = threadCPU(floorProcess.pid)
        var byName: [String: UInt64] = [:]
        var born = 0
        var ended = 0
        var names: [Int: String] = [:]
        func name(_ tid: Int) -> String {
            if let known = names[tid] { return known }
            let found = readText("/proc/\(watcher.pid)/task/\(tid)/comm")?.split(separator: "\n").first.map(String.init) ?? "?"
            names[tid] = found
            return found
        }
        var before = threadCPU(watcher.pid)
        for tid in before.keys { _ = name(tid) }
        for _ in 0..<windows {
            sleep(UInt32(seconds))
            let after = threadCPU(watcher.pid)
            // Threads alive at both reads count their difference; one born in between counts whole.
            // One that ended in between loses its share of the window: counted in `ended`.
            var nanoseconds: UInt64 = 0
            for (tid, time) in after {
                let delta = time - min(time, before[tid] ?? 0)
                nanoseconds += delta
                byName[name(tid), default: 0] += delta
            }
            born += after.keys.filter { before[$0] == nil }.count
            ended += before.keys.filter { after[$0] == nil }.count
            samples.append(Double(nanoseconds) / 1e6)
            before = after
            let floorAfter = threadCPU(floorProcess.pid)
            floor.append(Double(floorAfter.reduce(0) { $0 + ($1.value - min($1.value, floorBefore[$1.key] ?? 0)) }) / 1e6)
            floorBefore = floorAfter
        }
        let split = byName.sorted { $0.key < $1.key }.map { "\($0.key) \(Double($0.value) / 1e6 / Double(windows)) ms" }
            .joined(separator: ", ")
        let workerPIDs = Benchmarks.workers(of: watcher.pid)
        let watcherResidence = residence(watcher.pid)
        let workerResidence = workerPIDs.first.map(residence) ?? Residence()
        kill(watcher.pid, SIGTERM)
        reap(watcher.pid)
        close(watcher.channel)
        let suffix = (sampling ? "" : "_no_sampling") + (dispatch ? "_dispatch" : "")
        Figure(
            name: "idle_watcher_cpu_\(workers)_workers\(suffix)", unit: "ms per \(seconds) s",
            samples: samples, floor: floor, target: 1,
            note: "run time of the watcher's threads\(dispatch ? " (on Swift's own executors, POOLTOP_TASK_THREADS=off)" : "") in \(windows) windows of \(seconds) s of idleness, nobody looking, from 6 s after start (schedstat), mean per window by thread: \(split); threads born \(born), ended \(ended); floor: a Swift process that used Swift concurrency on Swift's own executors and then idles, over the same windows"
        ).print()
        guard !dispatch else { return }
        Figure(
            name: "idle_watcher_threads_born_or_ended\(sampling ? "" : "_no_sampling")", unit: "threads",
            samples: [Double(born + ended)], target: 0,
            note: "threads of the watcher born (\(born)) or ended (\(ended)) over \(windows * seconds) s of idleness"
        ).print()
        if sampling {
            Figure(
                name: "watcher_rss", unit: "MiB", samples: [Double(watcherResidence.rss) / 1024], target: 16,
                note: "VmRSS with \(workers) workers: \(watcherResidence.summary)"
            ).print()
            Figure(
                name: "worker_rss", unit: "MiB", samples: [Double(workerResidence.rss) / 1024], target: 12,
                note: "VmRSS of one idle demo-job worker: \(workerResidence.summary)"
            ).print()
            Figure(
                name: "worker_pss", unit: "MiB", samples: [Double(workerResidence.pss) / 1024],
                note: "what one idle worker costs the host: its own pages plus its share of those it maps with the others of the pool"
            ).print()
        }
    }

    /// Snapshots of a 1,000-slot pool read from this process while the watcher runs in another.
    static func snapshotRead(slots: Int, reads: Int) {
        guard let watcher = startWatcher(workers: 8, slots: slots) else { return }
        defer {
            kill(watcher.pid, SIGTERM)
            reap(watcher.pid)
            close(watcher.channel)
        }
        guard let reader = try? PoolStateReader(pool: "bench-watch-\(watcher.pid)") else {
            print("# snapshot_read: cannot open the pool's shared memory")
            return
        }
        var samples: [Double] = []
        var decoded: [Double] = []
        var floor: [Double] = []
        let bytes = slots * 256
        var copy = [UInt8](repeating: 0, count: bytes)
        let segment = "/dev/shm/pooltop-\(getuid())-bench-watch-\(watcher.pid)"
        let fd = open(segment, O_RDONLY)
        // The segment is at least header + groups + slots long; a failed mapping ends the figure.
        guard let base = mmap(nil, bytes + 512 + 128, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED else {
            close(fd)
            return
        }
        close(fd)
        for _ in 0..<reads {
            var start = nowMicroseconds()
            let records = reader.records()
            samples.append(nowMicroseconds() - start)
            precondition(records.slotCount == slots, "the copy has every slot")
            start = nowMicroseconds()
            let snapshot = reader.snapshot()
            decoded.append(nowMicroseconds() - start)
            precondition(snapshot.workers.count == slots, "the snapshot has every slot")
            // Floor: copying the records' bytes, the least any reader of them must do.
            let floorStart = nowMicroseconds()
            copy.withUnsafeMutableBytes { _ = memcpy($0.baseAddress!, base, bytes) }
            floor.append(nowMicroseconds() - floorStart)
        }
        munmap(base, bytes + 512 + 128)
        Figure(
            name: "snapshot_read_\(slots)_slots", unit: "us", samples: samples, floor: floor, target: 20,
            note: "PoolStateReader.records(): every record copied under its seqlocks, from another process; floor: memcpy of the same bytes"
        ).print()
        Figure(
            name: "snapshot_decode_\(slots)_slots", unit: "us", samples: decoded, floor: floor,
            note: "PoolStateReader.snapshot(): the same copy decoded into PoolSnapshot values (header, groups, every worker)"
        ).print()
    }

    /// Watcher CPU spent keeping shared state current (publishing and /proc sampling every 1 s)
    /// with N workers while someone looks: an events stream is open, as an attached console keeps.
    static func sharedStateCost(workers: Int, seconds: Int) {
        var perSecond: [Bool: Double] = [:]
        for sampling in [true, false] {
            guard let watcher = startWatcher(workers: workers, environment: sampling ? [] : ["POOLBENCH_SAMPLE=0"]) else { continue }
            var viewer = try? ControlClient(pool: "bench-watch-\(watcher.pid)")
            _ = try? viewer?.request(["command": .string("events")])
            sleep(6)
            let before = threadCPU(watcher.pid).values.reduce(0, +)
            sleep(UInt32(seconds))
            let after = threadCPU(watcher.pid).values.reduce(0, +)
            perSecond[sampling] = Double(after &- min(after, before)) / 1e6 / Double(seconds)
            viewer = nil  // closes the stream
            kill(watcher.pid, SIGTERM)
            reap(watcher.pid)
            close(watcher.channel)
        }
        guard let with = perSecond[true], let without = perSecond[false] else { return }
        Figure(
            name: "shared_state_cpu_\(workers)_workers", unit: "ms per s", samples: [with], floor: [without],
            note: "watcher CPU per second with an events stream open (a console looking) and /proc sampling every 1 s; floor: the same with sampling off"
        ).print()
    }

    /// `status` round trips over the control socket, against `ping` on the same connection.
    static func statusRoundTrip(requests: Int) {
        guard let watcher = startWatcher(workers: 8, slots: 32) else { return }
        defer {
            kill(watcher.pid, SIGTERM)
            reap(watcher.pid)
            close(watcher.channel)
        }
        guard let client = try? ControlClient(pool: "bench-watch-\(watcher.pid)") else {
            print("# status_round_trip: cannot connect")
            return
        }
        var samples: [Double] = []
        var floor: [Double] = []
        for _ in 0..<requests {
            var start = nowMicroseconds()
            guard (try? client.request(["command": .string("ping")])) != nil else { return }
            floor.append(nowMicroseconds() - start)
            start = nowMicroseconds()
            guard (try? client.request(["command": .string("status")])) != nil else { return }
            samples.append(nowMicroseconds() - start)
        }
        Figure(
            name: "status_round_trip_32_slots", unit: "us", samples: samples, floor: floor,
            note: "status request to parsed response over the control socket; floor: ping on the same connection"
        ).print()
    }

    /// Run time in nanoseconds of each live thread of `pid`, by thread id.
    static func threadCPU(_ pid: pid_t) -> [Int: UInt64] {
        var result: [Int: UInt64] = [:]
        guard let dir = opendir("/proc/\(pid)/task") else { return [:] }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let tid = Int(name), let text = readText("/proc/\(pid)/task/\(name)/schedstat") else { continue }
            result[tid] = UInt64(text.split(separator: " ").first ?? "0") ?? 0
        }
        return result
    }

    /// utime + stime of the whole process, dead threads included, in clock ticks.
    static func processTicks(_ pid: pid_t) -> Int {
        guard let text = readText("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, utime field 14 and stime field 15 (1-based, proc(5)).
        guard fields.count > 13 else { return 0 }
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Where a process's resident memory is, from /proc/PID/smaps, in KiB (issue 16 asks where
    /// each MiB of a worker goes).
    struct Residence {
        /// Pages of the executable's file mapped in: shared with every process of that binary
        /// and with the page cache, so they cost a worker page-table entries, not memory.
        var binaryFile = 0
        /// The executable's pages this process wrote: relocated pointers, globals. Its own.
        var binaryWritten = 0
        /// Shared libraries (libc, libstdc++, …), their file pages and the pages they wrote.
        var libraries = 0
        /// Heap, thread stacks and other anonymous mappings.
        var anonymous = 0
        /// The pool's shared-memory segment.
        var poolSegment = 0
        var rss = 0
        /// Proportional set size: shared pages divided among the processes that map them.
        var pss = 0
        /// The read-ahead of the disk holding the executable: the page cache keeps a file
        /// read with a large read-ahead in large folios, and a fault maps a whole folio, so the
        /// binary's file pages in VmRSS grow with it (decision 0019).
        var readAheadKB: Int?

        var summary: String {
            "binary file pages \(binaryFile), binary pages written \(binaryWritten), libraries \(libraries), "
                + "heap and stacks \(anonymous), pool segment \(poolSegment), Pss \(pss) (KiB); "
                + "read-ahead of the binary's disk \(readAheadKB.map { "\($0) KiB" } ?? "unknown")"
        }
    }

    static func residence(_ pid: pid_t) -> Residence {
        var result = Residence()
        guard let text = readText("/proc/\(pid)/smaps"),
            let executable = readLink("/proc/\(pid)/exe")
        else { return result }
        var path = ""
        var device = ""
        var rss = 0
        var anonymous = 0
        func account() {
            if path == executable {
                result.binaryFile += rss - anonymous
                result.binaryWritten += anonymous
            } else if path.hasPrefix("/dev/shm/") {
                result.poolSegment += rss
            } else if path.hasPrefix("/") {
                result.libraries += rss
            } else {
                result.anonymous += rss
            }
        }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-"), first.first?.isHexDigit == true, fields.count >= 5 {
                // A mapping's header: range, permissions, offset, device, inode, path.
                path = fields.count > 5 ? fields[5...].joined(separator: " ") : ""
                if path == executable { device = String(fields[3]) }
                rss = 0
                anonymous = 0
            } else if first == "Rss:" {
                rss = Int(fields[1]) ?? 0
                result.rss += rss
            } else if first == "Pss:" {
                result.pss += Int(fields[1]) ?? 0
            } else if first == "Anonymous:" {
                anonymous = Int(fields[1]) ?? 0
                // The last field of a mapping that this function reads: account it now.
                account()
            }
        }
        let numbers = device.split(separator: ":").compactMap { Int($0, radix: 16) }
        if numbers.count == 2 {
            let base = "/sys/dev/block/\(numbers[0]):\(numbers[1])"
            // A partition has no queue of its own; its disk's is one level up.
            let value = readText("\(base)/queue/read_ahead_kb") ?? readText("\(base)/../queue/read_ahead_kb")
            result.readAheadKB = value?.split(separator: "\n").first.flatMap { Int($0) }
        }
        return result
    }

    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Children of every thread of `parent` (a child belongs to the thread that spawned it).
    static func children(of parent: pid_t) -> [pid_t] {
        threadCPU(parent).keys.flatMap { tid -> [pid_t] in
            guard let text = readText("/proc/\(parent)/task/\(tid)/children") else { return [] }
            return text.split(separator: " ").compactMap { pid_t($0) }
        }
    }

    /// A watcher's workers: its children that are not its groups' fork servers (decision 0028,
    /// whose command line says `#fork-server`), and the fork servers' children.
    static func workers(of watcher: pid_t) -> [pid_t] {
        children(of: watcher).flatMap { child in
            (readText("/proc/\(child)/cmdline") ?? "").contains("#fork-server") ? children(of: child) : [child]
        }
    }

    /// Every process of a watcher's pool: its children (workers and fork servers) and the
    /// workers its fork servers forked.
    static func poolProcesses(of watcher: pid_t) -> [pid_t] {
        Array(Set(children(of: watcher) + workers(of: watcher)))
    }

    static func readText(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// `pool-bench watch N [SLOTS]`: a watcher process with N idle workers (and SLOTS slots) that
/// handles signals like `pooltop run`, and writes one byte on fd 3 once every worker is ready.
/// POOLBENCH_SAMPLE=0 turns off its resource sampling, POOLBENCH_RECORD=0 its flight recorder.
enum WatchMode {
    static func run(workers: Int, slots: Int) async {
        let sampling = getenv("POOLBENCH_SAMPLE").map { String(cString: $0) } != "0"
        let recording = getenv("POOLBENCH_RECORD").map { String(cString: $0) } != "0"
        // A name of its own unless told one (the chaos drill restarts a killed watcher's pool).
        let name = getenv("POOLBENCH_POOL_NAME").map { String(cString: $0) } ?? "bench-watch-\(getpid())"
        let pool = WorkerPool(
            name: name, entryPoints: DemoPool.entryPoints,
            configuration: WorkerPool.Configuration(
                stopTimeout: .seconds(5), handlesSignals: true, sampleInterval: sampling ? .seconds(1) : nil,
                recordFor: recording ? PoolConfiguration.defaultRecordFor : nil),
            logger: quietLogger)
        // Safe: valid by construction, described before run().
        try! pool.describeGroup(
            WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: workers, maxWorkers: max(slots, workers), name: "idle"))
        let notifier = Task {
            await pool.awaitStart()
            var byte: UInt8 = 1
            _ = write(3, &byte, 1)
        }
        _ = try? await pool.run()
        notifier.cancel()
    }
}


/// The console's cost: rendering a frame of a 256-slot pool, and an attached console's CPU.
enum ConsoleBenchmarks {
    static func run(frames: Int, cpuSeconds: Int) async {
        guard let watcher = Benchmarks.startWatcher(workers: 8, slots: 256) else { return }
        defer {
            kill(watcher.pid, SIGTERM)
            reap(watcher.pid)
            close(watcher.channel)
        }
        let pool = "bench-watch-\(watcher.pid)"
        guard let reader = try? PoolStateReader(pool: pool) else { return }
        var samples: [Double] = []
        var previous: ScreenBuffer?
        var trends = ConsoleTrends()
        var state = ConsoleState()
        state.focus = .workers
        for _ in 0..<frames {
            let snapshot = reader.snapshot()
            let start = nowMicroseconds()
            trends.update(snapshot)
            let frame = ConsoleView.render(
                snapshot: snapshot, events: [], state: state, trends: trends, poolName: pool, isHosting: false, width: 120, height: 40)
            _ = frame.changedRows(since: previous)
            samples.append(nowMicroseconds() - start)
            previous = frame
        }
        Figure(
            name: "console_render_256_slots", unit: "us", samples: samples,
            note: "view and row diff of one 120x40 frame from a 256-slot snapshot (the terminal write excluded; ncurses then sends only changed rows)"
        ).print()

        // An attached console under tmux, at the default refresh, for `cpuSeconds`.
        guard let pooltop = getenv("POOLBENCH_POOLTOP").map({ String(cString: $0) }) else {
            print("# console_cpu: set POOLBENCH_POOLTOP to a pooltop binary (make bench does)")
            return
        }
        let socket = "bench-\(getpid())"
        let tmux = "tmux -L \(socket)"
        guard system("\(tmux) new-session -d -s main -x 120 -y 40 'env LANG=C.UTF-8 TERM=tmux-256color \(pooltop) attach \(pool)' >/dev/null 2>&1") == 0,
            let output = popen("\(tmux) list-panes -t main -F '#{pane_pid}'", "r")
        else { return }
        var line = [CChar](repeating: 0, count: 64)
        let pid = fgets(&line, 64, output).flatMap { pid_t(String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines)) } ?? 0
        pclose(output)
        defer { _ = system("\(tmux) kill-server >/dev/null 2>&1") }
        sleep(3)
        let before = Benchmarks.threadCPU(pid).values.reduce(0, +)
        sleep(UInt32(cpuSeconds))
        let after = Benchmarks.threadCPU(pid).values.reduce(0, +)
        let percent = Double(after &- min(after, before)) / 1e9 / Double(cpuSeconds) * 100
        Figure(
            name: "console_cpu_attached_256_slots", unit: "% of one core", samples: [percent], target: 1,
            note: "pooltop attach at the default 1 s refresh over \(cpuSeconds) s, 256 slots (8 running)"
        ).print()
    }
}
