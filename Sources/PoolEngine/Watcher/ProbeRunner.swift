import Synchronization

/// Runs one program worker's readiness probe on a thread of its own, and posts what it found
/// to the watcher loop: the first success (the worker is ready), and, once ready,
/// `failureThreshold` failures in a row (the worker is restarted).
///
/// A probe blocks (a connect, an HTTP answer, a command's exit), each bounded by its `timeout`:
/// it never runs on the watcher loop or on Swift's cooperative pool. The thread lives as long as
/// the worker's process, and ends when ``cancel()`` is called or after posting a failure.
final class ProbeRunner: Sendable {
    private struct State: ~Copyable {
        var isCancelled = false
        /// Open until the thread ends; only the thread closes it.
        var isOpen = true
    }

    private let wakeUp: WakeUpEvent
    private let state = Mutex(State())

    /// Starts probing; `post` is called from the probe's thread.
    init(
        probe: ReadinessProbe, worker: String, environment: [String], post: @escaping @Sendable (_ succeeded: Bool, _ why: String) -> Void
    ) throws {
        wakeUp = try WakeUpEvent(context: "probe of \(worker)")
        do {
            try DedicatedThread.start(name: "probe") { [self] in
                run(probe, environment: environment, post: post)
                state.withLock { state in
                    state.isOpen = false
                    wakeUp.close()
                }
            }
        } catch {
            wakeUp.close()
            throw error
        }
    }

    /// Ends the probing; the thread leaves at its next wait (a probe under way finishes first).
    func cancel() {
        state.withLock { state in
            state.isCancelled = true
            if state.isOpen { wakeUp.signal() }
        }
    }

    private var isCancelled: Bool { state.withLock { $0.isCancelled } }

    /// Waits `duration` unless cancelled meanwhile; false when cancelled.
    private func wait(_ duration: Duration) -> Bool {
        // try?: the wake-up descriptor is ours and open; a failed wait only shortens the pause.
        if duration > .zero { _ = try? Posix.pollReadable(wakeUp.fd, timeoutNanoseconds: duration.nanoseconds) }
        return !isCancelled
    }

    private func run(_ probe: ReadinessProbe, environment: [String], post: @Sendable (Bool, String) -> Void) {
        guard wait(probe.initialDelay) else { return }
        var isReady = false
        var failures = 0
        while !isCancelled {
            let failure = Self.check(probe, environment: environment)
            guard !isCancelled else { return }
            if let failure {
                failures += 1
                if isReady && failures >= probe.failureThreshold {
                    post(false, "\(failures) times in a row, last: \(failure)")
                    return
                }
            } else {
                failures = 0
                if !isReady {
                    isReady = true
                    post(true, "")
                }
            }
            guard wait(probe.interval) else { return }
        }
    }

    /// Runs the probe once: nil when it passed, else why not.
    static func check(_ probe: ReadinessProbe, environment: [String]) -> String? {
        let milliseconds = Int32(clamping: max(probe.timeout.nanoseconds / 1_000_000, 1))
        switch probe.check {
        case .tcp(let host, let port):
            do {
                Posix.close(try Posix.connectTCP(host: host, port: port, timeoutMilliseconds: milliseconds))
                return nil
            } catch {
                return "\(error)"
            }
        case .http(let host, let port, let path):
            return checkHTTP(host: host, port: port, path: path, timeoutMilliseconds: milliseconds)
        case .exec(let command):
            return checkCommand(command, environment: environment, timeout: probe.timeout)
        }
    }

    private static func checkHTTP(host: String, port: Int, path: String, timeoutMilliseconds: Int32) -> String? {
        let fd: Int32
        do {
            fd = try Posix.connectTCP(host: host, port: port, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            return "\(error)"
        }
        defer { Posix.close(fd) }
        let hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let request = "GET \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: pooltop-probe\r\nConnection: close\r\n\r\n"
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        do {
            try Posix.sendAll(fd, Array(request.utf8))
            // The status line is all a probe needs.
            while !answer.contains(UInt8(ascii: "\n")) && answer.count < 4096 {
                guard let n = try buffer.withUnsafeMutableBytes({ try Posix.receive(fd, into: $0, nonBlocking: false) }), n > 0 else { break }
                answer += buffer[0..<n]
            }
        } catch {
            return "GET \(path): \(error)"
        }
        let statusLine = String(decoding: answer.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let code = Int(parts[1]) else {
            return "GET \(path): no HTTP answer (got '\(statusLine.prefix(60))')"
        }
        return (200..<400).contains(code) ? nil : "GET \(path) answered \(code)"
    }

    private static func checkCommand(_ command: [String], environment: [String], timeout: Duration) -> String? {
        let path: String
        switch Posix.findExecutable(command[0], searchPath: ProgramLauncher.searchPath(in: environment), directory: nil) {
        case .success(let found): path = found
        case .failure(let error): return "\(error)"
        }
        do {
            let null = try Posix.openNullDevice()
            defer { Posix.close(null) }
            guard
                let status = try Posix.runBounded(
                    path: path, arguments: Array(command.dropFirst()), environment: environment, output: null, timeout: timeout)
            else {
                return "\(command.joined(separator: " ")) took longer than \(DurationParser.format(timeout))"
            }
            return status == .exited(0) ? nil : "\(command.joined(separator: " ")) ended with \(status)"
        } catch {
            return "\(error)"
        }
    }
}
