import Glibc
import Logging
import PoolDemo
import PoolEngine

// pool-bench: the engine's benchmarks, printed as JSON lines (median and p90 over several runs,
// with the floor measured in the same run and the ratio to it). See docs/benchmarks.md.
//
// The binary plays three parts: the benchmark driver (no arguments), a watcher process
// (`watch N`), and the workers both of them spawn (it registers the demo entry points).

// Floor mode: the least a spawned copy of this very binary can do, answer on fd 3 and exit.
if getenv("POOLBENCH_FLOOR") != nil {
    var byte: UInt8 = 1
    _ = write(3, &byte, 1)
    if getenv("POOLBENCH_FLOOR_WAIT") != nil {
        // Stay until killed or until fd 3 closes, like an idle worker.
        _ = read(3, &byte, 1)
    }
    _exit(0)
}

// As pooltop's `main.swift` does: the watcher processes the figures measure are pooltop's
// (decision 0015). The floor of the idle figure turns it off (`POOLTOP_TASK_THREADS=off`).
TaskThreads.install()
await WorkerProcess.runIfWorker(entryPoints: benchEntryPoints)

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .error
    return handler
}

let arguments = CommandLine.arguments.dropFirst()
// The idle floor: a Swift process that used Swift concurrency (as a watcher does at start) and
// then does nothing; run with POOLTOP_TASK_THREADS=off, what it still costs is the runtime's
// (libdispatch's workqueue monitor wakes once a second in any such process on Linux).
if arguments.first == "idle-floor" {
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<8 { group.addTask { await Task.yield() } }
    }
    var byte: UInt8 = 1
    _ = write(3, &byte, 1)
    // Until killed or until fd 3 closes, blocking this thread, not a task's.
    _ = read(3, &byte, 1)
    exit(0)
}
// A user's own NIO server alone (docs/reactors.md), for the figure that compares it with the
// same server as pooltop reactors.
if arguments.first == "nio-alone" {
    let numbers = arguments.dropFirst().compactMap { Int($0) }
    UserNIOServer.runAlone(port: numbers.first ?? 8080, threads: numbers.dropFirst().first ?? 1)
}
if arguments.first == "watch" {
    let numbers = arguments.dropFirst().compactMap { Int($0) }
    await WatchMode.run(workers: numbers.first ?? 8, slots: numbers.dropFirst().first ?? 0)
    exit(0)
}

// Fault drills (`make chaos`, `make soak`): one summary line each, exit status 1 on a failed check.
if arguments.first == "chaos" || arguments.first == "soak" {
    func setting(_ name: String, _ fallback: Int) -> Int { getenv(name).flatMap { Int(String(cString: $0)) } ?? fallback }
    let passed: Bool
    if arguments.first == "chaos" {
        passed = await Chaos.run(roundSeconds: setting("CHAOS_SECONDS", 30) / 2, rounds: 2)
    } else {
        let seconds = setting("SOAK_SECONDS", 600)
        passed = await Chaos.killDrill(roundSeconds: max(seconds / 2, 1), rounds: 2, soak: true)
    }
    exit(passed ? 0 : 1)
}

let runs = Int(getenv("POOLBENCH_RUNS").map { String(cString: $0) } ?? "") ?? 7
// POOLBENCH_ONLY=spawn,snapshot runs only the benchmarks whose names contain one of the words.
let only = environmentList("POOLBENCH_ONLY") ?? []
func selected(_ name: String) -> Bool { only.isEmpty || only.contains { name.contains($0) } }

print("# pool-bench: \(runs) runs per figure; times in milliseconds unless the unit says otherwise")
if selected("spawn") {
    await Benchmarks.spawnReady(workers: 1, runs: max(runs, 11), ratioTarget: nil)
    await Benchmarks.spawnReady(workers: 32, runs: runs, ratioTarget: 1.5)
    await Benchmarks.spawnReady(workers: 32, runs: runs, ratioTarget: nil, forkServer: false)
    for forkServer in [true, false] {
        await Benchmarks.spawnReady(
            workers: Benchmarks.demoShape.reduce(0, +), runs: max(runs, 11), ratioTarget: nil, groups: Benchmarks.demoShape,
            forkServer: forkServer)
    }
}
if selected("command") { await CommandBenchmarks.run(runs: max(runs, 11)) }
if selected("kill") {
    await Benchmarks.killToReplacement(kills: 20, start: .fork)
    await Benchmarks.killToReplacement(kills: 20, start: .spawned)
    await Benchmarks.killToReplacement(kills: 20, start: .standby)
}
if selected("hang") { await Benchmarks.hangDetection(stops: 8) }
if selected("stop") { Benchmarks.gracefulStop(workers: 32, runs: runs) }
if selected("death") { Benchmarks.watcherDeath(workers: 8, runs: 5) }
if selected("idle") {
    Benchmarks.idleWatcher(workers: 8, seconds: 10, sampling: false)
    Benchmarks.idleWatcher(workers: 8, seconds: 10, sampling: true)
    // The same watcher on Swift's own executors: what `TaskThreads` saves (decision 0015).
    Benchmarks.idleWatcher(workers: 8, seconds: 10, sampling: true, dispatch: true)
}
if selected("recorder") {
    // What the recorder adds to an idle pool (issue 12's idle target), then its cost and sizes at 256 workers.
    await RecorderBenchmarks.run(workers: 8, seconds: 10, rounds: 3, sizes: false)
    await RecorderBenchmarks.run(workers: 256, seconds: 10, rounds: 2, sizes: true)
}
if selected("snapshot") { Benchmarks.snapshotRead(slots: 1000, reads: 1000) }
if selected("shared") { Benchmarks.sharedStateCost(workers: 64, seconds: 10) }
if selected("status") { Benchmarks.statusRoundTrip(requests: 200) }
if selected("job") {
    // POOLBENCH_ROUND_TRIPS=0 measures the throughput alone (a profile of it, for one).
    let roundTrips = getenv("POOLBENCH_ROUND_TRIPS").flatMap { Int(String(cString: $0)) } ?? 2000
    // POOLBENCH_PIPELINED sets the jobs of each throughput round (fewer for a run under valgrind).
    let pipelined = getenv("POOLBENCH_PIPELINED").flatMap { Int(String(cString: $0)) } ?? 51_200
    await JobBenchmarks.run(roundTrips: roundTrips, pipelined: max(pipelined, 256))
}
// POOLBENCH_ONLY=http runs all three; http_hello, http_user_nio or hummingbird one of them.
// POOLBENCH_HTTP_ROUNDS: load runs of each side (default 2), more where the host is noisy.
let httpRounds = max(getenv("POOLBENCH_HTTP_ROUNDS").flatMap { Int(String(cString: $0)) } ?? 2, 1)
if selected("http_hello") { await HTTPBenchmarks.run(rounds: httpRounds, seconds: 5) }
if selected("http_user_nio") { await HTTPBenchmarks.userNIO(rounds: httpRounds, seconds: 5) }
if selected("http_user_hummingbird") { await HTTPBenchmarks.userHummingbird(rounds: httpRounds, seconds: 5) }
if selected("gunicorn") { await GunicornBenchmarks.run(rounds: 2, seconds: 5) }
if selected("metrics") { await MetricsBenchmarks.run(workers: 256, scrapes: 20) }
if selected("console") { await ConsoleBenchmarks.run(frames: 500, cpuSeconds: 30) }
