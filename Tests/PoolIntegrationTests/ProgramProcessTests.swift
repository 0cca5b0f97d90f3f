import Glibc
import Testing

@testable import PoolEngine

/// Programs in another language as workers (`command:`), with real processes: a Python server
/// that reads LISTEN_FDS itself and says READY=1, gunicorn with its own socket activation, and
/// the failures a command can have.
@Suite("Any program as a worker (command:)", .serialized)
struct ProgramProcessTests {
    /// A small HTTP server in Python, the way a program written for systemd serves: socket 3
    /// from LISTEN_FDS (only when LISTEN_PID is its own pid), READY=1 on NOTIFY_SOCKET, and on
    /// SIGTERM it stops accepting, says STOPPING=1 and exits 0.
    static let pythonServer = #"""
        import os, socket, signal, sys
        assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not this process"
        assert os.environ["LISTEN_FDS"] == "1" and os.environ["LISTEN_FDNAMES"] == "web"
        listener = socket.socket(fileno=3)
        worker = os.environ["POOLTOP_WORKER_ID"]
        print(f"worker {worker} mode={os.environ.get('MODE')} secret={os.environ.get('SECRET')} cwd={os.getcwd()}", flush=True)
        print(f"worker {worker} to stderr", file=sys.stderr, flush=True)
        def notify(text):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(text.encode(), os.environ["NOTIFY_SOCKET"])
            s.close()
        stopping = False
        def on_term(signum, frame):
            global stopping
            stopping = True
        signal.signal(signal.SIGTERM, on_term)
        listener.settimeout(0.05)
        notify("READY=1\nSTATUS=serving")
        while not stopping:
            try:
                conn, _ = listener.accept()
            except (socket.timeout, InterruptedError):
                continue
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            body = f"hello from {worker}\n".encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nx-worker: %s\r\nConnection: close\r\n\r\n%s" % (len(body), worker.encode(), body))
            conn.close()
        notify("STOPPING=1")
        print(f"worker {worker} bye", flush=True)
        """#

    static let wsgiApp = #"""
        import os
        def app(environ, start_response):
            worker = os.environ.get("POOLTOP_WORKER_ID", "0")
            body = f"hello from {worker}\n".encode()
            start_response("200 OK", [("Content-Length", str(len(body))), ("x-worker", worker)])
            return [body]
        """#

    /// Rolls the group, then scales it 2 → 4 → 2, all under continuous load; no request may fail.
    func exerciseUnderLoad(name: String, directory: String, port: Int, watcher: ExternalWatcher) async throws {
        func run(_ arguments: String...) async throws -> CommandOutput {
            try await TestSupport.shellOffPool(
                "'\(TestSupport.pooltopExecutable)' " + arguments.map { "'\($0)'" }.joined(separator: " "), directory: directory)
        }
        let load = ContinuousLoad(port: port)
        #expect(await TestSupport.eventually { load.current.ok >= 20 }, "\(load.current)")
        let roll = try await run("restart", name, "web", "--rolling")
        #expect(roll.status == .exited(0), "\(roll)")
        #expect(await watcher.waitForLog("exited", count: 2), "both workers were replaced")
        let grown = try await run("scale", name, "web", "4")
        #expect(grown.status == .exited(0), "\(grown)")
        #expect(await TestSupport.eventually { Set(load.current.byWorker.keys).isSuperset(of: [3, 4]) }, "the new workers serve: \(load.current)")
        let shrunk = try await run("scale", name, "web", "2")
        #expect(shrunk.status == .exited(0), "\(shrunk)")
        #expect(await watcher.waitForLog("reason=scale-down", count: 2), "\(watcher.log)")
        let before = load.current.ok
        #expect(await TestSupport.eventually { load.current.ok >= before + 20 })
        let result = try await load.stop()
        #expect(result.failures.isEmpty, "\(result)")
        #expect(result.ok > 100, "\(result)")
    }

    @Test("a Python program with ready: notify serves its LISTEN_FDS socket; env, envFile, workingDirectory and its output as log lines; a rolling restart and a scale 2 → 4 → 2 under load fail no request")
    func pythonNotifyProgram() async throws {
        let name = TestSupport.uniqueName("prog")
        let directory = TestSupport.makeDirectory(name)
        let app = "\(directory)/app"
        try Posix.makeDirectory(app, mode: 0o755)
        TestSupport.write("\(app)/server.py", Self.pythonServer)
        TestSupport.write("\(directory)/app.env", "# the app's secrets\nSECRET=\"s3 cret\"\nMODE=overridden-by-env\n")
        let port = try SocketClient.freePort()
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            stopTimeout: 5s
            groups:
              - name: web
                kind: reactor
                command: ["python3", "server.py"]
                env: {MODE: production}
                envFile: app.env
                workingDirectory: ./app
                ready: notify
                min: 2
                max: 4
                listen: [{address: '127.0.0.1:\(port)', name: web}]
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        let log = watcher.log
        #expect(log.contains("stream=stdout worker=1 [PoolEngine] worker 1 mode=production secret=s3 cret cwd=\(app)"), "\(log)")
        #expect(log.contains("stream=stderr worker=2 [PoolEngine] worker 2 to stderr"), "\(log)")
        #expect(log.contains("stream=notify worker=1 [PoolEngine] STATUS=serving"), "\(log)")

        try await exerciseUnderLoad(name: name, directory: directory, port: port, watcher: watcher)

        await watcher.stopExpectingCleanExit()
        #expect(watcher.log.contains("worker 1 bye"), "the program's last words are logged")
        #expect(!watcher.log.contains("reason=crash"), "\(watcher.log)")
        #expect(!Posix.isDirectory(path: RuntimeDirectory.path(pool: name)), "no notify socket or other file is left")
    }

    @Test("gunicorn as a reactor group with its own socket activation: a rolling restart and a scale 2 → 4 → 2 under load fail no request; its workers leave with it")
    func gunicorn() async throws {
        guard (try? TestSupport.shell("python3 -c 'import gunicorn'", directory: "/tmp"))?.status == .exited(0) else {
            Issue.record("gunicorn is missing: scripts/ensure-deps test installs it from PyPI")
            return
        }
        let name = TestSupport.uniqueName("gunicorn")
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/wsgi.py", Self.wsgiApp)
        let port = try SocketClient.freePort()
        // gunicorn 22 and later keep a control socket at one path per user; several arbiters
        // on one machine need it off (older versions do not know the option).
        let help = try TestSupport.shell("python3 -m gunicorn --help", directory: directory)
        let noControl = help.stdout.contains("--no-control-socket") ? "\"--no-control-socket\", " : ""
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            stopTimeout: 10s
            groups:
              - name: web
                kind: reactor
                command: ["python3", "-m", "gunicorn", "--workers", "1", \(noControl)"--graceful-timeout", "5", "wsgi:app"]
                workingDirectory: .
                ready: notify
                min: 2
                max: 4
                listen: [{address: '127.0.0.1:\(port)', name: web}]
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        #expect(await watcher.waitForLog("Booting worker", count: 2), "\(watcher.log)")

        try await exerciseUnderLoad(name: name, directory: directory, port: port, watcher: watcher)

        await watcher.stopExpectingCleanExit()
        #expect(!watcher.log.contains("reason=crash"), "\(watcher.log)")
    }

    @Test("a command that cannot start is a spawn failure with its reason, and backs off; the watcher lives on")
    func spawnFailures() async throws {
        let name = TestSupport.uniqueName("badcmd")
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/not-executable.sh", "#!/bin/sh\necho never\n")
        TestSupport.write("\(directory)/bad-interpreter.sh", "#!/no/such/interpreter\n")
        chmod("\(directory)/bad-interpreter.sh", 0o755)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            groups:
              - {name: missing, kind: service, command: ["no-such-program-here"], restart: {backoff: {initial: 200ms}}}
              - {name: noexec, kind: service, command: ["./not-executable.sh"], workingDirectory: ., restart: {backoff: {initial: 200ms}}}
              - {name: fine, kind: service, command: ["sleep", "30"]}
              - {name: interp, kind: service, command: ["./bad-interpreter.sh"], workingDirectory: ., restart: {backoff: {initial: 200ms}}}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        #expect(await watcher.waitForLog("worker 3 (fine) ready"), "\(watcher.log)")
        #expect(await watcher.waitForLog("worker 1 (missing) could not be spawned: cannot run no-such-program-here", count: 2), "\(watcher.log)")
        #expect(watcher.log.contains("failed: No such file or directory"), "\(watcher.log)")
        #expect(await watcher.waitForLog("worker 2 (noexec) could not be spawned: cannot run ./not-executable.sh", count: 2), "\(watcher.log)")
        #expect(watcher.log.contains("./not-executable.sh) failed: Permission denied"), "\(watcher.log)")
        #expect(watcher.log.contains("reason=boot-failure"), "\(watcher.log)")
        #expect(await watcher.waitForLog("worker 1 (missing) restarts in 0.4 seconds"), "the backoff grows: \(watcher.log)")
        // Found and executable, but its interpreter is missing: only the exec itself can tell,
        // so the trampoline reports it on the exec-status pipe.
        #expect(await watcher.waitForLog("worker 4 (interp) could not be spawned: cannot execute ./bad-interpreter.sh: No such file or directory", count: 2), "\(watcher.log)")
        let status = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' status '\(name)'", directory: directory)
        #expect(status.status == .exited(0) && status.stdout.contains("fine"), "\(status)")
        await watcher.stopExpectingCleanExit()
    }

    @Test("probes make workers ready (tcp, http, exec); a watchdog kills a program that stops beating; a probe that fails once ready restarts the worker")
    func probesAndWatchdog() async throws {
        let name = TestSupport.uniqueName("probes")
        let directory = TestSupport.makeDirectory(name)
        let httpPort = try SocketClient.freePort()
        let tcpPort = try SocketClient.freePort()
        TestSupport.write("\(directory)/health.py", """
            import http.server, os
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    code = 200 if os.path.exists("healthy") else 503
                    self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
                def log_message(self, *args): pass
            http.server.HTTPServer(("127.0.0.1", \(httpPort)), Handler).serve_forever()
            """)
        TestSupport.write("\(directory)/healthy", "")
        TestSupport.write("\(directory)/beats.py", """
            import os, socket, time
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            interval = int(os.environ["WATCHDOG_USEC"]) / 4e6
            # Ready first: the watchdog runs from then on, however slow the interpreter's start.
            s.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
            for _ in range(3):
                s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
                time.sleep(interval)
            print("stopped beating", flush=True)
            time.sleep(60)
            """)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            stopTimeout: 3s
            groups:
              - name: web
                kind: service
                command: ["python3", "health.py"]
                workingDirectory: .
                ready: {http: "http://127.0.0.1:\(httpPort)/health", interval: 100ms, failureThreshold: 2}
              - name: tcp
                kind: service
                command: ["python3", "-c", "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); time.sleep(0.5); s.bind(('127.0.0.1', \(tcpPort))); s.listen(); time.sleep(60)"]
                ready: {tcp: "127.0.0.1:\(tcpPort)", interval: 100ms}
              - name: exec
                kind: service
                command: ["sleep", "60"]
                ready: {exec: ["test", "-e", "\(directory)/healthy"], interval: 100ms}
              - name: beats
                kind: service
                command: ["python3", "beats.py"]
                workingDirectory: .
                ready: notify
                watchdog: 1s
                restart: {policy: never}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        for group in ["web", "tcp", "exec", "beats"] {
            #expect(await watcher.waitForLog("(\(group)) ready"), "\(group): \(watcher.log)")
        }
        #expect(await watcher.waitForLog("is hung: no WATCHDOG=1 within its watchdog, 1s"), "\(watcher.log)")
        #expect(await watcher.waitForLog("reason=hang"), "\(watcher.log)")
        #expect(watcher.log.contains("stopped beating"), "killed only once it stopped: \(watcher.log)")
        // The HTTP probe fails twice in a row: the worker is restarted, and comes back once healthy.
        Posix.removeFile("\(directory)/healthy")
        #expect(await watcher.waitForLog("reason=restart"), "\(watcher.log)")
        TestSupport.write("\(directory)/healthy", "")
        #expect(await watcher.waitForLog("(web) ready", count: 2), "\(watcher.log)")
        await watcher.stopExpectingCleanExit()
    }

    @Test("user: runs the program as that user when the watcher is root, and is refused with the reason when it is not")
    func dropsPrivileges() async throws {
        let name = TestSupport.uniqueName("user")
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            groups:
              - {name: who, kind: service, command: ["sh", "-c", "echo uid=$(id -u) gid=$(id -g); sleep 30"], user: nobody}
            """)
        let watcher = try ExternalWatcher(arguments: ["run", "--config", "\(directory)/pool.yaml"], tag: name, directory: directory)
        if getuid() == 0 {
            let nobody = try #require(getpwnam("nobody"))
            #expect(await watcher.waitForLog("uid=\(nobody.pointee.pw_uid) gid=\(nobody.pointee.pw_gid)"), "\(watcher.log)")
        } else {
            #expect(await watcher.waitForLog("'user' and 'group' need the watcher to run as root"), "\(watcher.log)")
        }
        await watcher.stopExpectingCleanExit()
    }
}
