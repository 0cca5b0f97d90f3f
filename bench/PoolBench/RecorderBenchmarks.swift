import Glibc
import PoolEngine

/// The flight recorder's cost (issue 14): the watcher's CPU with and without it, 256 idle
/// workers, nobody looking, rounds alternating so drift on a shared machine hits both alike;
/// the size of a frame and of the ring; and how long `pooltop why` and `pooltop top --once
/// --at` (the replay's path: open the ring, decode the frame, draw) take to answer.
enum RecorderBenchmarks {
    static func run(workers: Int, seconds: Int, rounds: Int, sizes: Bool) async {
        var on: [Double] = []
        var off: [Double] = []
        var recorded: String?
        for round in 0..<rounds * 2 {
            let recording = round % 2 == 0
            guard let (cpu, pool) = watcherCPU(workers: workers, seconds: seconds, recording: recording) else { continue }
            if recording {
                on.append(cpu)
                recorded = pool
            } else {
                off.append(cpu)
            }
        }
        let cost = zip(on, off).map { ($0 - $1) / Double(seconds) }
        Figure(
            name: "recorder_cpu_\(workers)_workers", unit: "ms per s", samples: cost, target: 1,
            note: "watcher CPU (schedstat, all threads) with the flight recorder minus without, per second, \(workers) idle workers, nobody looking, \(rounds) alternating rounds of \(seconds) s; with: \(on.map { formatFigure($0) }.joined(separator: ", ")) ms, without: \(off.map { formatFigure($0) }.joined(separator: ", ")) ms per \(seconds) s"
        ).print()
        guard sizes else { return }
        guard let pool = recorded, let recording = try? FlightRecording(pool: pool) else {
            print("# recorder: no recording to measure")
            return
        }
        // Whole frames only: a second in which nothing changed is 32 bytes, counted in the note.
        let sizes = recording.frames.filter { $0.length > 0 }.map { Double($0.length + 32) }
        let unchanged = recording.frames.count - sizes.count
        let ring = Double(fileSize("\(StateDirectory.path(pool: pool))/flight.rec"))
        Figure(
            name: "recording_frame_bytes_\(workers)_idle_workers", unit: "bytes", samples: sizes,
            note: "bytes per whole frame of \(workers) idle workers, from the ring (\(sizes.count) whole frames; \(unchanged) seconds unchanged, 32 bytes each)"
        ).print()
        // Busy workers have every counter and a current job: the same pool with them set large.
        if let last = try? recording.frame(recording.frames.count - 1) {
            var busy = last.snapshot
            for index in busy.workers.indices {
                busy.workers[index].activity.jobsAccepted = 123_456_789
                busy.workers[index].activity.jobsProcessed = 123_456_700
                busy.workers[index].activity.jobsErrors = 12_345
                busy.workers[index].activity.jobsInFlight = 8
                busy.workers[index].activity.inFlightWeight = 8
                busy.workers[index].activity.currentJobID = 9_876_543_210
                busy.workers[index].activity.currentJobSince = UInt64((busy.takenAt - 0.2) * 1e9)
                busy.workers[index].activity.lastUpdate = UInt64(busy.takenAt * 1e9)
                busy.workers[index].cpuSeconds = 3600
            }
            let bytes = FlightFrame(snapshot: busy, events: []).encoded().count + 32
            Figure(
                name: "recording_frame_bytes_\(workers)_busy_workers", unit: "bytes", samples: [Double(bytes)],
                note: "one frame of the same pool with every worker's counters in the hundred millions and a job running"
            ).print()
            Figure(
                name: "recording_ring_\(workers)_workers", unit: "MiB", samples: [ring / 1_048_576],
                note: "flight.rec for recordFor 15m (sparse until written): \(formatFigure(ring / Double(bytes) / 60)) min of busy frames, \(formatFigure(ring / (Figure.percentile(sizes, 0.5)) / 60)) min of whole idle ones, far more of unchanged seconds"
            ).print()
        }
        startup(pool: pool)
    }

    /// Runs a watcher of `workers` idle workers and measures its CPU over `seconds` once settled.
    static func watcherCPU(workers: Int, seconds: Int, recording: Bool) -> (Double, String)? {
        guard let watcher = Benchmarks.startWatcher(workers: workers, environment: recording ? [] : ["POOLBENCH_RECORD=0"]) else {
            return nil
        }
        let pool = "bench-watch-\(watcher.pid)"
        // Start-up settles (libdispatch retires its burst threads after about 5 s).
        sleep(6)
        let before = Benchmarks.threadCPU(watcher.pid)
        sleep(UInt32(seconds))
        let after = Benchmarks.threadCPU(watcher.pid)
        let nanoseconds = after.reduce(UInt64(0)) { $0 + ($1.value - min($1.value, before[$1.key] ?? 0)) }
        // A death for `pooltop why` to read, besides the stop's.
        if recording, let victim = Benchmarks.workers(of: watcher.pid).first { kill(victim, SIGKILL) }
        usleep(500_000)
        kill(watcher.pid, SIGTERM)
        reap(watcher.pid)
        close(watcher.channel)
        return (Double(nanoseconds) / 1e6, pool)
    }

    /// `pooltop why NAME` and `pooltop top --once NAME --at=0s` from spawn to exit, against the
    /// same binary's `--help` (the start of the process itself).
    static func startup(pool: String) {
        guard let pooltop = getenv("POOLBENCH_POOLTOP").map({ String(cString: $0) }) else {
            print("# recorder: POOLBENCH_POOLTOP is not set; why and replay start-up not measured")
            return
        }
        func timed(_ arguments: [String]) -> [Double] {
            (0..<7).map { _ in
                let start = nowMilliseconds()
                runQuietly(pooltop, arguments)
                return nowMilliseconds() - start
            }
        }
        let floor = timed(["--help"])
        Figure(
            name: "why_startup_256_workers", samples: timed(["why", pool, "--last", "16"]), floor: floor,
            note: "pooltop why (16 post-mortems of a pool whose 256 workers all died once) from spawn to exit; floor: pooltop --help"
        ).print()
        Figure(
            name: "replay_startup_256_workers", samples: timed(["top", "--once", pool, "--at=0s"]), floor: floor,
            note: "pooltop top --once --at=0s (open the ring, decode the last frame and the trend frames, draw) from spawn to exit; floor: pooltop --help"
        ).print()
    }

    static func runQuietly(_ path: String, _ arguments: [String]) {
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        guard let pid = spawnUnmasked(path, argv, actions: &actions) else { return }
        reap(pid)
    }

    static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}
