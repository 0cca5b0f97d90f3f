import Glibc
import Testing

@testable import PoolEngine

/// What another local user can plant where a pool creates its files: refused with a clear
/// message, and never written through (`docs/reliability.md`, the threat model).
@Suite("Planted names: another user's file or link is refused, never written through", .serialized)
struct PlantedFilesTests {
    /// Runs `command` as `nobody` (uid 65534), as a hostile local user would.
    func asNobody(_ command: String, in directory: String) throws -> CommandOutput {
        try TestSupport.shell("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '\(command)'", directory: directory)
    }

    @Test("a shared-memory name taken by nobody, as a file or as a link, stops the start with the owner named; the link's target is untouched")
    func plantedSegment() async throws {
        for kind in ["file", "link"] {
            let fixture = WorkerPoolTests.Fixture("planted\(kind)")
            try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "waiters"))
            let name = SharedLayout.segmentName(pool: fixture.name, uid: Posix.userID)
            let victim = "\(fixture.directory)/victim"
            _ = try TestSupport.shell("printf precious > '\(victim)' && chmod 666 '\(victim)'", directory: fixture.directory)
            let plant = kind == "file" ? "touch /dev/shm\(name)" : "ln -s \(victim) /dev/shm\(name)"
            let planted = try asNobody(plant, in: fixture.directory)
            #expect(planted.status == .exited(0), "\(planted)")
            defer { _ = try? asNobody("rm -f /dev/shm\(name)", in: fixture.directory) }

            await #expect {
                try await fixture.pool.run()
            } throws: { error in
                let text = "\(error)"
                return text.contains("owned by uid 65534") && text.contains(kind == "file" ? "a file" : "a symbolic link")
                    && text.contains("left untouched")
            }
            #expect(Posix.sharedMemoryEntry(name: name)?.owner == 65534, "nobody's entry is still there, not replaced")
            #expect(String(decoding: try Posix.readFile(victim), as: UTF8.self) == "precious", "the link's target was not written")
            #expect(access(RuntimeDirectory.path(pool: fixture.name), F_OK) != 0, "nothing was left behind")
            // nobody's planted segment stays, by design.
            await TestSupport.expectNoOrphans(fixture.name, leavesRuntime: true)
        }
    }

    @Test("a PID file path that is a symbolic link is refused, and its target is not written")
    func plantedPIDFile() async throws {
        let fixture0 = WorkerPoolTests.Fixture("plantedpid")
        let victim = "\(fixture0.directory)/victim"
        let link = "\(fixture0.directory)/pool.pid"
        _ = try TestSupport.shell("printf precious > '\(victim)' && ln -s '\(victim)' '\(link)'", directory: fixture0.directory)
        let fixture = WorkerPoolTests.Fixture("plantedpid", pidFile: link)
        try fixture.pool.describeGroup(fixture.group("wait", min: 1, name: "waiters"))
        await #expect { try await fixture.pool.run() } throws: { error in
            "\(error)".contains("cannot open the PID file \(link)") && "\(error)".contains("Too many levels of symbolic links")
        }
        #expect(String(decoding: try Posix.readFile(victim), as: UTF8.self) == "precious")
        await TestSupport.expectNoOrphans(fixture.name)
    }
}
