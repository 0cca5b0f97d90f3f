import Glibc
import Testing

@testable import PoolEngine

/// Socket activation of the pool, with Debian's `systemd-socket-activate` standing in for
/// systemd (these machines do not run it as PID 1): it listens, and on the first connection
/// execs `pooltop run` with the socket (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID).
@Suite("Socket activation of the whole pool", .serialized)
struct SocketActivationTests {
    @Test("the watcher serves the socket systemd passed, matched by name: a connection made before it ran is answered")
    func servesPassedSocket() async throws {
        guard access("/usr/bin/systemd-socket-activate", X_OK) == 0 else {
            Issue.record("systemd-socket-activate is missing: scripts/ensure-deps test installs Debian's systemd package")
            return
        }
        let name = TestSupport.uniqueName("sockact")
        let directory = TestSupport.makeDirectory(name)
        let port = try SocketClient.freePort()
        let config = "\(directory)/pool.yaml"
        TestSupport.write(config, """
            name: \(name)
            stopTimeout: 5s
            groups:
              - name: web
                kind: reactor
                entryPoint: http-hello
                min: 2
                listen: [{address: '127.0.0.1:\(port)', name: web}]
            """)
        // systemd-socket-activate passes on only the variables it is told to.
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory,
            prefix: [
                "systemd-socket-activate", "-l", "127.0.0.1:\(port)", "--fdname=web", "-E", "PT_TEST_TAG=\(name)",
                "-E", "POOLTOP_TEST_DIR=\(directory)",
            ])
        // Nothing serves yet but systemd-socket-activate's socket: this connection waits in its
        // queue, starts the pool, and is answered by a worker.
        var reply: HTTPClient.Reply?
        for _ in 0..<100 where reply == nil {
            reply = try await HTTPClient.fetch(port: port, "/pid")
            if reply == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(reply?.status == 200, "\(watcher.log)")
        #expect(await watcher.waitForLog("serving the socket systemd passed for listener web"), "\(watcher.log)")
        #expect(await watcher.waitForLog("ready", count: 2))
        // Both workers accept on the one passed socket, one per connection (exclusively: no
        // worker wakes for a connection another took, which a debug NIO build would trap on).
        let replies = try await TestSupport.blocking { (0..<60).compactMap { _ in HTTPClient.get(port: port, "/pid") } }
        #expect(replies.count == 60 && replies.allSatisfy { $0.status == 200 })
        #expect(Set(replies.map(\.body)).count == 2, "both workers served")
        #expect(!watcher.log.contains("Assertion failed") && !watcher.log.contains("crashed"), "\(watcher.log)")
        await watcher.stopExpectingCleanExit()
    }
}
