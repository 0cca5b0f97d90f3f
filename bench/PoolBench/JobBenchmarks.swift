import Glibc
import PoolDemo
import PoolEngine

/// Job round trips and throughput against 2 demo job workers, with the C floor of the same
/// 64-byte exchange measured in the same run.
///
/// A round trip's floor depends on where the scheduler puts the two processes: on this kind of
/// machine two processes on one CPU ping-pong in about 8 µs, on two CPUs in about 40 µs (a
/// cross-CPU wake-up is dear in a VM). Left to the scheduler, the floor and the pool land in
/// different placements from run to run, and their ratio means nothing; so the round trip is
/// measured pinned, sender and job workers on one CPU and then on two, each against the floor
/// pinned the same way, and once more unpinned for what an unpinned pool sees.
enum JobBenchmarks {
    enum Placement: String, CaseIterable {
        /// The sender (this process) and the job workers on CPU 0; the floor's two processes too.
        case sameCPU = "same_cpu"
        /// The sender on CPU 0, the job workers on CPU 1; the floor's parent on 0, its child on 1.
        case crossCPU = "cross_cpu"
        /// Wherever the scheduler puts them.
        case unpinned

        var floorArgument: String {
            switch self {
            case .sameCPU: "same"
            case .crossCPU: "cross"
            case .unpinned: "any"
            }
        }
    }

    /// The pool the job figures are measured on: 2 demo job workers.
    static func startPool(heartbeat: Bool = true) async -> (WorkerPool, Task<Void, any Error>) {
        let pool = WorkerPool(
            name: "bench-jobs-\(getpid())\(heartbeat ? "" : "-hang-off")", entryPoints: DemoPool.entryPoints,
            configuration: WorkerPool.Configuration(stopTimeout: .seconds(5), handlesSignals: false), logger: quietLogger)
        var group = WorkerGroup(
            entryPoint: "demo-job", kind: .job, minWorkers: 2, name: "jobs",
            jobExecutor: JobExecutorConfiguration(maxConcurrentJobs: 256, maxQueuedJobs: 1024))
        // The default hangTimeout (30 s) beats once a second on each worker's event loop.
        if !heartbeat { group.hangTimeout = nil }
        // Safe: valid by construction, described before run().
        try! pool.describeGroup(group)
        let task = Task { try await pool.run() }
        await pool.awaitStart()
        return (pool, task)
    }

    static func run(roundTrips: Int, pipelined: Int) async {
        // 64 bytes on the wire per direction would need the frame header; the payload is 64 bytes.
        let payload = Array(("echo " + String(repeating: "x", count: 59)).utf8)
        // The default (`suspend`: the sender never holds a Swift concurrency thread), then the
        // opt-in `adaptive` wait the round-trip targets are set for, then each of its three modes
        // alone, which is what decides whether the chooser earns its keep (decisions 0010, 0030).
        // POOLBENCH_JOB_WAITS=adaptive measures one policy alone (a profile of it, for one).
        let policies = environmentList("POOLBENCH_JOB_WAITS")
            ?? ["suspend", "adaptive", "poll", "receive", "spin"]
        for policy in policies where roundTrips > 0 {
            // Read by the operator's job client when the pool makes it.
            setenv("POOLTOP_JOB_WAIT", policy, 1)
            let (pool, task) = await startPool()
            await measureRoundTrips(pool, payload, roundTrips: roundTrips, policy: policy)
            pool.stop()
            _ = try? await task.value
        }
        unsetenv("POOLTOP_JOB_WAIT")
        // The C floor is measured between rounds, as the round trips' is: taken once before,
        // it moved by a factor of 2.7 between two runs of this host (297,397 and 798,754
        // frames/s on 2026-12-03), which made one ratio mean little.
        var pipeFloor: [Double] = []
        // With the heartbeat (the default) and without it (hangTimeout off): both pools run, and
        // their rounds alternate, so the host's drift hits both alike; what the hang watchdog
        // costs a busy job worker is their ratio, round by round.
        let (withBeat, withTask) = await startPool(heartbeat: true)
        let (without, withoutTask) = await startPool(heartbeat: false)
        // Five rounds each, the median reported: one round lasts a fifth of a second, which a
        // neighbour's burst on a shared machine can spoil.
        var rates: [Bool: [Double]] = [true: [], false: []]
        var completedJobs: [Bool: Int] = [true: 0, false: 0]
        for round in 0..<10 {
            let heartbeat = round % 2 == 0
            let started = nowMicroseconds()
            let completed = await pipelinedJobs(heartbeat ? withBeat : without, payload, count: pipelined)
            rates[heartbeat, default: []].append(Double(completed) / ((nowMicroseconds() - started) / 1e6))
            completedJobs[heartbeat, default: 0] += completed
            if heartbeat, let floor = cFloor(["pipe", "\(pipelined * 4)", "256"])?["frames_per_second"] { pipeFloor.append(floor) }
        }
        for heartbeat in [true, false] {
            Figure(
                name: heartbeat ? "job_throughput_256_in_flight" : "job_throughput_256_in_flight_hang_off", unit: "jobs/s",
                samples: rates[heartbeat] ?? [], floor: pipeFloor, targetIsMinimum: true,
                ratioTarget: heartbeat ? 0.35 : nil,
                note: "5 rounds of \(pipelined) jobs (\(completedJobs[heartbeat] ?? 0) answered), 256 in flight, to 2 job workers, unpinned, \(heartbeat ? "heartbeat on (hangTimeout 30s, the default)" : "hangTimeout off (no heartbeat)"), alternating round by round with the other; floor: C pipelined 64-byte frames (window 256), median of 5 runs between the rounds"
            ).print()
        }
        let ratios = zip(rates[true] ?? [], rates[false] ?? []).map { $0 / $1 }
        Figure(
            name: "job_throughput_heartbeat_ratio", unit: "ratio", samples: ratios,
            note: "each round's throughput with the heartbeat over the next round's without (1 means it costs nothing; the spread of these ratios is the noise it must stay within): \(ratios.map { formatFigure($0) }.joined(separator: ", "))"
        ).print()
        for (pool, task) in [(withBeat, withTask), (without, withoutTask)] {
            pool.stop()
            _ = try? await task.value
        }
    }

    /// Sequential round trips in each placement, against the C floor placed the same way.
    static func measureRoundTrips(_ pool: WorkerPool, _ payload: [UInt8], roundTrips: Int, policy: String) async {
        let workers = pool.snapshot()?.workers.filter { $0.state == .ready }.map(\.pid) ?? []
        let cpus = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

        // POOLBENCH_PLACEMENTS=same (or cross, any) measures those placements only (a profile of one).
        let chosen = environmentList("POOLBENCH_PLACEMENTS")
        for placement in Placement.allCases where chosen?.contains(placement.floorArgument) ?? true {
            if placement == .crossCPU && cpus < 2 { continue }
            switch placement {
            case .sameCPU:
                pin([getpid()] + workers, cpus: "0")
            case .crossCPU:
                pin([getpid()], cpus: "0")
                pin(workers, cpus: "1")
            case .unpinned:
                pin([getpid()] + workers, cpus: "0-\(cpus - 1)")
            }
            // Ours and the floor alternate, five rounds each: the host's own load drifts, and a
            // floor taken a second apart from ours once came out at half its usual value.
            var samples: [Double] = []
            var floorMedians: [Double] = []
            var floorP99s: [Double] = []
            let perRound = max(roundTrips / 5, 1)
            for round in 0..<5 {
                guard let part = await measureRoundTrips(pool, payload, count: perRound, warmUp: round == 0 ? 200 : 20) else {
                    print("# job round trip failed")
                    break
                }
                samples += part
                if let floor = cFloor(["rtt", "\(perRound)", placement.floorArgument]) {
                    floor["median_us"].map { floorMedians.append($0) }
                    floor["p99_us"].map { floorP99s.append($0) }
                }
            }
            guard !samples.isEmpty else { break }
            let floorP99 = floorP99s.isEmpty ? nil : Figure.percentile(floorP99s, 0.5)
            let base = placement == .unpinned ? "job_round_trip_64b" : "job_round_trip_64b_\(placement.rawValue)"
            let name = policy == "suspend" ? base : "\(base)_\(policy)"
            var figure = Figure(
                name: name, unit: "us", samples: samples,
                note: "sequential submitJob of a 64-byte payload from the watcher process to a demo job worker and back, jobWait \(policy), \(describe(placement)); floor: C ping-pong of 64-byte frames over a socket pair, placed the same way, alternating with ours in 5 rounds (round medians \(floorMedians.map { "\($0)" }.joined(separator: "/")) us, p99 \(floorP99 ?? 0) us)"
            )
            if !floorMedians.isEmpty {
                figure.floor = floorMedians
                // The target is judged where the placement is the same for both, for the opt-in
                // wait it was set for; the default's ratio is printed beside it.
                if placement != .unpinned && policy == "adaptive" { figure.ratioTarget = 1.3 }
            }
            figure.print()
            Figure(name: "\(name)_p99", unit: "us", samples: [Figure.percentile(samples, 0.99)], floor: floorP99.map { [$0] } ?? [])
                .print()
        }

    }

    /// 256 senders submitting without pause until `count` jobs are sent; the number answered.
    private static func pipelinedJobs(_ pool: WorkerPool, _ payload: [UInt8], count: Int) async -> Int {
        await withTaskGroup(of: Int.self) { group in
            for _ in 0..<256 {
                group.addTask {
                    var done = 0
                    for _ in 0..<(count / 256) where (try? await pool.submitJob(payload, to: "jobs")) != nil { done += 1 }
                    return done
                }
            }
            return await group.reduce(0, +)
        }
    }

    /// `count` sequential round trips after `warmUp` more, in microseconds; nil if one failed.
    private static func measureRoundTrips(_ pool: WorkerPool, _ payload: [UInt8], count: Int, warmUp: Int) async -> [Double]? {
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for index in 0..<(count + warmUp) {
            let start = nowMicroseconds()
            guard (try? await pool.submitJob(payload, to: "jobs")) != nil else { return nil }
            if index >= warmUp { samples.append(nowMicroseconds() - start) }
        }
        return samples
    }

    private static func describe(_ placement: Placement) -> String {
        switch placement {
        case .sameCPU: "sender and job workers pinned to CPU 0"
        case .crossCPU: "sender pinned to CPU 0, job workers to CPU 1"
        case .unpinned: "unpinned"
        }
    }

    /// Pins every thread of each process (`taskset -a`, util-linux) to `cpus`.
    private static func pin(_ pids: [pid_t], cpus: String) {
        for pid in pids {
            guard let pipe = popen("taskset -a -p -c \(cpus) \(pid) 2>&1", "r") else { continue }
            var bytes = [CChar](repeating: 0, count: 512)
            var output = ""
            while let line = fgets(&bytes, 512, pipe) { output += String(cString: line) }
            if pclose(pipe) != 0 { print("# taskset on pid \(pid) failed: \(output)") }
        }
    }

    /// Runs the C floor program named by POOLBENCH_FLOOR_BIN and reads its one JSON line.
    static func cFloor(_ arguments: [String]) -> [String: Double]? {
        guard let binary = getenv("POOLBENCH_FLOOR_BIN").map({ String(cString: $0) }) else { return nil }
        let command = ([binary] + arguments).joined(separator: " ")
        guard let pipe = popen(command, "r") else { return nil }
        var bytes = [CChar](repeating: 0, count: 512)
        let line = fgets(&bytes, 512, pipe).map { String(cString: $0) } ?? ""
        pclose(pipe)
        guard let value = try? JSONValue.parse(line), let object = value.object else { return nil }
        return object.compactMapValues(\.number)
    }
}
