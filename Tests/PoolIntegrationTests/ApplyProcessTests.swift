import Glibc
import Testing

@testable import PoolEngine

/// `pooltop apply` end to end: a real `pooltop run`, real workers, a reactor rolled under load.
@Suite("pooltop apply on a running pool", .serialized)
struct ApplyProcessTests {
    func file(_ directory: String, _ name: String, _ text: String) -> String {
        let path = "\(directory)/\(name)"
        TestSupport.write(path, text)
        return path
    }

    func definitions(_ name: String, _ directory: String) throws -> [String: String] {
        let status = try TestSupport.pooltop(["status", name, "--json"], directory: directory)
        let groups = try JSONValue.parse(status.stdout)["groups"]?.array ?? []
        return Dictionary(uniqueKeysWithValues: groups.map { ($0["name"]?.string ?? "", $0["definition"]?.string ?? "") })
    }

    @Test("apply updates limits, rolls a reactor under load with no failed request, starts and stops groups; dry runs and refusals change nothing")
    func applyEndToEnd() async throws {
        let name = TestSupport.uniqueName("apply")
        let directory = TestSupport.makeDirectory(name)
        let web = try SocketClient.freePort()
        let extra = try SocketClient.freePort()
        let second = try SocketClient.freePort()
        func pool(jobsMin: Int, mode: String, tick: Bool, extraGroup: Bool, webKind: String = "reactor", secondPort: Bool = false) -> String {
            """
            name: \(name)
            stopTimeout: 5s
            groups:
              - name: jobs
                kind: job
                entryPoint: demo-job
                min: \(jobsMin)
                max: 4
              - name: web
                kind: \(webKind)
                entryPoint: http-hello
                min: 2
                max: 3
                env: {MODE: \(mode)}
                listen: ["127.0.0.1:\(web)"\(secondPort ? ", \"127.0.0.1:\(second)\"" : "")]
            \(tick ? "  - {name: tick, kind: service, entryPoint: ticker, min: 1}" : "")
            \(extraGroup ? "  - {name: extra, kind: reactor, entryPoint: http-hello, min: 1, listen: [\"127.0.0.1:\(extra)\"], after: [{group: web, condition: ready}]}" : "")
            """
        }
        let v1 = file(directory, "v1.yaml", pool(jobsMin: 2, mode: "one", tick: true, extraGroup: false))
        let v2 = file(directory, "v2.yaml", pool(jobsMin: 3, mode: "two", tick: false, extraGroup: true))
        let watcher = try ExternalWatcher(arguments: ["run", "--config", v1], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 5))
        func run(_ arguments: String...) throws -> CommandOutput { try TestSupport.pooltop(arguments, directory: directory) }

        let before = try definitions(name, directory)
        #expect(Set(before.keys) == ["jobs", "web", "tick"])
        #expect(before.values.allSatisfy { $0.count == 12 }, "\(before)")
        let tickPID = TestSupport.taggedWorkers(name).filter { $0 != watcher.pid }

        // A dry run prints the plan and changes nothing.
        let dry = try run("apply", name, v2, "--dry-run")
        #expect(dry.status == .exited(0), "\(dry)")
        #expect(dry.stdout.contains("jobs") && dry.stdout.contains("min 2 → 3"), "\(dry.stdout)")
        #expect(dry.stdout.contains("web") && dry.stdout.contains("roll") && dry.stdout.contains("env changed"), "\(dry.stdout)")
        #expect(dry.stdout.contains("extra") && dry.stdout.contains("start"), "\(dry.stdout)")
        #expect(dry.stdout.contains("tick") && dry.stdout.contains("stop"), "\(dry.stdout)")
        #expect(dry.stdout.contains("dry run: nothing was changed"))
        #expect(try definitions(name, directory) == before)
        #expect(TestSupport.taggedWorkers(name).count == tickPID.count + 1, "no worker started or stopped")

        // The real thing, under continuous load on the rolled reactor.
        let load = ContinuousLoad(port: web)
        #expect(await TestSupport.eventually { load.current.ok > 20 })
        let applied = try run("apply", name, v2, "--json")
        #expect(applied.status == .exited(0), "\(applied)")
        let answer = try JSONValue.parse(applied.stdout)
        #expect(answer["applied"]?.bool == true)
        let planned = Dictionary(
            uniqueKeysWithValues: (answer["plan"]?.array ?? []).map { ($0["group"]?.string ?? "", $0["definition"]?.string ?? "") })
        #expect(await watcher.waitForLog("rolling restart finished: 2 worker(s) replaced"), "\(watcher.log)")
        #expect(await watcher.waitForLog("worker 9 (extra) ready"), "\(watcher.log)")
        let result = try await load.stop()
        #expect(result.failures.isEmpty, "\(result)")
        #expect(result.ok > 40, "\(result)")

        let after = try definitions(name, directory)
        #expect(Set(after.keys) == ["jobs", "web", "extra"], "the removed group is gone once its worker left")
        #expect(after["jobs"] == planned["jobs"] && after["web"] == planned["web"] && after["extra"] == planned["extra"], "\(after) \(planned)")
        #expect(after["jobs"] != before["jobs"] && after["web"] != before["web"])
        #expect(watcher.log.contains("worker 8 (tick) exited"), "\(watcher.log)")
        let status = try JSONValue.parse(try run("status", name, "--json").stdout)
        let jobs = status["groups"]?.array?.first { $0["name"]?.string == "jobs" }
        #expect(jobs?["desired"]?.integer == 3 && jobs?["ready"]?.integer == 3, "\(String(describing: jobs))")
        #expect(HTTPClient.get(port: extra, "/")?.status == 200, "the new group serves its own listener")
        let job = try run("job", name, "jobs", "echo after apply")
        #expect(job.status == .exited(0) && job.stdout.contains("after apply"), "\(job)")

        // What cannot be applied live is refused with the file's line, and nothing changes.
        let v3 = file(directory, "v3.yaml", pool(jobsMin: 3, mode: "two", tick: false, extraGroup: true, webKind: "service"))
        let refused = try run("apply", name, v3)
        #expect(refused.status == .exited(1), "\(refused)")
        #expect(refused.stderr.contains("v3.yaml:10: groups[1].kind: group 'web' is a reactor group"), "\(refused.stderr)")
        #expect(try definitions(name, directory) == after)
        let invalid = file(directory, "bad.yaml", "name: \(name)\ngroups:\n  - name: jobs\n    kind: job\n    entryPoint: nope\n")
        let bad = try run("apply", name, invalid)
        #expect(bad.status == .exited(1))
        #expect(bad.stderr.contains("bad.yaml:5: groups[0].entryPoint: unknown entry point 'nope'"), "\(bad.stderr)")
        #expect(try definitions(name, directory) == after)

        // A listener added to a running group is bound for its replacements; removed, it is
        // released once the last worker that held it has left. No request to the kept one fails.
        let v4 = file(directory, "v4.yaml", pool(jobsMin: 3, mode: "two", tick: false, extraGroup: true, secondPort: true))
        let steady = ContinuousLoad(port: web)
        let added = try run("apply", name, v4)
        #expect(added.status == .exited(0) && added.stdout.contains("listen changed"), "\(added)")
        #expect(await watcher.waitForLog("rolling restart finished: 2 worker(s) replaced", count: 2), "\(watcher.log)")
        #expect(HTTPClient.get(port: second, "/")?.status == 200, "the added listener serves")
        let removed = try run("apply", name, v2)
        #expect(removed.status == .exited(0), "\(removed)")
        #expect(await watcher.waitForLog("rolling restart finished: 2 worker(s) replaced", count: 3), "\(watcher.log)")
        #expect(await TestSupport.eventually { SocketClient.connectTCP(port: second).map { close($0); return false } ?? true }, "the removed listener is closed")
        let steadyResult = try await steady.stop()
        #expect(steadyResult.failures.isEmpty && steadyResult.ok > 20, "\(steadyResult)")

        await watcher.stopExpectingCleanExit()
        #expect(access("/dev/shm/pooltop-\(Posix.userID)-\(name)", F_OK) != 0, "the segment is removed")
    }
}
