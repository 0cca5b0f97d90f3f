import Glibc
import Testing

@testable import PoolEngine

/// A watcher whose descriptors run out keeps supervising and stays reachable.
@Suite("Descriptor exhaustion", .serialized)
struct DescriptorLimitTests {
    @Test("with too few descriptors for its workers, spawns fail with backoff and a reason; status and stop still work")
    func outOfDescriptors() async throws {
        let name = TestSupport.uniqueName("nofile")
        let directory = TestSupport.makeDirectory(name)
        let config = "\(directory)/pool.yaml"
        let yaml = "name: \(name)\ngroups:\n  - {name: jobs, kind: job, entryPoint: demo-job, min: 24, max: 24}\n"
        let fd = try Posix.openForAppending(config)
        _ = try Array(yaml.utf8).withUnsafeBytes { try Posix.write(fd, $0) }
        Posix.close(fd)
        // A hard limit of 48, so the watcher cannot raise it: 24 workers need about 70.
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", config], tag: name, directory: directory, prefix: ["prlimit", "--nofile=48:48"])
        #expect(await watcher.waitForLog("descriptors left"), "\(watcher.log)")
        #expect(await watcher.waitForLog("restarts in"), "the refused spawns back off")
        #expect(watcher.log.contains("are kept for the control socket"))

        let status = try TestSupport.pooltop(["status", name, "--json"], directory: directory)
        #expect(status.status == .exited(0), "\(status)")
        let running = try JSONValue.parse(status.stdout)["groups"]?.array?.first?["running"]?.integer ?? 0
        #expect(running > 0 && running < 24, "some workers run, not all: \(running) in \(status.stdout.prefix(400))")

        let stop = try TestSupport.pooltop(["stop", name], directory: directory)
        #expect(stop.status == .exited(0), "\(stop)")
        #expect(watcher.waitForExit() == .exited(0))
        await TestSupport.expectNoOrphans(name)
    }
}
