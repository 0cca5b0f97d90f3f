import Glibc
import PoolDemo
import PoolEngine

/// Spawn to ready of a program worker (`command:`): a small C program that sends READY=1 on
/// NOTIFY_SOCKET, hosted by a pool, beside a Swift worker and the bare spawn of the same C
/// program to its READY=1 datagram, all in the same run (issue 13).
enum CommandBenchmarks {
    static let source = """
        #include <signal.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/socket.h>
        #include <sys/un.h>
        #include <unistd.h>
        int main(void) {
            const char *path = getenv("NOTIFY_SOCKET");
            if (!path) return 1;
            int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
            struct sockaddr_un address = {0};
            address.sun_family = AF_UNIX;
            strncpy(address.sun_path, path, sizeof address.sun_path - 1);
            sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&address, sizeof address);
            pause();
            return 0;
        }
        """

    static func run(runs: Int) async {
        let directory = "/tmp/pooltop-bench-\(getpid())"
        mkdir(directory, 0o700)
        defer {
            unlink("\(directory)/notify.c")
            unlink("\(directory)/notify")
            unlink("\(directory)/floor.sock")
            rmdir(directory)
        }
        let program = "\(directory)/notify"
        let file = fopen("\(directory)/notify.c", "w")
        fputs(source, file)
        fclose(file)
        guard system("cc -O2 -o '\(program)' '\(directory)/notify.c' 2>/dev/null || gcc -O2 -o '\(program)' '\(directory)/notify.c'") == 0 else {
            print("# command_spawn: no C compiler (scripts/ensure-deps bench installs gcc)")
            return
        }
        var command: [Double] = []
        var swift: [Double] = []
        var floor: [Double] = []
        for run in 0..<runs {
            floor.append(bareSpawn(program, socket: "\(directory)/floor.sock"))
            if let time = await poolReady(name: "bench-cmd-\(getpid())-\(run)", program: program) { command.append(time) }
            if let time = await poolReady(name: "bench-swift-\(getpid())-\(run)", program: nil) { swift.append(time) }
        }
        Figure(
            name: "command_spawn_to_ready_1", samples: command, floor: floor,
            note: "run() to a C program worker's READY=1 (through the exec trampoline); floor: posix_spawn of the same program to its READY=1 datagram"
        ).print()
        Figure(
            name: "swift_spawn_to_ready_1_beside_command", samples: swift, floor: floor,
            note: "run() to a Swift worker ready, in the same runs; floor: as above"
        ).print()
        await killToReplacement(program: program, kills: max(runs, 11), floor: floor)
    }

    /// SIGKILL of one of 4 program workers to its replacement's READY=1 (the watcher's own
    /// ready event), killing the slots in turn; floor: the bare spawn to READY=1 measured above.
    static func killToReplacement(program: String, kills: Int, floor: [Double]) async {
        var group = WorkerGroup(entryPoint: "", kind: .service, minWorkers: 4, name: "c", restart: .always(backoff: noBackoffDelay))
        group.program = ExternalProgram([program], readiness: .notify)
        let pool = makePool(name: "bench-cmd-kill-\(getpid())", group)
        let events = TimedEvents(pool)
        let task = Task { try await pool.run() }
        let samples = await events.waitForReady(4) ? await Benchmarks.killInTurn(events, slots: 4, kills: kills) : []
        pool.stop()
        _ = try? await task.value
        Figure(
            name: "command_sigkill_to_replacement_ready", samples: samples, floor: floor,
            note: "SIGKILL of one of 4 C program workers to its replacement's READY=1 through the trampoline; floor: posix_spawn of the same program to its READY=1"
        ).print()
    }

    /// posix_spawn of the program with NOTIFY_SOCKET until its READY=1 arrives.
    static func bareSpawn(_ program: String, socket path: String) -> Double {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        defer {
            close(fd)
            unlink(path)
        }
        let start = nowMilliseconds()
        var pid: pid_t = 0
        let argv = [strdup(program), nil]
        let envp = [strdup("NOTIFY_SOCKET=\(path)"), nil]
        posix_spawn(&pid, program, nil, nil, argv, envp)
        _ = waitReadable(fd)
        let elapsed = nowMilliseconds() - start
        argv.forEach { free($0) }
        envp.forEach { free($0) }
        kill(pid, SIGKILL)
        reap(pid)
        return elapsed
    }

    /// A pool of one worker, the C program or a Swift job worker: run() to its ready event.
    static func poolReady(name: String, program: String?) async -> Double? {
        let pool = WorkerPool(
            name: name, entryPoints: DemoPool.entryPoints,
            configuration: WorkerPool.Configuration(stopTimeout: .seconds(5), handlesSignals: false), logger: quietLogger)
        var group = WorkerGroup(entryPoint: program == nil ? "demo-job" : "", kind: program == nil ? .job : .service, minWorkers: 1, name: "one")
        if let program { group.program = ExternalProgram([program], readiness: .notify) }
        // Safe: the group is valid by construction and describeGroup only fails after run().
        try! pool.describeGroup(group)
        let events = TimedEvents(pool)
        let start = nowMilliseconds()
        let task = Task { try await pool.run() }
        let ready = await events.waitForReady(1)
        pool.stop()
        _ = try? await task.value
        return ready ? events.ready[0].0 - start : nil
    }
}
