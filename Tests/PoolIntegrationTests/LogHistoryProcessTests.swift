import Glibc
import Testing

@testable import PoolEngine

/// The log history with real processes: each worker's lines survive a chatty neighbour and its
/// own restart, `logs` and consoles (hosted and attached, under tmux) get all of it, and the log
/// file rotates.
@Suite("Log history, search and log files with real processes", .serialized)
struct LogHistoryProcessTests {
    func pool(_ tag: String) -> (name: String, directory: String, config: String) {
        let name = TestSupport.uniqueName(tag)
        let directory = TestSupport.makeDirectory(name)
        TestSupport.write("\(directory)/pool.yaml", """
            name: \(name)
            logHistory: 50
            logFile: pool.log
            logMaxSize: 16KiB
            logKeep: 1
            groups:
              - {name: quiet, kind: job, entryPoint: demo-job, min: 1}
              - {name: chatty, kind: job, entryPoint: demo-job, min: 1}
            """)
        return (name, directory, "\(directory)/pool.yaml")
    }

    @Test("a quiet worker's lines outlive a chatty neighbour and its own restart; logs and an attached console search and filter them; the log file rotates")
    func historyAttached() async throws {
        let (name, directory, config) = pool("history")
        let watcher = try ExternalWatcher(arguments: ["run", "--config", config], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 2), "\(watcher.log)")
        let pooltop = TestSupport.pooltopExecutable
        func shell(_ command: String) async throws -> CommandOutput { try await TestSupport.shellOffPool(command, directory: directory) }
        #expect(try await shell("'\(pooltop)' job '\(name)' quiet 'log 3'").status == .exited(0))
        #expect(try await shell("'\(pooltop)' job '\(name)' chatty 'log 2000'").status == .exited(0))
        #expect(try await shell("'\(pooltop)' restart '\(name)' 1").status == .exited(0))
        #expect(await watcher.waitForLog("ready", count: 3), "\(watcher.log)")
        // Each worker's last 50; the quiet one's first life, its exit and its new start among them.
        let quiet = try await shell("'\(pooltop)' logs '\(name)' --worker 1")
        for text in ["log line 1 of 3 from worker 1", "log line 3 of 3", "exited (restart", "starting, pid"] {
            #expect(quiet.stdout.contains(text), "\(text): \(quiet.stdout)")
        }
        let chatty = try await shell("'\(pooltop)' logs '\(name)' --worker 2 --grep 'log line'")
        let lines = chatty.stdout.split(separator: "\n")
        // At least its last 50 (more while the whole stream's recent lines still hold them).
        #expect(lines.count >= 50 && lines.last?.hasSuffix("log line 2000 of 2000 from worker 2") == true, "\(lines.count) \(lines.last ?? "")")

        // An attached console is given the same history: search it, filter it, scope it.
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("attach \(name)", tag: "\(name)-attached")
        #expect(await tmux.waitFor("[attached]"), "\(tmux.screen())")
        try tmux.keys("Tab Tab")
        try tmux.keys("/")
        try tmux.keys("'line 2 of 3' Enter")
        #expect(await tmux.waitFor("(1 found)"), "\(tmux.screen())")
        #expect(await tmux.waitFor("match 1 of 1 from the newest"), "\(tmux.screen())")
        #expect(tmux.screen().contains("log line 2 of 3 from worker 1"), "the match is on screen: \(tmux.screen())")
        try tmux.keys("'\\' 'level:info worker:1 of 3' Enter")
        #expect(await tmux.waitFor("filter: level:info worker:1 of 3  (3 of"), "\(tmux.screen())")
        try tmux.keys("q")
        await TestSupport.expectNoOrphans("\(name)-attached")

        await watcher.stopExpectingCleanExit()
        // The log file: rotated once, whole lines, the newest chatty line in the current one or the last rotated.
        let files = (try Posix.listDirectory(directory)).filter { $0.hasPrefix("pool.log") }.sorted()
        #expect(files == ["pool.log", "pool.log.1"], "\(files)")
        let text = TestSupport.lines(directory, "pool.log.1") + TestSupport.lines(directory, "pool.log")
        #expect(text.contains { $0.contains(" info worker 2 (chatty) info: log line 2000 of 2000") }, "\(text.suffix(5))")
        #expect(text.contains { $0.contains("notice pool stopping: ") }, "the pool's own events too")
        #expect(text.allSatisfy { $0.hasPrefix("20") && $0.contains("Z ") }, "each line starts with its UTC time")
    }

    @Test("the hosted console searches and scopes its events pane")
    func hosted() async throws {
        let (name, directory, config) = pool("hosted-search")
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("--config '\(config)'", tag: name)
        #expect(await tmux.waitFor("ready"), "\(tmux.screen())")
        let job = try await TestSupport.shellOffPool("'\(TestSupport.pooltopExecutable)' job '\(name)' quiet 'log 5'", directory: directory)
        #expect(job.status == .exited(0), "\(job)")
        try tmux.keys("Tab Tab")
        try tmux.keys("/")
        try tmux.keys("'line 4 of 5' Enter")
        #expect(await tmux.waitFor("(1 found)"), "\(tmux.screen())")
        // Scoped to the selected group (chatty, once selected): the quiet worker's line is gone.
        try tmux.keys("Tab Down Tab Tab L")
        #expect(await tmux.waitFor("(selected group)"), "\(tmux.screen())")
        #expect(await tmux.waitFor("(0 found)"), "\(tmux.screen())")
        try tmux.keys("q y")
        await TestSupport.expectNoOrphans(name)
    }
}
