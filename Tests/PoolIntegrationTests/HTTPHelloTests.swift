import Glibc
import Synchronization
import Testing

import PoolConsole
@testable import PoolEngine

/// The demo's HTTP reactor (the seed's HttpReactor and HttpServerWithJobs) served by real
/// worker processes, talking to the demo job workers, asked by a raw HTTP/1.1 client.
@Suite("HTTP demo reactor with real processes", .serialized)
struct HTTPHelloTests {
    /// Runs a pool of one demo job worker (id 1) and the `http` reactor group (ids 2…5, two
    /// started) on a free port while `body` runs, then stops it and checks nothing is left.
    func withHTTPPool(
        _ prefix: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (WorkerPoolTests.Fixture, Int, EventRecorder) async throws -> Void
    ) async throws {
        let fixture = WorkerPoolTests.Fixture(prefix)
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 1, name: "jobs"))
        var http = fixture.group("http-hello", kind: .reactor, min: 2, max: 4, name: "http")
        http.jobGroups = [.name("jobs")]
        http.listeners = [try Listener("127.0.0.1:\(port)")]
        try fixture.pool.describeGroup(http)
        try await fixture.withRunningPool(sourceLocation: sourceLocation) { events in try await body(fixture, port, events) }
    }

    /// The pool's shared memory, read from the test.
    func sharedState(_ fixture: WorkerPoolTests.Fixture) throws -> (PoolStateReader, SharedSegment) {
        let segment = try SharedSegment.open(name: SharedLayout.segmentName(pool: fixture.name, uid: Posix.userID), writable: false)
        return (PoolStateReader(segment: segment), segment)
    }

    /// The http reactor (slots 2...5 of `withHTTPPool`) whose record names a request it serves,
    /// waiting up to 5 s for one.
    func servingReactor(_ reader: PoolStateReader, _ segment: SharedSegment) async -> WorkerID? {
        var serving: WorkerID?
        _ = await TestSupport.eventually(timeout: .seconds(5)) {
            serving = (2...5).map { WorkerID($0) }.first { reader.currentRequest(segment.slotBase($0)) != nil }
            return serving != nil
        }
        return serving
    }

    @Test("/ greets from a worker, /pid is that worker's pid, /job runs a job and maps its errors to statuses")
    func routes() async throws {
        try await withHTTPPool("http") { fixture, port, events in
            let httpIDs = Set(events.readyPIDs.filter { $0.0.rawValue >= 2 }.map(\.0.rawValue))
            var greeted = Set<Int>()
            for _ in 0..<60 {
                let reply = try #require(await HTTPClient.fetch(port: port, "/"))
                #expect(reply.status == 200)
                let match = reply.body.split(separator: " ")
                // "Hello, World! From worker id N and group id G"
                #expect(reply.body.hasPrefix("Hello, World! From worker id ") && match.last == "2\n", "\(reply.body)")
                if let id = Int(match[5]) { greeted.insert(id) }
            }
            #expect(greeted == httpIDs, "both reactors served")
            let pid = try #require(await HTTPClient.fetch(port: port, "/pid"))
            #expect(events.readyPIDs.contains { $0.1 == Int32(pid.body.dropLast()) ?? -1 })
            let echo = try #require(await HTTPClient.fetch(port: port, "/job?cmd=echo+hello%20there"))
            #expect(echo.status == 200 && echo.body == "hello there\n")
            let failed = try #require(await HTTPClient.fetch(port: port, "/job?cmd=fail+boom"))
            #expect(failed.status == 422 && failed.body.contains("boom"))
            #expect(try #require(await HTTPClient.fetch(port: port, "/job")).status == 400)
            #expect(try #require(await HTTPClient.fetch(port: port, "/nothing")).status == 404)
        }
    }

    @Test("keep-alive serves several requests on one connection; the counters in shared memory match the client")
    func keepAliveAndCounters() async throws {
        try await withHTTPPool("httpcount") { fixture, port, events in
            let (replies, failure) = try await TestSupport.blocking { () -> ([HTTPClient.Reply]?, String) in
                var failure = ""
                return (HTTPClient.getKeepAlive(port: port, "/", times: 5, failure: &failure), failure)
            }
            let kept = try #require(replies, "\(failure)")
            #expect(kept.count == 5 && kept.allSatisfy { $0.status == 200 })
            #expect(Set(kept.map(\.worker)).count == 1, "one connection, one worker")
            for _ in 0..<20 { _ = try await HTTPClient.fetch(port: port, "/") }
            let reader = try PoolStateReader(pool: fixture.name)
            let ids = (2...5).map { WorkerID($0) }
            // 21 connections in all; each is counted once it closes.
            let settled = await TestSupport.eventually(timeout: .seconds(5)) {
                let activities = ids.compactMap { try? reader.activity(of: $0) }
                return activities.reduce(0) { $0 + $1.connectionsProcessed } == 21
            }
            let activities = try ids.map { try reader.activity(of: $0) }
            #expect(settled, "\(activities.map { ($0.connectionsAccepted, $0.connectionsProcessed, $0.connectionsErrors, $0.connectionsActive) })")
            #expect(activities.reduce(0) { $0 + $1.connectionsAccepted } == 21)
            #expect(activities.allSatisfy { $0.connectionsActive == 0 && $0.connectionsErrors == 0 })
        }
    }

    @Test("pipelined requests in one write are answered in order, a job's answer among them; HEAD, HTTP/1.0 keep-alive and a body to skip are read right")
    func pipelining() async throws {
        try await withHTTPPool("httppipe") { fixture, port, events in
            let requests = [
                "GET /pid HTTP/1.1\r\nHost: t\r\n\r\n",
                // A job that takes a while: the requests behind it must wait for its answer.
                "GET /job?cmd=sleep+150 HTTP/1.1\r\nHost: t\r\n\r\n",
                "POST /pid HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nGET / HTTP/",
                "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
                "GET /pid HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                "GET /job?cmd=echo+last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            ]
            let sent = Array(requests.joined().utf8)
            let raw = try #require(try await TestSupport.blocking { HTTPClient.exchange(port: port, sent) }, "the server answered and closed")
            let responses = try #require(HTTPClient.responses(raw, bodyless: [3]), "\(String(decoding: raw, as: UTF8.self))")
            #expect(responses.map(\.status) == [200, 200, 405, 200, 200, 200], "\(responses)")
            guard responses.count == 6 else { return }
            let pid = try #require(Int32(responses[0].body.dropLast()))
            #expect(events.readyPIDs.contains { $0.1 == pid }, "/pid is a reactor's pid")
            #expect(responses[1].body.hasPrefix("slept 150 ms on worker 1"), "\(responses[1])")
            // The body "GET / HTTP/" was skipped, not read as a request.
            #expect(responses[2].headers["allow"] == "GET, HEAD" && responses[2].body.contains("POST is not served"), "\(responses[2])")
            let greeting = "Hello, World! From worker id \(responses[0].headers["x-worker"] ?? "?") and group id 2\n"
            #expect(responses[3].headers["content-length"] == "\(greeting.utf8.count)" && responses[3].body.isEmpty, "\(responses[3])")
            #expect(responses[4].headers["connection"] == "keep-alive" && responses[4].body == "\(pid)\n", "\(responses[4])")
            #expect(responses[5].body == "last\n" && responses[5].headers["connection"] == "close", "\(responses[5])")
            #expect(Set(responses.map { $0.headers["x-worker"] }).count == 1, "one connection, one worker")
            #expect(responses.allSatisfy { $0.headers["date"]?.hasSuffix(" GMT") == true }, "every answer is dated")
            _ = fixture
        }
    }

    @Test("a request the reactor cannot read is answered with the status that names what is wrong, then the connection closes")
    func badRequests() async throws {
        try await withHTTPPool("httpbad") { fixture, port, events in
            let cases: [(String, Int, String)] = [
                ("GET / HTTP/1.1\r\n\r\n", 400, "needs a host"),
                ("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, "HTTP/2.0 is not served here"),
                ("HELLO\r\n\r\n", 400, "the request line has no spaces"),
                ("GET / HTTP/1.1\r\nHost: t\r\nX-Bad : 1\r\n\r\n", 400, "header field 2's name"),
                ("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 501, "transfer-encoding"),
                ("GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + String(repeating: "a", count: 9000), 431, "longer than 8192 bytes"),
                // A good request first: answered, then the bad one after it on the same connection.
                ("GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", 400, "content-length is not a number"),
                ("GET / HTTP/1.0\r\n\r\n", 200, "Hello, World!"),
            ]
            for (request, status, expected) in cases {
                let sent = Array(request.utf8)
                let raw = try #require(try await TestSupport.blocking { HTTPClient.exchange(port: port, sent) }, "answered and closed: \(request.debugDescription)")
                let responses = try #require(HTTPClient.responses(raw), "\(String(decoding: raw, as: UTF8.self))")
                let last = try #require(responses.last)
                #expect(last.status == status && last.body.contains(expected), "\(request.debugDescription): \(responses)")
                #expect(last.headers["connection"] == "close", "\(request.debugDescription): \(last)")
            }
            // The reactors live on: a bad request ends its connection, not the worker.
            #expect(events.exits.isEmpty, "\(events.exits)")
            #expect(try await HTTPClient.fetch(port: port, "/")?.status == 200)
            _ = fixture
        }
    }

    @Test("a client that resets its connection with a request waiting behind a job leaves nothing for the drain: a soft restart then ends cleanly")
    func leaveBehindJob() async throws {
        try await withHTTPPool("httpleave") { fixture, port, events in
            // A job, a request pipelined behind it, and the client gone before the job answers.
            let sent = Array("GET /job?cmd=sleep+200 HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
            try await TestSupport.blocking {
                guard let fd = SocketClient.connectTCP(port: port) else { return }
                _ = send(fd, sent, sent.count, Int32(MSG_NOSIGNAL))
                // Gone with a reset while the job runs: the server learns of it before the answer.
                usleep(50_000)
                var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                close(fd)
            }
            // The job ends and its answer meets a closed connection.
            try await Task.sleep(for: .milliseconds(400))
            try await fixture.pool.restartGroup(.name("http"), hard: false)
            #expect(await events.waitFor { $0.exits.filter { $0.reason == .restart }.count == 2 })
            let restarted = events.exits.filter { $0.reason == .restart }
            // A drain waiting for that connection would end in the 5 s stop timeout's SIGKILL.
            #expect(restarted.count == 2 && restarted.allSatisfy { $0.status == .exited(0) }, "\(restarted)")
        }
    }

    @Test("a reactor killed while serving a request names it in its post-mortem, with how long it had run")
    func requestInPostMortem() async throws {
        try await withHTTPPool("httpwhy") { fixture, port, events in
            let slow = Task { try await TestSupport.blocking { HTTPClient.get(port: port, "/job?cmd=sleep+5000") } }
            let (reader, segment) = try sharedState(fixture)
            let id = try #require(await servingReactor(reader, segment), "a reactor names the request it serves")
            let pid = try #require(fixture.pool.snapshot()?.worker(id)?.pid)
            kill(pid, SIGKILL)
            _ = try? await slow.value
            let settled = await TestSupport.eventually(timeout: .seconds(5)) {
                PostMortemFile.records(pool: fixture.name).contains { $0.worker == id && $0.request != nil }
            }
            #expect(settled, "\(PostMortemFile.records(pool: fixture.name))")
            let record = try #require(PostMortemFile.records(pool: fixture.name).last { $0.worker == id })
            #expect(record.request?.head == "/job?cmd=sleep+5000" && record.request?.bytes == 19, "\(String(describing: record.request))")
            #expect((record.request?.runningSeconds ?? -1) >= 0 && record.reason == .signal)
            #expect(PostMortemText.lines(record).contains { $0.hasPrefix("  serving request \"/job?cmd=sleep+5000\" for ") }, "\(PostMortemText.lines(record))")
            _ = events
        }
    }

    @Test("a bad request on another connection leaves the request a reactor is serving named in shared memory")
    func badRequestKeepsServingNamed() async throws {
        try await withHTTPPool("httpbadname") { fixture, port, events in
            let slow = Task { try await TestSupport.blocking { HTTPClient.get(port: port, "/job?cmd=sleep+3000") } }
            let (reader, segment) = try sharedState(fixture)
            let id = try #require(await servingReactor(reader, segment), "a reactor names the request it serves")
            // Ten connections with a request refused before it started: the kernel spreads them
            // over both reactors, so the serving one gets some (all ten missing it: 1 in 1024).
            let bad = Array("GET / HTTP/1.1\r\n\r\n".utf8)
            for _ in 0..<10 {
                let raw = try await TestSupport.blocking { HTTPClient.exchange(port: port, bad) }
                #expect(raw.map { String(decoding: $0, as: UTF8.self).hasPrefix("HTTP/1.1 400") } == true)
            }
            #expect(reader.currentRequest(segment.slotBase(id))?.head == Array("/job?cmd=sleep+3000".utf8), "still named")
            #expect(try await slow.value?.status == 200)
            _ = events
        }
    }

    @Test("a soft-restarted reactor finishes the request it is serving before it exits, and its slot serves again")
    func restartDrainsInFlight() async throws {
        try await withHTTPPool("httpdrain") { fixture, port, events in
            let slow = Task { try await TestSupport.blocking { HTTPClient.get(port: port, "/job?cmd=sleep+600") } }
            // Let the request reach a worker and its job start, then restart every reactor.
            try await Task.sleep(for: .milliseconds(200))
            try await fixture.pool.restartGroup(.name("http"), hard: false)
            let reply = try await slow.value
            #expect(reply?.status == 200, "the in-flight request was answered: \(String(describing: reply))")
            #expect(await events.waitFor { $0.readyPIDs.count == 5 })
            let after = try await HTTPClient.fetch(port: port, "/")
            #expect(after?.status == 200)
            let restarted = events.exits.filter { $0.reason == .restart }
            #expect(restarted.count == 2 && restarted.allSatisfy { $0.status == .exited(0) }, "\(restarted)")
        }
    }

    @Test("under continuous load, a soft restart of the group and scaling up fail no request")
    func restartAndScaleUnderLoad() async throws {
        try await withHTTPPool("httpload") { fixture, port, events in
            let load = ContinuousLoad(port: port)
            try await Task.sleep(for: .milliseconds(150))
            try await fixture.pool.restartGroup(.name("http"), hard: false)
            #expect(await events.waitFor { $0.exits.filter { $0.reason == .restart }.count == 2 && $0.readyPIDs.count == 5 })
            try await fixture.pool.scale(.name("http"), to: 4)
            #expect(await events.waitFor { $0.readyPIDs.count == 7 })
            // The load goes on until the workers the scale-up added answer too (a count of
            // answers would measure this machine's speed, not the pool's behaviour).
            #expect(await TestSupport.eventually { load.current.byWorker.count >= 3 }, "\(load.current)")
            let result = try await load.stop()
            #expect(result.failures.isEmpty, "\(result)")
        }
    }

    @Test("under continuous load from three clients (two of them keep their connections alive), scaling down and up again and again fails no request")
    func scaleDownUnderLoad() async throws {
        try await withHTTPPool("httpscaledown") { fixture, port, events in
            let loads = [ContinuousLoad(port: port), ContinuousLoad(port: port, keepAlive: true), ContinuousLoad(port: port, keepAlive: true)]
            try await Task.sleep(for: .milliseconds(100))
            for round in 1...3 {
                try await fixture.pool.scale(.name("http"), to: 4)
                #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: fixture.name))?.group(named: "http")?.ready == 4 })
                try await Task.sleep(for: .milliseconds(100))
                try await fixture.pool.scale(.name("http"), to: 2)
                #expect(await events.waitFor { $0.exits.filter { $0.reason == .scaleDown }.count == 2 * round }, "round \(round)")
                try await Task.sleep(for: .milliseconds(100))
            }
            var results: [ContinuousLoad.Result] = []
            for load in loads { results.append(try await load.stop()) }
            for result in results {
                #expect(result.failures.isEmpty, "\(result)")
                #expect(result.ok > 50, "the load ran throughout: \(result)")
            }
            // The workers that came and went served too: the load reached the added slots.
            let served = Set(results.flatMap { $0.byWorker.keys })
            #expect(served.count >= 3, "\(served)")
        }
    }

    @Test("SIGKILL of a reactor under continuous load: the other keeps serving, the replacement serves, at most the request in flight fails")
    func killUnderLoad() async throws {
        try await withHTTPPool("httpkill") { fixture, port, events in
            let load = ContinuousLoad(port: port)
            try await Task.sleep(for: .milliseconds(150))
            let victim = try #require(events.readyPIDs.first { $0.0.rawValue >= 2 }?.0)
            try await fixture.pool.killWorker(victim)
            #expect(await events.waitFor { $0.readyPIDs.count == 4 }, "the replacement became ready")
            // Both slots, the replacement's included, serve a good number of requests (a bounded
            // wait, not a fixed pause: a loaded machine serves fewer in any fixed time).
            _ = await TestSupport.eventually {
                let current = load.current
                return current.byWorker.count == 2 && current.byWorker.values.allSatisfy { $0 > 20 }
            }
            let result = try await load.stop()
            // A sequential client has one request in flight: only that one may be lost with the process.
            #expect(result.failures.count <= 1, "\(result)")
            #expect(result.byWorker.count == 2 && result.byWorker.values.allSatisfy { $0 > 20 }, "\(result)")
            let after = try await TestSupport.blocking { SocketClient.askHTTP(port: port, times: 60) }
            #expect(after.failed == 0 && after.workers.count == 2, "both slots serve after the replacement: \(after)")
        }
    }

    @Test("a rolling restart under continuous load replaces every reactor, one at a time, and fails no request")
    func rollingRestartUnderLoad() async throws {
        try await withHTTPPool("httproll") { fixture, port, events in
            let before = Set(events.readyPIDs.filter { $0.0.rawValue >= 2 }.map(\.1))
            let load = ContinuousLoad(port: port)
            let kept = ContinuousLoad(port: port, keepAlive: true)
            // Both clients are answered before the roll and again after it (counts of answers in
            // a time window would measure the machine, which a sanitizer build slows severalfold).
            #expect(await TestSupport.eventually { load.current.ok > 0 && kept.current.ok > 0 })
            let replaced = try await fixture.pool.rollingRestart(.name("http"))
            let (rolled, keptRolled) = (load.current.ok, kept.current.ok)
            #expect(await TestSupport.eventually { load.current.ok > rolled && kept.current.ok > keptRolled })
            let result = try await load.stop()
            let keptResult = try await kept.stop()
            #expect(replaced == 2)
            #expect(result.failures.isEmpty, "\(result)")
            #expect(keptResult.failures.isEmpty, "keep-alive client: \(keptResult)")
            let snapshot = try #require(fixture.pool.snapshot())
            let after = snapshot.workers.filter { $0.group == "http" && $0.state == .ready }
            #expect(after.count == 2 && after.allSatisfy { !before.contains($0.pid) }, "every reactor is a new process")
            // Start beside, one at a time: each replacement is ready before the worker it replaces
            // is asked to finish. The group (2 of max 4) has spares: the first replacement runs in
            // slot 4, the second in slot 2 that the first roll freed.
            let order = events.all.compactMap { event -> String? in
                switch event {
                case .workerReady(let id, _, _, _) where id.rawValue >= 2: return "ready \(id)"
                case .workerExited(let record) where record.reason == .restart: return "exit \(record.id)"
                default: return nil
                }
            }
            #expect(order.suffix(4) == ["ready 4", "exit 2", "ready 2", "exit 3"], "\(order)")
            #expect(snapshot.group(named: "http")?.desired == 2, "as many workers as before")
        }
    }
}
