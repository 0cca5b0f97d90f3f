import Glibc
import Testing

@testable import PoolEngine

/// A datagram socket standing in for systemd's NOTIFY_SOCKET: these machines do not run
/// systemd as PID 1, so the test reads what the watcher sends, as systemd would.
final class NotifySocket: @unchecked Sendable {
    // @unchecked: the descriptor is only read from one thread at a time (the test's blocking helper).
    let path: String
    private let fd: Int32

    init(directory: String) throws {
        path = "\(directory)/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = try Posix.unixSocketAddress(path, call: "bind")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 { throw SystemCallError(call: "bind", errno: errno, context: path) }
    }

    deinit { close(fd) }

    /// The messages received until one contains `text` (or `timeout` passes), in order.
    func messages(until text: String, timeout: Duration = .seconds(15)) -> [String] {
        var received: [String] = []
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            guard (try? Posix.pollReadable(fd, timeoutMilliseconds: 100)) == true else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { continue }
            let message = String(decoding: buffer[0..<n], as: UTF8.self)
            received.append(message)
            if message.contains(text) { break }
        }
        return received
    }
}

@Suite("pooltop run under systemd Type=notify (sd_notify)", .serialized)
struct SystemdNotifyTests {
    @Test("READY once every group has its minimum ready, STATUS, RELOADING and READY again on a restart, the watchdog from the loop, STOPPING on stop; workers never see the socket")
    func notifyProtocol() async throws {
        let name = TestSupport.uniqueName("notify")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let notify = try NotifySocket(directory: directory)
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory,
            prefix: ["env", "NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=400000"])
        let first = try await TestSupport.blocking { notify.messages(until: "READY=1") }
        let ready = try #require(first.last)
        #expect(ready.contains("READY=1") && ready.contains("STATUS=3 of 3 workers ready"), "\(first)")
        #expect(await watcher.waitForLog("ready", count: 3))
        // The watchdog keeps coming from the watcher loop, every 200 ms.
        let beats = try await TestSupport.blocking { notify.messages(until: "never", timeout: .seconds(1)) }
        #expect(beats.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(beats)")
        // Workers do not inherit the socket: none of them could speak for the pool.
        for pid in TestSupport.taggedProcesses(name) where pid != watcher.pid {
            let environment = (try? Posix.readFile("/proc/\(pid)/environ")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(!environment.contains("NOTIFY_SOCKET") && !environment.contains("WATCHDOG_USEC"), "worker \(pid)")
        }
        watcher.signal(SIGUSR1)
        let restart = try await TestSupport.blocking { notify.messages(until: "READY=1") }
        #expect(restart.contains { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }, "\(restart)")
        #expect(restart.last?.contains("READY=1") == true, "\(restart)")
        watcher.signal(SIGTERM)
        let stop = try await TestSupport.blocking { notify.messages(until: "STOPPING=1") }
        #expect(stop.last == "STOPPING=1", "\(stop)")
        #expect(watcher.waitForExit() == .exited(0))
        await TestSupport.expectNoOrphans(name)
    }
}
