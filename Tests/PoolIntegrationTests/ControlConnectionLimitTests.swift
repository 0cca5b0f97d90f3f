import Glibc
import Testing

@testable import PoolEngine

/// The control socket under a flood of local connections: capped, and an operator still gets through.
@Suite("Control socket connection limit", .serialized)
struct ControlConnectionLimitTests {
    /// Whether the server has closed `fd` (end of stream or reset), waiting at most `milliseconds`.
    func isClosed(_ fd: Int32, milliseconds: Int32 = 0) -> Bool {
        guard (try? Posix.pollReadable(fd, timeoutMilliseconds: milliseconds)) == true else { return false }
        var byte: UInt8 = 0
        let n = withUnsafeMutableBytes(of: &byte) { Glibc.recv(fd, $0.baseAddress, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK)) }
        return n == 0 || (n < 0 && errno != EAGAIN)
    }

    /// Reads one line from a blocking socket (at most 10 s), nil at the end of the stream.
    static func readLine(_ fd: Int32) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while (try? Posix.pollReadable(fd, timeoutMilliseconds: 10_000)) == true {
            let n = withUnsafeMutableBytes(of: &byte) { Glibc.recv(fd, $0.baseAddress, 1, 0) }
            guard n == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }

    @Test("a flood of idle connections keeps at most 256 open, closing the oldest idle ones; status still answers")
    func idleFlood() async throws {
        let fixture = WorkerPoolTests.Fixture("ctlflood")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "waiters"))
        try await fixture.withRunningPool { _ in
            let path = RuntimeDirectory.controlSocket(pool: fixture.name)
            // From a thread of its own, as a flood from another process would come: the server
            // accepts on Swift concurrency's threads, which this loop must not take.
            let flood = try await TestSupport.blocking { () -> [Int32] in
                var flood: [Int32] = []
                for _ in 0..<600 {
                    // Non-blocking: a connect the watcher's backlog cannot take yet fails at once and is
                    // tried again, so a watcher that stopped accepting fails the test instead of hanging it.
                    for _ in 0..<10_000 {
                        if let fd = try? Posix.connectUnixSocket(path, nonBlocking: true) {
                            flood.append(fd)
                            break
                        }
                        usleep(1_000)
                    }
                }
                return flood
            }
            defer { for fd in flood { Posix.close(fd) } }
            #expect(flood.count == 600, "every connect went through (\(flood.count))")
            // The watcher evicts the oldest idle connections as new ones arrive.
            #expect(await TestSupport.eventually { flood.filter { !isClosed($0) }.count <= ControlConnections.limit })
            let stillOpen = flood.filter { !isClosed($0) }
            #expect(stillOpen.count <= ControlConnections.limit)
            #expect(isClosed(flood[0]), "the oldest went first")

            // The operator's request is answered during the flood.
            let pool = fixture.name
            let ok = try await TestSupport.blocking {
                (try? ControlClient(pool: pool).request(["command": .string("status")]))?["ok"]?.bool == true
            }
            #expect(ok)
        }
        await TestSupport.expectNoOrphans(fixture.name)
    }

    @Test("when every connection is busy streaming events, a new one is refused with code busy, and served again once one ends")
    func allBusy() async throws {
        let fixture = WorkerPoolTests.Fixture("ctlbusy")
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "waiters"))
        try await fixture.withRunningPool { _ in
            let path = RuntimeDirectory.controlSocket(pool: fixture.name)
            let pool = fixture.name
            // Each connection streams events: busy, so none may be closed to make room.
            let streams = try await TestSupport.blocking { () -> [Int32] in
                var streams: [Int32] = []
                for _ in 0..<ControlConnections.limit {
                    guard let fd = try? Posix.connectUnixSocket(path) else { break }
                    streams.append(fd)
                    try? Posix.sendAll(fd, Array(#"{"command":"events","replay":false}"#.utf8) + [UInt8(ascii: "\n")])
                    // The acknowledgement says the stream (and so the busy mark) is in place.
                    _ = Self.readLine(fd)
                }
                return streams
            }
            #expect(streams.count == ControlConnections.limit)
            let refusal = try await TestSupport.blocking { () -> String? in
                guard let fd = try? Posix.connectUnixSocket(path) else { return nil }
                defer { Posix.close(fd) }
                return Self.readLine(fd)
            }
            let refused = try refusal.map { try JSONValue.parse($0) }
            #expect(refused?["ok"]?.bool == false)
            #expect(refused?["code"]?.string == "busy")
            #expect(refused?["error"]?.string?.contains("256 connections open") == true)

            Posix.close(streams[0])
            let served = try await TestSupport.blocking { () -> Bool in
                // The closed stream's place frees as soon as the watcher sees it close.
                for _ in 0..<200 {
                    if (try? ControlClient(pool: pool).request(["command": .string("ping")]))?["ok"]?.bool == true { return true }
                    usleep(10_000)
                }
                return false
            }
            #expect(served)
            for fd in streams.dropFirst() { Posix.close(fd) }
        }
        await TestSupport.expectNoOrphans(fixture.name)
    }
}
