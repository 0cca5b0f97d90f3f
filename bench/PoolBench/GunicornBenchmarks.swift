import Glibc
import PoolDemo
import PoolEngine

/// gunicorn's own HTTP throughput with 2 workers, behind pooltop (a reactor group of two
/// gunicorn arbiters of one worker each, on pooltop's sockets through socket activation) and
/// under gunicorn's own arbiter (`--workers 2`, its own socket), alternating in the same run
/// (issue 13). The pool is on no request's path, so the ratio should be 1.
enum GunicornBenchmarks {
    static let app = """
        def app(environ, start_response):
            body = b"Hello, World!\\n"
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        """

    static func run(rounds: Int, seconds: Int) async {
        guard HTTPBenchmarks.commandExists("wrk"), system("python3 -c 'import gunicorn' >/dev/null 2>&1") == 0 else {
            print("# gunicorn: skipped, wrk and gunicorn are needed (scripts/ensure-deps bench installs them)")
            return
        }
        let directory = "/tmp/poolbench-gunicorn-\(getpid())"
        mkdir(directory, 0o700)
        defer { _ = system("rm -rf '\(directory)'") }
        guard let file = fopen("\(directory)/wsgi.py", "w") else { return }
        fputs(app, file)
        fclose(file)
        // gunicorn 22 and later keep one control socket per user unless told not to.
        let noControl = system("python3 -m gunicorn --help 2>/dev/null | grep -q -- --no-control-socket") == 0 ? ["--no-control-socket"] : []
        var perWorker: [HTTPBenchmarks.Load] = []
        var shared: [HTTPBenchmarks.Load] = []
        var alone: [HTTPBenchmarks.Load] = []
        for _ in 0..<rounds {
            if let load = await behindPooltop(directory: directory, options: noControl, shared: false, seconds: seconds) { perWorker.append(load) }
            if let load = await behindPooltop(directory: directory, options: noControl, shared: true, seconds: seconds) { shared.append(load) }
            if let load = ownArbiter(directory: directory, options: noControl, seconds: seconds) { alone.append(load) }
        }
        guard !alone.isEmpty else {
            print("# gunicorn_2_workers: no figure (gunicorn alone did not serve)")
            return
        }
        for (name, loads, sockets) in [
            ("gunicorn_2_workers_behind_pooltop", perWorker, "one SO_REUSEPORT socket per worker (the default)"),
            ("gunicorn_2_workers_behind_pooltop_shared", shared, "one socket the group shares (listen shared: true)"),
        ] {
            guard !loads.isEmpty else {
                print("# \(name): no figure (a load run failed)")
                continue
            }
            let ratio = Figure.percentile(loads.map(\.requestsPerSecond), 0.5) / Figure.percentile(alone.map(\.requestsPerSecond), 0.5)
            Figure(
                name: name, unit: "req/s", samples: loads.map(\.requestsPerSecond), floor: alone.map(\.requestsPerSecond),
                note: String(
                    format: "wrk -t2 -c32 -d%ds on a WSGI hello app, sync workers; ours: a reactor group of 2 gunicorn arbiters x 1 worker on pooltop's sockets (LISTEN_FDS, ready: notify), %@; floor: gunicorn --workers 2 with its own arbiter and socket, alternating; ratio = ours/gunicorn (1 means the pool adds nothing; ratio %.2f); socket errors ours %d, gunicorn %d",
                    seconds, sockets, ratio, loads.map(\.errors).reduce(0, +), alone.map(\.errors).reduce(0, +))
            ).print()
            Figure(
                name: "\(name)_p99", samples: loads.map(\.p99Milliseconds), floor: alone.map(\.p99Milliseconds),
                note: "wrk latency p99, median of the rounds; floor: gunicorn's own arbiter").print()
        }
    }

    /// gunicorn as a pooltop reactor group: 2 slots, each an arbiter with one worker.
    static func behindPooltop(directory: String, options: [String], shared: Bool, seconds: Int) async -> HTTPBenchmarks.Load? {
        let port = HTTPBenchmarks.freePort()
        let pool = WorkerPool(
            name: "bench-gunicorn-\(getpid())", entryPoints: DemoPool.entryPoints,
            configuration: WorkerPool.Configuration(stopTimeout: .seconds(10), handlesSignals: false), logger: quietLogger)
        guard var listener = try? Listener("127.0.0.1:\(port)") else { return nil }
        listener.shared = shared
        var group = WorkerGroup(entryPoint: "", kind: .reactor, minWorkers: 2, name: "web", listeners: [listener])
        group.program = ExternalProgram(
            ["python3", "-m", "gunicorn", "--workers", "1"] + options + ["wsgi:app"], workingDirectory: directory, readiness: .notify)
        // Safe: the group is valid by construction and describeGroup only fails after run().
        try! pool.describeGroup(group)
        let task = Task { try await pool.run() }
        await pool.awaitStart()
        // The arbiter says READY=1 before its worker has booted: wait for answers first.
        let load = warmedUp(port: port) ? HTTPBenchmarks.wrk(port: port, seconds: seconds) : nil
        pool.stop()
        _ = try? await task.value
        return load
    }

    /// gunicorn alone: its own arbiter, 2 workers, its own socket.
    static func ownArbiter(directory: String, options: [String], seconds: Int) -> HTTPBenchmarks.Load? {
        let port = HTTPBenchmarks.freePort()
        let arguments = ["python3", "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:\(port)"] + options + ["wsgi:app"]
        let command = "cd '\(directory)' && exec " + arguments.joined(separator: " ") + " >/dev/null 2>&1"
        let words: [String] = ["/bin/sh", "-c", command]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The calling thread may have signals blocked (pool threads do); gunicorn must not
        // inherit that mask, or it never sees the SIGTERM that stops it.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard let pid = spawnUnmasked("/bin/sh", argv, actions: &actions) else { return nil }
        let load = warmedUp(port: port) ? HTTPBenchmarks.wrk(port: port, seconds: seconds) : nil
        kill(pid, SIGTERM)
        reap(pid)
        return load
    }

    /// Waits (up to 10 s) until the port answers a few requests, then a moment for every worker.
    static func warmedUp(port: Int) -> Bool {
        let deadline = nowMilliseconds() + 10_000
        var answered = 0
        while nowMilliseconds() < deadline && answered < 4 {
            if system("curl -s -o /dev/null -m 1 http://127.0.0.1:\(port)/") == 0 { answered += 1 } else { usleep(50_000) }
        }
        usleep(300_000)
        return answered >= 4
    }
}
