import FoundationEssentials
import Glibc
import PoolDemo
import PoolEngine

/// The demo HTTP reactor under `wrk -t2 -c32 -d5s`, against nginx serving the same body with
/// the same number of workers, alternating in the same run (the machine's load drifts).
enum HTTPBenchmarks {
    struct Load {
        var requestsPerSecond: Double
        var p50Milliseconds: Double
        var p99Milliseconds: Double
        var errors: Int
    }

    static func run(rounds: Int, seconds: Int) async {
        guard commandExists("wrk"), let nginx = nginxPath() else {
            print("# http: skipped, wrk and nginx are needed (scripts/ensure-deps bench installs them)")
            return
        }
        for workers in [1, 2] {
            guard let (ours, theirs) = await alternate(rounds: rounds, name: "http_hello_\(workers)_workers", {
                await pooltopLoad(workers: workers, seconds: seconds)
            }, against: { nginxLoad(nginx, workers: workers, seconds: seconds) }) else { continue }
            let ratio = Figure.percentile(ours.map(\.requestsPerSecond), 0.5) / Figure.percentile(theirs.map(\.requestsPerSecond), 0.5)
            Figure(
                name: "http_hello_\(workers)_workers", unit: "req/s", samples: ours.map(\.requestsPerSecond),
                floor: theirs.map(\.requestsPerSecond),
                note: "wrk -t2 -c32 -d\(seconds)s on the demo http-hello reactor (its own HTTP/1.1 reader on SwiftNIO, release); floor: nginx, \(workers) worker(s), same body, alternating; ratio = ours/nginx (higher is better)\(workers == 2 ? String(format: "; target ratio 0.8, met: %@", ratio >= 0.8 ? "yes" : "no") : ""); socket errors \(ours.map(\.errors).reduce(0, +))"
            ).print()
            Figure(
                name: "http_hello_\(workers)_workers_p50", samples: ours.map(\.p50Milliseconds), floor: theirs.map(\.p50Milliseconds),
                note: "wrk latency, median of the rounds; floor: nginx").print()
            Figure(
                name: "http_hello_\(workers)_workers_p99", samples: ours.map(\.p99Milliseconds), floor: theirs.map(\.p99Milliseconds),
                note: "wrk latency, median of the rounds; floor: nginx").print()
        }
    }

    /// A user's own server as `workers` pooltop reactors, against the same code alone in one
    /// process with `workers` event loop threads, alternating: what the pool adds on the
    /// request path (it should add nothing). Here ``UserNIOServer``: NIO's HTTP codec and a
    /// handler, as NIO's examples write one.
    static func userNIO(rounds: Int, seconds: Int) async {
        await userServer(
            "nio", "a user's SwiftNIO HTTP/1.1 server (NIO's HTTP codec)", entryPoint: "user-nio-hello", runner: .sameExecutable,
            alone: (selfExecutable(), { ["nio-alone", "\($0)", "\($1)"] }), rounds: rounds, seconds: seconds)
    }

    /// The same for Examples/HelloHummingbird, a Hummingbird 2 router, whose binary
    /// `POOLBENCH_HUMMINGBIRD_BIN` names (`make bench` builds it); its workers run that binary,
    /// and alone it is Hummingbird's own `Application` binding its own socket.
    static func userHummingbird(rounds: Int, seconds: Int) async {
        // Absolute: a group's executable must be (the pool refuses a relative one).
        guard let named = getenv("POOLBENCH_HUMMINGBIRD_BIN"), let resolved = realpath(named, nil), access(resolved, X_OK) == 0 else {
            print("# http_user_hummingbird: skipped, POOLBENCH_HUMMINGBIRD_BIN names no executable (make bench builds Examples/HelloHummingbird)")
            return
        }
        let binary = String(cString: resolved)
        free(resolved)
        await userServer(
            "hummingbird", "a user's Hummingbird 2 app (Examples/HelloHummingbird: its router, served by HummingbirdReactor)",
            entryPoint: "web", runner: WorkerRunner(executable: binary),
            alone: (binary, { ["alone", "\($0)", "\($1)"] }), rounds: rounds, seconds: seconds)
    }

    /// One server of ``userNIO(rounds:seconds:)`` or ``userHummingbird(rounds:seconds:)``;
    /// `alone` is the program and its arguments for a port and a thread count.
    static func userServer(
        _ name: String, _ what: String, entryPoint: String, runner: WorkerRunner, alone: (String, (Int, Int) -> [String]),
        rounds: Int, seconds: Int
    ) async {
        guard commandExists("wrk") else {
            print("# http_user_\(name): skipped, wrk is needed (scripts/ensure-deps bench installs it)")
            return
        }
        for workers in [1, 2] {
            let figure = "http_user_\(name)_\(workers)_workers"
            guard let (ours, theirs) = await alternate(rounds: rounds, name: figure, {
                await pooltopLoad(workers: workers, seconds: seconds, entryPoint: entryPoint, runner: runner)
            }, against: { aloneLoad(alone.0, arguments: { alone.1($0, workers) }, seconds: seconds) }) else { continue }
            Figure(
                name: figure, unit: "req/s", samples: ours.map(\.requestsPerSecond), floor: theirs.map(\.requestsPerSecond),
                note: "wrk -t2 -c32 -d\(seconds)s on \(what) as \(workers) pooltop reactor(s); floor: the same code alone, one process with \(workers) event loop thread(s), alternating; ratio = under pooltop/alone (1 = the pool adds nothing); socket errors \(ours.map(\.errors).reduce(0, +)), alone \(theirs.map(\.errors).reduce(0, +))"
            ).print()
            Figure(
                name: "\(figure)_p99", samples: ours.map(\.p99Milliseconds), floor: theirs.map(\.p99Milliseconds),
                note: "wrk latency, median of the rounds; floor: the same server alone").print()
        }
    }

    /// `rounds` load runs of ours and of the floor, alternating (the machine's load drifts);
    /// nil, said on a comment line, when either never gave a figure.
    static func alternate(
        rounds: Int, name: String, _ ours: () async -> Load?, against floor: () async -> Load?
    ) async -> ([Load], [Load])? {
        var mine: [Load] = []
        var theirs: [Load] = []
        for _ in 0..<rounds {
            if let load = await ours() { mine.append(load) }
            if let load = await floor() { theirs.append(load) }
        }
        guard !mine.isEmpty, !theirs.isEmpty else {
            print("# \(name): no figure (a load run failed)")
            return nil
        }
        return (mine, theirs)
    }

    /// One load run against a server alone (`program` with `arguments(port)`), killed after it.
    static func aloneLoad(_ program: String, arguments: (Int) -> [String], seconds: Int) -> Load? {
        let port = freePort()
        let (pid, channel) = spawnProgram(program, arguments: arguments(port), environment: [])
        defer {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            close(channel)
        }
        // Its byte on fd 3 says it listens.
        var byte: UInt8 = 0
        guard pid > 0, read(channel, &byte, 1) == 1 else { return nil }
        return wrk(port: port, seconds: seconds)
    }

    /// One load run against a fresh in-process pool of `workers` demo HTTP reactors.
    static func pooltopLoad(
        workers: Int, seconds: Int, entryPoint: String = "http-hello", runner: WorkerRunner = .sameExecutable
    ) async -> Load? {
        let port = freePort()
        let pool = WorkerPool(
            name: "bench-http-\(getpid())", entryPoints: benchEntryPoints,
            configuration: WorkerPool.Configuration(stopTimeout: .seconds(5), handlesSignals: false), logger: quietLogger)
        guard let listener = try? Listener("127.0.0.1:\(port)") else { return nil }
        // Safe: the group is valid by construction and describeGroup only fails after run().
        try! pool.describeGroup(
            WorkerGroup(entryPoint: entryPoint, kind: .reactor, minWorkers: workers, name: "http", runner: runner, listeners: [listener]))
        do {
            _ = try pool.validate()
        } catch {
            print("# \(entryPoint): no load run, the pool is refused: \(error)")
            return nil
        }
        let task = Task { try await pool.run() }
        await pool.awaitStart()
        let load = wrk(port: port, seconds: seconds)
        pool.stop()
        _ = try? await task.value
        return load
    }

    /// One load run against nginx with `workers` worker processes returning the same body.
    static func nginxLoad(_ nginx: String, workers: Int, seconds: Int) -> Load? {
        let port = freePort()
        let directory = "/tmp/poolbench-nginx-\(getpid())"
        mkdir(directory, 0o755)
        let body = "Hello, World! From worker id 1 and group id 1\\n"
        let configuration = """
            worker_processes \(workers);
            pid \(directory)/nginx.pid;
            error_log \(directory)/error.log;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                fastcgi_temp_path \(directory)/fastcgi;
                uwsgi_temp_path \(directory)/uwsgi;
                scgi_temp_path \(directory)/scgi;
                server {
                    listen 127.0.0.1:\(port);
                    location / { default_type text/plain; return 200 "\(body)"; }
                }
            }
            """
        let path = "\(directory)/nginx.conf"
        guard let file = fopen(path, "w") else { return nil }
        fputs(configuration, file)
        fclose(file)
        guard system("'\(nginx)' -p '\(directory)' -c '\(path)' >/dev/null 2>&1") == 0 else {
            print("# nginx did not start; see \(directory)/error.log")
            return nil
        }
        // nginx daemonises; give its workers a moment to open the listener.
        usleep(300_000)
        let load = wrk(port: port, seconds: seconds)
        _ = system("'\(nginx)' -p '\(directory)' -c '\(path)' -s stop >/dev/null 2>&1")
        usleep(300_000)
        _ = system("rm -rf '\(directory)'")
        return load
    }

    /// Runs wrk with latency statistics and reads its summary.
    static func wrk(port: Int, seconds: Int) -> Load? {
        guard let pipe = popen("wrk -t2 -c32 -d\(seconds)s --latency http://127.0.0.1:\(port)/ 2>&1", "r") else { return nil }
        var output = ""
        var buffer = [CChar](repeating: 0, count: 1024)
        while let line = fgets(&buffer, 1024, pipe) { output += String(cString: line) }
        pclose(pipe)
        var load = Load(requestsPerSecond: 0, p50Milliseconds: .nan, p99Milliseconds: .nan, errors: 0)
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Requests/sec:", fields.count > 1 { load.requestsPerSecond = Double(fields[1]) ?? 0 }
            if first == "50.000%" || first == "50%", fields.count > 1 { load.p50Milliseconds = milliseconds(fields[1]) }
            if first == "99.000%" || first == "99%", fields.count > 1 { load.p99Milliseconds = milliseconds(fields[1]) }
            if first == "Socket" { load.errors += fields.compactMap { Int($0.trimmingCharacters(in: .punctuationCharacters)) }.reduce(0, +) }
            if first == "Non-2xx" { load.errors += Int(fields.last ?? "") ?? 0 }
        }
        return load.requestsPerSecond > 0 ? load : nil
    }

    /// "812.00us", "1.23ms", "2.00s" in milliseconds.
    static func milliseconds(_ text: Substring) -> Double {
        for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(unit) {
            if let value = Double(text.dropLast(unit.count)) { return value * scale }
        }
        return .nan
    }

    static func nginxPath() -> String? {
        let candidates: [String] = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        return candidates.first { access($0, X_OK) == 0 }
    }

    static func commandExists(_ name: String) -> Bool {
        system("command -v \(name) >/dev/null 2>&1") == 0
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                _ = bind(fd, pointer, length)
                return getsockname(fd, pointer, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
