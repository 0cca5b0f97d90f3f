import Glibc
import Testing

@testable import PoolEngine

/// Reactor groups with real listening sockets: the watcher binds one SO_REUSEPORT socket per
/// slot and each worker process (SwiftNIO, debug build) accepts on the one it inherited.
@Suite("Reactor listeners with real sockets and processes", .serialized)
struct ListenerSocketsTests {
    typealias Fixture = WorkerPoolTests.Fixture

    func reactorGroup(_ fixture: Fixture, _ listeners: [Listener], min: Int = 2, max: Int = 0) -> WorkerGroup {
        var group = fixture.group("line-reactor", kind: .reactor, min: min, max: max, name: "web")
        group.listeners = listeners
        return group
    }

    @Test("several reactors all serve one address; each inherits its socket the socket-activation way")
    func severalReactorsServe() async throws {
        let fixture = Fixture("reactors")
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")]))
        try await fixture.withRunningPool { events in
            let answers = try await TestSupport.blocking { SocketClient.ask(port: port, times: 200) }
            #expect(answers.failures == 0)
            let ids = Set(answers.workers.keys)
            #expect(ids == Set(events.readyPIDs.map(\.0.rawValue)), "both workers served: \(answers.workers)")
            // Every worker saw its socket at fd 3 named listen0, with LISTEN_PID made its own.
            let lines = fixture.lines("listeners")
            #expect(lines.count == 2)
            for line in lines {
                let fields = line.split(separator: " ")
                #expect(fields.count == 4 && fields[2] == "listen0=3" && fields[3] == "LISTEN_PID=\(fields[1])", "\(line)")
            }
        }
    }

    @Test("with standby: true a killed reactor's replacement is the standby: it gets the slot's socket at fd 3 and serves it")
    func standbyReactor() async throws {
        let fixture = Fixture("standbyweb")
        let port = try SocketClient.freePort()
        var group = reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")])
        group.standby = true
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let standby = try #require(await events.standby(of: fixture.name))
            // Until it takes a slot it holds no socket: /dev/null where the slot's will go.
            #expect(Self.socketInode(pid: standby, fd: 3) == "/dev/null")
            let (victimID, victimSocket, replacement) = try await Self.killFirst(events)
            #expect(replacement.0 == victimID && replacement.1 == standby)
            try await Self.expectServes(fixture, events, port: port, slot: victimID, socket: victimSocket, process: standby)
        }
    }

    @Test("a killed reactor's replacement is forked by the group's fork server: it gets the slot's socket at fd 3 and serves it", .enabled(if: Posix.pidfdReportsExitStatus, "fork servers need Linux 6.15 (PIDFD_INFO_EXIT); the key has no effect before"))
    func forkedReactor() async throws {
        let fixture = Fixture("forkweb")
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")]))
        try await fixture.withRunningPool { events in
            let server = try #require(await TestSupport.forkServer(of: fixture.name))
            // It holds no socket: /dev/null where a slot's go, so that each fork finds its own there.
            #expect(Self.socketInode(pid: server, fd: 3) == "/dev/null")
            let (victimID, victimSocket, replacement) = try await Self.killFirst(events)
            #expect(replacement.0 == victimID && TestSupport.parent(of: replacement.1) == server)
            try await Self.expectServes(fixture, events, port: port, slot: victimID, socket: victimSocket, process: replacement.1)
            #expect(Self.socketInode(pid: server, fd: 3) == "/dev/null")
        }
    }

    /// SIGKILLs the first of the group's two ready workers and waits for the third ready event:
    /// the victim's slot, the socket it held at fd 3, and the replacement (slot, pid).
    static func killFirst(_ events: EventRecorder) async throws -> (WorkerID, String, (WorkerID, pid_t)) {
        let (victimID, victimPID) = try #require(events.readyPIDs.first)
        let victimSocket = socketInode(pid: victimPID, fd: 3)
        kill(victimPID, SIGKILL)
        #expect(await events.waitFor { $0.readyPIDs.count == 3 })
        return (victimID, victimSocket, try #require(events.readyPIDs.last))
    }

    /// A replacement that did not start with its slot's socket (a standby's, a fork's) has it:
    /// the slot's own socket (the watcher keeps it across restarts) at fd 3, named and announced
    /// the socket-activation way, and it serves beside the group's other worker.
    static func expectServes(
        _ fixture: Fixture, _ events: EventRecorder, port: Int, slot: WorkerID, socket: String, process: pid_t,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        #expect(socketInode(pid: process, fd: 3) == socket, sourceLocation: sourceLocation)
        // Its `run()` writes the line just after it said ready.
        var written: String?
        #expect(await TestSupport.eventually {
            written = fixture.lines("listeners").last { $0.hasPrefix("\(slot) \(process) ") }
            return written != nil
        }, sourceLocation: sourceLocation)
        let line = try #require(written, sourceLocation: sourceLocation)
        #expect(line.hasSuffix(" listen0=3 LISTEN_PID=\(process)"), "\(line)", sourceLocation: sourceLocation)
        let answers = try await TestSupport.blocking { SocketClient.ask(port: port, times: 200) }
        #expect(answers.failures == 0, sourceLocation: sourceLocation)
        #expect(Set(answers.workers.keys) == Set(events.readyPIDs.suffix(2).map(\.0.rawValue)), "\(answers.workers)", sourceLocation: sourceLocation)
    }

    @Test("a shared TCP listener is one socket every worker of the group accepts on, and all of them serve")
    func sharedListener() async throws {
        let fixture = Fixture("sharedtcp")
        let port = try SocketClient.freePort()
        var listener = try Listener("127.0.0.1:\(port)")
        listener.shared = true
        try fixture.pool.describeGroup(reactorGroup(fixture, [listener]))
        try await fixture.withRunningPool { events in
            let answers = try await TestSupport.blocking { SocketClient.ask(port: port, times: 200) }
            #expect(answers.failures == 0)
            #expect(Set(answers.workers.keys) == Set(events.readyPIDs.map(\.0.rawValue)), "both workers served: \(answers.workers)")
            // The same socket (one inode) in every worker, where per-slot listeners give each its own.
            let sockets = Set(events.readyPIDs.map { _, pid in Self.socketInode(pid: pid, fd: 3) })
            #expect(sockets.count == 1 && sockets.first?.hasPrefix("socket:[") == true, "\(sockets)")
        }
    }

    /// What `/proc/PID/fd/FD` links to: `socket:[inode]` for a socket.
    static func socketInode(pid: Int32, fd: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let count = readlink("/proc/\(pid)/fd/\(fd)", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }

    @Test("a listener that cannot be bound fails run() naming it, and nothing is started or left behind")
    func bindError() async throws {
        let fixture = Fixture("bindfail")
        let (port, holder) = try SocketClient.occupiedPort()
        defer { close(holder) }
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")]))
        let events = EventRecorder(fixture.pool)
        let result = await RunningPool(fixture.pool).finish()
        #expect(throws: PoolStartError.self) { try result.get() }
        if case .failure(let error as PoolStartError) = result {
            #expect(error.code == .listener)
            #expect(error.message.contains("group 'web'") && error.message.contains("127.0.0.1:\(port)"), "\(error)")
            #expect(error.message.contains("Address already in use"), "\(error)")
        }
        #expect(events.starts == 0)
        #expect((try? Posix.sharedMemoryOwnerAndMode(name: SharedLayout.segmentName(pool: fixture.name, uid: Posix.userID))) == nil)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("a second pool on an address the first one serves is refused, not silently let in to share it")
    func secondPoolRefused() async throws {
        for attempt in 1...3 {
            let first = Fixture("reactorfirst")
            let second = Fixture("reactorsecond")
            let port = try SocketClient.freePort()
            try first.pool.describeGroup(reactorGroup(first, [try Listener("127.0.0.1:\(port)")]))
            try second.pool.describeGroup(reactorGroup(second, [try Listener("127.0.0.1:\(port)")]))
            // `freePort` holds the port it found (SO_REUSEADDR, not listening), yet something on
            // the host that binds with SO_REUSEADDR too could still listen there first (a port
            // taken between the check and the bind was seen in CI before it held them). That is
            // not what this test is about: take another port, at most twice.
            let firstRun = RunningPool(first.pool)
            await first.pool.awaitStart()
            if first.pool.snapshot() == nil {
                let result = await firstRun.finish()
                await TestSupport.expectNoOrphans(first.name)
                if attempt < 3, case .failure(let error as PoolStartError) = result, error.code == .listener {
                    continue
                }
                Issue.record("the first pool did not start on port \(port): \(result)")
                return
            }
            let result = await RunningPool(second.pool).finish()
            #expect(throws: PoolStartError.self) { try result.get() }
            if case .failure(let error as PoolStartError) = result {
                #expect(error.code == .listener && error.message.contains("Address already in use"), "\(error)")
            }
            let answers = try await TestSupport.blocking { SocketClient.ask(port: port, times: 50) }
            #expect(answers.failures == 0 && answers.workers.values.reduce(0, +) == 50, "\(answers)")
            first.pool.stop()
            await #expect(throws: Never.self) { try await firstRun.finish().get() }
            await TestSupport.expectNoOrphans(first.name)
            await TestSupport.expectNoOrphans(second.name)
            return
        }
    }

    @Test("a Unix-domain listener is served by every worker and its file is removed when the pool stops")
    func unixListener() async throws {
        let fixture = Fixture("unixlisten")
        let path = "\(fixture.directory)/app.sock"
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("unix:\(path)", name: "app")]))
        try await fixture.withRunningPool { _ in
            let answers = try await TestSupport.blocking { SocketClient.ask(unixPath: path, times: 40) }
            #expect(answers.failures == 0 && answers.workers.values.reduce(0, +) == 40)
            #expect(fixture.lines("listeners").allSatisfy { $0.contains(" app=3 ") }, "found by its name")
        }
        #expect(access(path, F_OK) != 0, "the socket file was removed")
    }

    @Test("scaling down gives the slot's socket back: no connection is left on a socket nobody accepts")
    func scaleDownRetiresSocket() async throws {
        let fixture = Fixture("reactorscale")
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")], min: 1, max: 2))
        try await fixture.withRunningPool { events in
            try await fixture.pool.scale(.name("web"), to: 2)
            #expect(await events.waitFor { $0.readyPIDs.count == 2 })
            let both = try await TestSupport.blocking { SocketClient.ask(port: port, times: 100) }
            #expect(both.failures == 0 && both.workers.count == 2, "\(both)")
            try await fixture.pool.scale(.name("web"), to: 1)
            #expect(await events.waitFor { $0.exits.count == 1 })
            let one = try await TestSupport.blocking { SocketClient.ask(port: port, times: 100) }
            #expect(one.failures == 0 && one.workers.count == 1, "\(one)")
        }
    }

    @Test("SocketStrategyTest: a reactor that restarts never serves an HTTP GET from another process, then ends, and run() ends by itself")
    func socketStrategy() async throws {
        let fixture = Fixture("sockstrategy")
        let port = try SocketClient.freePort()
        var group = fixture.group("socket-strategy-reactor", kind: .reactor, min: 1, name: "web", restart: .never)
        group.listeners = [try Listener("127.0.0.1:\(port)")]
        try fixture.pool.describeGroup(group)
        let events = EventRecorder(fixture.pool)
        let running = RunningPool(fixture.pool)
        #expect(await events.waitFor { $0.readyPIDs.count == 1 })
        // The client is a process of its own, as in the reference: bash's /dev/tcp.
        let reply = try await TestSupport.blocking {
            try? TestSupport.shell(
                "bash -c 'exec 3<>/dev/tcp/127.0.0.1/\(port); printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3; cat <&3'",
                directory: fixture.directory)
        }
        let output = try #require(reply)
        #expect(output.status == .exited(0), "\(output.stderr)")
        #expect(output.stdout.hasPrefix("HTTP/1.0 200 OK"), "\(output.stdout)")
        #expect(output.stdout.split(separator: "\r\n\r\n", maxSplits: 1).last == "socket-strategy-reactor", "\(output.stdout)")
        let result = await running.finish()
        #expect(throws: Never.self) { try result.get() }
        #expect(fixture.lines("served").count == 1)
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("steering: new connections reach only the sockets of the slots accepting, and all of them again when that changes")
    func steering() async throws {
        let port = try SocketClient.freePort()
        let group = WorkerGroup(entryPoint: "line-reactor", kind: .reactor, minWorkers: 3, name: "web", listeners: [try Listener("127.0.0.1:\(port)")])
        let pool = try PoolValidator.validate(name: "steer", stopTimeout: .seconds(1), groups: [group], entryPoints: nil)
        let sockets = try ListenerSockets.bindInitial(pool: pool)
        defer { sockets.closeAll() }
        let fds = try (1...3).map { try #require(sockets.descriptors(for: WorkerID($0)).first?.fd) }
        /// Connects `count` times, then counts what each of `sockets` accepted. A connection
        /// reaches its accept queue when the server side has processed the client's last ACK,
        /// which a loaded machine may do a little after `connect` returned: wait for all of them
        /// (failsafe 5 s).
        func spread(_ count: Int, _ sockets: [Int32]) -> [Int] {
            let clients = (0..<count).compactMap { _ in SocketClient.connectTCP(port: port) }
            defer { for client in clients { close(client) } }
            var accepted = [Int](repeating: 0, count: sockets.count)
            let deadline = ContinuousClock.now + .seconds(5)
            while accepted.reduce(0, +) < clients.count && ContinuousClock.now < deadline {
                for (index, fd) in sockets.enumerated() {
                    while (try? Posix.pollReadable(fd, timeoutMilliseconds: 0)) == true {
                        let connection = accept(fd, nil, nil)
                        guard connection >= 0 else { break }
                        close(connection)
                        accepted[index] += 1
                    }
                }
                usleep(1000)
            }
            return accepted
        }
        #expect(sockets.steer(accepting: [WorkerID(1), WorkerID(3)]).isEmpty)
        let steered = spread(90, fds)
        #expect(steered[1] == 0 && steered[0] > 0 && steered[2] > 0 && steered.reduce(0, +) == 90, "\(steered)")
        #expect(sockets.steer(accepting: [WorkerID(2)]).isEmpty)
        #expect(spread(30, fds) == [0, 30, 0])
        // Nobody accepting: every socket gets its share, as without steering.
        #expect(sockets.steer(accepting: []).isEmpty)
        let all = spread(90, fds)
        #expect(all.allSatisfy { $0 > 0 } && all.reduce(0, +) == 90, "\(all)")
        // A retired socket's place is taken by the last one; steering follows. (Slot 1's
        // descriptor number is closed now and may belong to another test: leave it alone.)
        sockets.retire(WorkerID(1))
        // The kernel detaches the socket when its last reference goes: a worker another test is
        // spawning in this process holds copies of every descriptor until its exec, and until
        // then connections steered by the new order would reach the retired socket.
        let detached = await TestSupport.eventually(timeout: .seconds(5)) { Self.listeningSockets(port: port) == 2 }
        #expect(detached, "\(Self.listeningSockets(port: port)) sockets still listen on the port")
        #expect(sockets.steer(accepting: [WorkerID(3)]).isEmpty)
        let after = spread(30, [fds[1], fds[2]])
        let listeners = after == [0, 30] ? "" : ((try? TestSupport.shell("ss -ltnpe 'sport = :\(port)'; ls -l /proc/self/fd | grep -c socket", directory: "/tmp"))?.stdout ?? "")
        #expect(after == [0, 30], "\(after); \(listeners)")
    }

    /// How many TCP sockets listen on `port` (IPv4), from /proc/net/tcp.
    static func listeningSockets(port: Int) -> Int {
        guard let table = try? Posix.readFile("/proc/net/tcp") else { return -1 }
        let hex = String(port, radix: 16, uppercase: true)
        let suffix = ":" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        return String(decoding: table, as: UTF8.self).split(separator: "\n").dropFirst().filter { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[1].hasSuffix(suffix) && fields[3] == "0A"
        }.count
    }

    @Test("a rolling restart stops at the first replacement that does not start and leaves the rest running")
    func rollingRestartStopsOnFailure() async throws {
        let fixture = Fixture("rollfail")
        let port = try SocketClient.freePort()
        var group = fixture.group("line-reactor-bad-deploy", kind: .reactor, min: 3, name: "web", startTimeout: .seconds(5))
        group.listeners = [try Listener("127.0.0.1:\(port)")]
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let before = Dictionary(uniqueKeysWithValues: events.readyPIDs.map { ($0.0, $0.1) })
            #expect(before.count == 3)
            var refusal: CommandError?
            do throws(CommandError) {
                try await fixture.pool.rollingRestart(.name("web"))
            } catch {
                refusal = error
            }
            #expect(refusal?.message.contains("stopped after 0 of 3") == true, "\(String(describing: refusal))")
            // Only the first worker was touched; the other two still run their first process.
            let snapshot = try #require(fixture.pool.snapshot())
            for id in before.keys.sorted(by: { $0.rawValue < $1.rawValue }).dropFirst() {
                let worker = try #require(snapshot.workers.first { $0.id == id })
                #expect(worker.pid == before[id] && worker.state == .ready, "worker \(id) untouched")
            }
        }
    }

    @Test("a rolling restart with room starts each replacement beside the old worker; a replacement that does not start is stopped and the old workers keep running")
    func rollingRestartBesideStopsOnFailure() async throws {
        let fixture = Fixture("rollbeside")
        let port = try SocketClient.freePort()
        var group = fixture.group("line-reactor-marked-deploy", kind: .reactor, min: 2, max: 3, name: "web", startTimeout: .seconds(5))
        group.listeners = [try Listener("127.0.0.1:\(port)")]
        try fixture.pool.describeGroup(group)
        try await fixture.withRunningPool { events in
            let before = Dictionary(uniqueKeysWithValues: events.readyPIDs.map { ($0.0, $0.1) })
            #expect(before.count == 2)
            TestSupport.write("\(fixture.directory)/bad-deploy", "")
            var refusal: CommandError?
            do throws(CommandError) {
                try await fixture.pool.rollingRestart(.name("web"))
            } catch {
                refusal = error
            }
            #expect(refusal?.message.contains("stopped after 0 of 2") == true && refusal?.message.contains("slot 3") == true, "\(String(describing: refusal))")
            let snapshot = try #require(fixture.pool.snapshot())
            for (id, pid) in before {
                let worker = try #require(snapshot.worker(id))
                #expect(worker.pid == pid && worker.state == .ready, "worker \(id) untouched")
            }
            #expect(snapshot.group(named: "web")?.desired == 2, "the spare is given back")
            let served = try await TestSupport.blocking { SocketClient.ask(port: port, times: 40) }
            #expect(served.failures == 0 && served.workers.count == 2, "\(served)")
        }
    }

    @Test("a killed reactor's socket stays open: connections queued on it wait for the replacement")
    func killedReactorKeepsSocket() async throws {
        let fixture = Fixture("reactorkill")
        let port = try SocketClient.freePort()
        try fixture.pool.describeGroup(reactorGroup(fixture, [try Listener("127.0.0.1:\(port)")]))
        try await fixture.withRunningPool { events in
            let victim = try #require(events.readyPIDs.first?.0)
            try await fixture.pool.killWorker(victim)
            // Straight away, while the slot has no process: 1/2 of these hash to its socket.
            let answers = try await TestSupport.blocking { SocketClient.ask(port: port, times: 100) }
            #expect(answers.failures == 0, "\(answers)")
            #expect(await events.waitFor { $0.readyPIDs.count == 3 })
        }
    }
}
