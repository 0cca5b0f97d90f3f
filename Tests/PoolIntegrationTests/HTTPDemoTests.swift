import Glibc
import Synchronization
import Testing

@testable import PoolEngine

/// The demo's HTTP reactor (the seed's HttpReactor and HttpServerWithJobs) served by real
/// worker processes, talking to the demo job workers, asked by a raw HTTP/1.1 client.
@Suite("HTTP demo reactor with real processes", .serialized)
struct HTTPDemoTests {
    func start(_ fixture: WorkerPoolTests.Fixture, port: Int) throws {
        try fixture.pool.describeGroup(fixture.group("demo-job", kind: .job, min: 1, name: "jobs"))
        var http = fixture.group("http-hello", kind: .reactor, min: 2, max: 4, name: "http")
        http.jobGroups = [.name("jobs")]
        http.listeners = [try Listener("127.0.0.1:\(port)")]
        try fixture.pool.describeGroup(http)
    }

    @Test("/ greets from a worker, /pid is that worker's pid, /job runs a job and maps its errors to statuses")
    func routes() async throws {
        let fixture = WorkerPoolTests.Fixture("http")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
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
        let fixture = WorkerPoolTests.Fixture("httpcount")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
            let kept = try #require(await TestSupport.blocking { HTTPClient.getKeepAlive(port: port, "/", times: 5) })
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
}

extension HTTPDemoTests {
    @Test("a soft-restarted reactor finishes the request it is serving before it exits, and its slot serves again")
    func restartDrainsInFlight() async throws {
        let fixture = WorkerPoolTests.Fixture("httpdrain")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
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
}

extension HTTPDemoTests {
    @Test("under continuous load, a soft restart of the group and scaling up fail no request")
    func restartAndScaleUnderLoad() async throws {
        let fixture = WorkerPoolTests.Fixture("httpload")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
            let load = ContinuousLoad(port: port)
            try await Task.sleep(for: .milliseconds(150))
            try await fixture.pool.restartGroup(.name("http"), hard: false)
            #expect(await events.waitFor { $0.exits.filter { $0.reason == .restart }.count == 2 && $0.readyPIDs.count == 5 })
            try await fixture.pool.scale(.name("http"), to: 4)
            #expect(await events.waitFor { $0.readyPIDs.count == 7 })
            try await Task.sleep(for: .milliseconds(150))
            let result = try await load.stop()
            #expect(result.failures.isEmpty, "\(result)")
            #expect(result.ok > 100, "the load ran throughout: \(result)")
        }
    }
}

extension HTTPDemoTests {
    @Test("SIGKILL of a reactor under continuous load: the other keeps serving, the replacement serves, at most the request in flight fails")
    func killUnderLoad() async throws {
        let fixture = WorkerPoolTests.Fixture("httpkill")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
            let load = ContinuousLoad(port: port)
            try await Task.sleep(for: .milliseconds(150))
            let victim = try #require(events.readyPIDs.first { $0.0.rawValue >= 2 }?.0)
            try await fixture.pool.killWorker(victim)
            #expect(await events.waitFor { $0.readyPIDs.count == 4 }, "the replacement became ready")
            try await Task.sleep(for: .milliseconds(300))
            let result = try await load.stop()
            // A sequential client has one request in flight: only that one may be lost with the process.
            #expect(result.failures.count <= 1, "\(result)")
            #expect(result.byWorker.count == 2 && result.byWorker.values.allSatisfy { $0 > 20 }, "\(result)")
            let after = try await TestSupport.blocking { SocketClient.askHTTP(port: port, times: 60) }
            #expect(after.failed == 0 && after.workers.count == 2, "both slots serve after the replacement: \(after)")
        }
    }
}

extension HTTPDemoTests {
    @Test("a rolling restart under continuous load replaces every reactor, one at a time, and fails no request")
    func rollingRestartUnderLoad() async throws {
        let fixture = WorkerPoolTests.Fixture("httproll")
        let port = try SocketClient.freePort()
        try start(fixture, port: port)
        try await fixture.withRunningPool { events in
            let before = Set(events.readyPIDs.filter { $0.0.rawValue >= 2 }.map(\.1))
            let load = ContinuousLoad(port: port)
            try await Task.sleep(for: .milliseconds(100))
            let replaced = try await fixture.pool.rollingRestart(.name("http"))
            try await Task.sleep(for: .milliseconds(100))
            let result = try await load.stop()
            #expect(replaced == 2)
            #expect(result.failures.isEmpty && result.ok > 50, "\(result)")
            let snapshot = try #require(fixture.pool.snapshot())
            let after = snapshot.workers.filter { $0.group == "http" && $0.state == .ready }
            #expect(after.count == 2 && after.allSatisfy { !before.contains($0.pid) }, "every reactor is a new process")
            // One at a time: the second worker was asked to stop only after the first's replacement was ready.
            let order = events.all.compactMap { event -> String? in
                switch event {
                case .workerReady(let id, _, _, _) where id.rawValue >= 2: return "ready \(id)"
                case .workerExited(let record) where record.reason == .restart: return "exit \(record.id)"
                default: return nil
                }
            }
            #expect(order.suffix(4) == ["exit 2", "ready 2", "exit 3", "ready 3"], "\(order)")
        }
    }
}

/// A sequential client asking `/` again and again on a thread of its own until stopped,
/// counting answers by the worker that gave them and every failure with its cause.
final class ContinuousLoad: Sendable {
    struct Result: Sendable, CustomStringConvertible {
        var byWorker: [Int: Int] = [:]
        var failures: [String] = []
        var ok: Int { byWorker.values.reduce(0, +) }
        var description: String { "\(ok) answered \(byWorker.sorted { $0.key < $1.key }), \(failures.count) failed \(failures)" }
    }

    /// A class of its own so the client thread can share it before `self` exists.
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stopping = Flag()
    private let task: Task<Result, any Error>

    init(port: Int) {
        let stopping = stopping
        task = Task {
            try await TestSupport.blocking {
                var result = Result()
                while !stopping.raised.load(ordering: .relaxed) {
                    var failure = ""
                    if let reply = HTTPClient.getKeepAlive(port: port, "/", times: 1, failure: &failure)?.first, reply.status == 200 {
                        result.byWorker[reply.worker, default: 0] += 1
                    } else {
                        result.failures.append("request \(result.ok + result.failures.count): \(failure)")
                    }
                }
                return result
            }
        }
    }

    func stop() async throws -> Result {
        stopping.raised.store(true, ordering: .relaxed)
        return try await task.value
    }
}

/// A raw HTTP/1.1 client: enough to read status, the x-worker header and a content-length body.
enum HTTPClient {
    struct Reply: Sendable {
        var status: Int
        var worker: Int
        var body: String
    }

    /// One request on a connection of its own, made on a thread of its own (see `TestSupport.blocking`).
    static func fetch(port: Int, _ path: String) async throws -> Reply? {
        try await TestSupport.blocking { get(port: port, path) }
    }

    static func get(port: Int, _ path: String) -> Reply? {
        getKeepAlive(port: port, path, times: 1)?.first
    }

    /// Sends `times` requests one after another on one connection.
    static func getKeepAlive(port: Int, _ path: String, times: Int) -> [Reply]? {
        var failure = ""
        return getKeepAlive(port: port, path, times: times, failure: &failure)
    }

    /// As above; `failure` says which step failed and with what errno.
    static func getKeepAlive(port: Int, _ path: String, times: Int, failure: inout String) -> [Reply]? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            failure = "connect: errno \(errno)"
            return nil
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var replies: [Reply] = []
        for _ in 0..<times {
            let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
            guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
                failure = "send: errno \(errno)"
                return nil
            }
            guard let reply = readReply(fd, &pending) else {
                failure = "receive after \(pending.count) bytes: errno \(errno)"
                return nil
            }
            replies.append(reply)
        }
        return replies
    }

    private static func readReply(_ fd: Int32, _ pending: inout [UInt8]) -> Reply? {
        let separator = Array("\r\n\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let end = pending.firstRange(of: separator) {
                let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self).lowercased()
                let lines = head.split(separator: "\r\n")
                let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
                func header(_ name: String) -> Int {
                    lines.first { $0.hasPrefix("\(name):") }.flatMap { Int($0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)) } ?? 0
                }
                let length = header("content-length")
                if pending.count >= end.upperBound + length {
                    let body = String(decoding: pending[end.upperBound..<end.upperBound + length], as: UTF8.self)
                    pending.removeFirst(end.upperBound + length)
                    return Reply(status: status, worker: header("x-worker"), body: body)
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            pending += buffer[0..<n]
        }
    }
}
