import Glibc
import Synchronization
import Testing

@testable import PoolEngine

/// A datagram socket standing in for systemd's NOTIFY_SOCKET: these machines do not run
/// systemd as PID 1, so the test reads what the watcher sends, as systemd would: at once, on a
/// thread of its own (a datagram socket queues only a few messages; the watcher never waits).
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32
    private let received = PoolEngine.Mutex<[String]>([])
    private let stopped = Atomic<Bool>(false)

    init(directory: String) throws {
        path = "\(directory)/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = try Posix.unixSocketAddress(path, call: "bind")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 { throw SystemCallError(call: "bind", errno: errno, context: path) }
        try DedicatedThread.start(name: "notify-reader") { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.load(ordering: .relaxed) {
                guard (try? Posix.pollReadable(fd, timeoutMilliseconds: 50)) == true else { continue }
                let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if n > 0 { received.withLock { $0.append(String(decoding: buffer[0..<n], as: UTF8.self)) } }
            }
            Glibc.close(fd)
        }
    }

    /// Every message so far, in order.
    var all: [String] { received.withLock { $0 } }

    /// Waits until a message after the first `after` contains `text`; the messages from `after` on.
    func waitFor(_ text: String, after: Int = 0) async -> [String] {
        _ = await TestSupport.eventually { self.all.dropFirst(after).contains { $0.contains(text) } }
        return Array(all.dropFirst(after))
    }

    func close() {
        stopped.store(true, ordering: .relaxed)
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
        defer { notify.close() }
        let first = await notify.waitFor("READY=1")
        let ready = try #require(first.first { $0.contains("READY=1") })
        #expect(ready.contains("STATUS=3 of 3 workers ready"), "\(first)")
        #expect(await watcher.waitForLog("ready", count: 3))
        // The watchdog keeps coming from the watcher loop, every 200 ms.
        let before = notify.all.filter { $0 == "WATCHDOG=1" }.count
        try await Task.sleep(for: .seconds(1))
        #expect(notify.all.filter { $0 == "WATCHDOG=1" }.count - before >= 3, "\(notify.all)")
        // Workers do not inherit the socket: none of them could speak for the pool.
        for pid in TestSupport.taggedProcesses(name) where pid != watcher.pid {
            let environment = (try? Posix.readFile("/proc/\(pid)/environ")).map { String(decoding: $0, as: UTF8.self) } ?? ""
            #expect(!environment.contains("NOTIFY_SOCKET") && !environment.contains("WATCHDOG_USEC"), "worker \(pid)")
        }
        let beforeRestart = notify.all.count
        watcher.signal(SIGUSR1)
        let restart = await notify.waitFor("READY=1", after: beforeRestart)
        let reloading = restart.firstIndex { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") }
        let readyAgain = restart.firstIndex { $0.contains("READY=1") }
        #expect(reloading != nil && readyAgain != nil && reloading! < readyAgain!, "\(restart)")
        let beforeStop = notify.all.count
        watcher.signal(SIGTERM)
        let stop = await notify.waitFor("STOPPING=1", after: beforeStop)
        #expect(stop.contains("STOPPING=1"), "\(stop)")
        #expect(watcher.waitForExit() == .exited(0))
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a stuck watcher stops sending WATCHDOG=1, and the kill systemd then sends (WatchdogSec) takes its workers with it")
    func watchdogExpires() async throws {
        let name = TestSupport.uniqueName("watchdog")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let notify = try NotifySocket(directory: directory)
        defer { notify.close() }
        let interval: Duration = .milliseconds(300)
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory,
            prefix: ["env", "NOTIFY_SOCKET=\(notify.path)", "WATCHDOG_USEC=300000"])
        _ = await notify.waitFor("READY=1")
        #expect(await watcher.waitForLog("ready", count: 3))
        let workers = TestSupport.taggedWorkers(name).filter { $0 != watcher.pid }
        #expect(workers.count == 3)
        // The loop stops (SIGSTOP stands for a loop stuck in a call): the pings stop with it.
        watcher.signal(SIGSTOP)
        try await Task.sleep(for: .milliseconds(200))
        let atStop = notify.all.filter { $0 == "WATCHDOG=1" }.count
        try await Task.sleep(for: interval * 3)
        #expect(notify.all.filter { $0 == "WATCHDOG=1" }.count == atStop, "no WATCHDOG=1 from a stopped loop: \(notify.all.suffix(5))")
        // systemd's side of WatchdogSec: the watchdog signal (SIGABRT, pending while stopped),
        // then SIGKILL once TimeoutAbortSec passes.
        watcher.signal(SIGABRT)
        try await Task.sleep(for: .milliseconds(200))
        watcher.signal(SIGKILL)
        #expect(watcher.waitForExit() == .signaled(SIGKILL))
        // The workers go with it (PR_SET_PDEATHSIG and their own watch of the watcher), so the
        // restarted unit starts with a clean slate.
        #expect(await TestSupport.eventually(timeout: .seconds(10)) { workers.allSatisfy { !TestSupport.isAlive($0) } })
        await TestSupport.expectNoOrphans(name, leavesRuntime: true)
        RuntimeDirectory.removeStale(pool: name)
    }
}
