import Glibc
import Testing

@testable import PoolEngine

/// The control socket against a real in-process pool: protocol, errors, permissions.
/// Clients block in `recv`, so they run on threads of their own (`TestSupport.blocking`): the
/// server answers on Swift concurrency's few threads, which a blocked client would take.
@Suite("Control socket", .serialized)
struct ControlSocketTests {
    func withPool(_ prefix: String, _ body: (WorkerPoolTests.Fixture, EventRecorder) async throws -> Void) async throws {
        let fixture = WorkerPoolTests.Fixture(prefix)
        try fixture.pool.describeGroup(fixture.group("wait", min: 2, max: 4, name: "waiters"))
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        await fixture.pool.awaitStart()
        try await body(fixture, events)
        fixture.pool.stop()
        await #expect(throws: Never.self) { try await running.finish().get() }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("status returns the documented document, with the same numbers shared memory holds")
    func status() async throws {
        try await withPool("ctlstatus") { fixture, _ in
            let name = fixture.name
            let response = try #require(
                try await TestSupport.blocking { try? ControlClient(pool: name).request(["id": .number(7), "command": .string("status")]) })
            #expect(response["ok"]?.bool == true)
            #expect(response["id"]?.integer == 7)
            let status = try #require(response["status"])
            for key in ["name", "pid", "startedAt", "uptimeSeconds", "restarts"] { #expect(status["pool"]?[key] != nil, "pool.\(key)") }
            #expect(status["pool"]?["restarts"]?["hard"]?.integer == 0)
            let group = try #require(status["groups"]?.array?.first)
            for key in ["id", "name", "kind", "min", "max", "desired", "running", "ready"] { #expect(group[key] != nil, "groups[].\(key)") }
            let workers = try #require(status["workers"]?.array)
            #expect(workers.count == 4)
            for key in ["id", "group", "pid", "state", "restarts", "startedAt", "lastExit", "jobs", "connections", "rssBytes", "cpuSeconds"] {
                #expect(workers[0][key] != nil, "workers[].\(key)")
            }
            for key in ["accepted", "processed", "errors", "rejected", "inFlight"] { #expect(workers[0]["jobs"]?[key] != nil) }
            for key in ["accepted", "processed", "errors", "active"] { #expect(workers[0]["connections"]?[key] != nil) }
            #expect(workers[0]["state"]?.string == "ready")
            #expect(workers[3]["state"]?.string == "stopped")
            #expect(workers[3]["pid"]?.integer == 0)
            #expect(workers[3]["lastExit"] == .null)
            let snapshot = try PoolSnapshot.read(pool: fixture.name)
            #expect(workers.map { $0["pid"]?.integer ?? -1 } == snapshot.workers.map { Int($0.pid) })
        }
    }

    @Test("malformed, unknown and oversized requests get errors; the watcher and other clients carry on")
    func badRequests() async throws {
        try await withPool("ctlbad") { fixture, _ in
            let name = fixture.name
            let cases: [(String, String, String)] = [
                ("not json at all", "bad-request", "malformed"),
                ("[1,2,3]", "bad-request", "expected a JSON object"),
                (#"{"command":"explode"}"#, "unknown-command", "unknown command 'explode'"),
                (#"{"id":1}"#, "bad-request", "'command' is missing"),
                (#"{"command":"scale","group":"waiters"}"#, "bad-request", "'workers'"),
                (#"{"command":"scale","group":"waiters","workers":2,"force":true}"#, "bad-request", "unknown field 'force'"),
                (#"{"command":"restart","mode":"gentle"}"#, "bad-request", "'mode'"),
                (#"{"command":"restart","mode":"rolling"}"#, "bad-request", "needs a 'group'"),
                (#"{"command":"restart","worker":1,"mode":"rolling"}"#, "bad-request", "needs a 'group'"),
                (#"{"command":"scale","group":"waiters","workers":9}"#, "out-of-range", "allowed range is 2...4"),
                (#"{"command":"scale","group":"nope","workers":2}"#, "no-such-group", "no group 'nope'"),
                (#"{"command":"restart","worker":99}"#, "no-such-worker", "no worker with id 99"),
                (#"{"command":"kill","worker":4}"#, "no-process", "worker 4 has no process"),
            ]
            let lines = cases.map(\.0)
            let (responses, oversized, afterOversized, pong) = try await TestSupport.blocking {
                () -> ([JSONValue?], JSONValue?, JSONValue??, JSONValue?) in
                guard let bystander = try? ControlClient(pool: name), let client = try? ControlClient(pool: name),
                    let fd = try? rawFD(client)
                else { return ([], nil, nil, nil) }
                var responses: [JSONValue?] = []
                for line in lines {
                    try? Posix.sendAll(fd, Array((line + "\n").utf8))
                    responses.append(try? client.readLine())
                }
                // An oversized line gets an error, then that connection closes.
                let huge = String(repeating: "x", count: ControlServer.maximumLineLength + 10)
                try? client.send(["command": .string(huge)])
                let oversized = try? client.readLine()
                let after = try? client.readLine()
                // The bystander is undisturbed.
                return (responses, oversized, after, try? bystander.request(["command": .string("ping")]))
            }
            #expect(responses.count == cases.count)
            for ((line, code, message), response) in zip(cases, responses) {
                #expect(response?["ok"]?.bool == false, "\(line)")
                #expect(response?["code"]?.string == code, "\(line): \(String(describing: response))")
                #expect(response?["error"]?.string?.contains(message) == true, "\(line): \(String(describing: response))")
            }
            #expect(oversized?["code"]?.string == "oversized")
            #expect(afterOversized == .some(nil), "the connection closed after the oversized line")
            #expect(pong?["pong"]?.bool == true)
            #expect(try PoolSnapshot.read(pool: fixture.name).groups[0].ready == 2)
        }
    }

    @Test("scale, restart and stop change the pool and report ok")
    func commands() async throws {
        try await withPool("ctlcmd") { fixture, events in
            let name = fixture.name
            func request(_ body: [String: JSONValue]) async throws -> Bool {
                try await TestSupport.blocking { (try? ControlClient(pool: name).request(body))?["ok"]?.bool == true }
            }
            #expect(try await request(["command": .string("scale"), "group": .string("waiters"), "workers": .number(3)]))
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
            #expect(try await request(["command": .string("restart"), "worker": .number(1), "mode": .string("hard")]))
            #expect(await events.waitFor { $0.readyPIDs.count == 4 })
            #expect(events.exits.last?.reason == .restart)
            #expect(events.exits.last?.status == .signaled(SIGKILL))
            #expect(try await request(["command": .string("restart"), "group": .string("waiters")]))
            #expect(await events.waitFor { $0.readyPIDs.count == 7 })
            #expect(try await request(["command": .string("stop"), "worker": .number(2)]))
            #expect(await events.waitFor { $0.exits.contains { $0.id == WorkerID(2) && $0.reason == .stopped } })
            let snapshot = try PoolSnapshot.read(pool: fixture.name)
            #expect(snapshot.worker(WorkerID(2))?.state == .stopped)
            #expect(snapshot.groups[0].desired == 2)
        }
    }

    @Test("events replays recent history, marks where live events start, then streams")
    func eventsStream() async throws {
        try await withPool("ctlevents") { fixture, events in
            let name = fixture.name
            let (acknowledgement, replayed, live) = try await TestSupport.blocking { () -> (JSONValue?, [JSONValue], [String]) in
                guard let client = try? ControlClient(pool: name),
                    let acknowledgement = try? client.request(["command": .string("events")])
                else { return (nil, [], []) }
                var replayed: [JSONValue] = []
                while let line = try? client.readLine(), line["type"]?.string != "live" { replayed.append(line) }
                // A scale from another connection while this one streams.
                _ = try? ControlClient(pool: name).request(
                    ["command": .string("scale"), "group": .string("waiters"), "workers": .number(3)])
                var live: [String] = []
                while let line = try? client.readLine() {
                    live.append(line["type"]?.string ?? "")
                    if line["type"]?.string == "worker-ready" { break }
                }
                return (acknowledgement, replayed, live)
            }
            #expect(acknowledgement?["streaming"]?.bool == true)
            #expect(replayed.filter { $0["type"]?.string == "worker-ready" }.count == 2)
            #expect(replayed.count == acknowledgement?["replaying"]?.integer)
            #expect(acknowledgement?["logHistory"]?.integer == 1000, "the history a console should keep per worker")
            #expect(live.first == "group-scaled")
            #expect(live.contains("worker-starting"))
        }
    }

    @Test("a client of another uid is refused: by the directory's mode, and by SO_PEERCRED if it gets through")
    func otherUserRefused() async throws {
        try await withPool("ctluid") { fixture, _ in
            let socket = RuntimeDirectory.controlSocket(pool: fixture.name)
            let directory = RuntimeDirectory.path(pool: fixture.name)
            #expect(try Posix.ownerAndMode(path: directory).mode == 0o700)
            let asNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups socat -t 2 - UNIX-CONNECT:'\(socket)'"
            let blocked = try await TestSupport.shellOffPool(asNobody, directory: fixture.directory, stdin: "{\"command\":\"ping\"}\n")
            #expect(blocked.status != .exited(0) || !blocked.stdout.contains("pong"), "nobody reached the socket: \(blocked)")
            #expect(blocked.stderr.contains("Permission denied"), "\(blocked.stderr)")

            // Open a way on purpose, without touching directories other tests use: a hard link to the
            // socket in a directory nobody may enter, and the socket made world-writable.
            // The peer-credential check must still refuse.
            let link = "\(fixture.directory)/control-link.sock"
            #expect(Glibc.link(socket, link) == 0)
            try Posix.setMode(socket, 0o666)
            defer {
                Posix.removeFile(link)
                try? Posix.setMode(socket, 0o600)
            }
            let throughLink = "setpriv --reuid=65534 --regid=65534 --clear-groups socat -t 2 - UNIX-CONNECT:'\(link)'"
            // The watcher answers and closes at once, so the client must read before it writes.
            let refused = try await TestSupport.shellOffPool("(sleep 0.5; echo '{\"command\":\"ping\"}') | \(throughLink)", directory: fixture.directory)
            #expect(refused.stdout.contains("permission-denied"), "\(refused)")
            #expect(!refused.stdout.contains("pong"))
        }
    }
}

/// The descriptor inside a ControlClient, to send raw bytes the client would never send.
private func rawFD(_ client: ControlClient) throws -> Int32 {
    guard let fd = Mirror(reflecting: client).children.first(where: { $0.label == "fd" })?.value as? Int32 else {
        throw ControlClientError(code: .connection, message: "no descriptor in the client", pool: "")
    }
    return fd
}
