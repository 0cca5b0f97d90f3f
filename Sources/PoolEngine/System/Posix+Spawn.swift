#if canImport(Glibc)
import Glibc
#endif
import CPoolShims

extension Posix {
    /// Spawns `path` with `posix_spawn` (never `fork` of the multithreaded watcher).
    ///
    /// `inherited[i]` becomes descriptor `3 + i` in the child; every other descriptor above 2
    /// is closed, signal dispositions and the mask are reset, and the child gets a process
    /// group of its own so that a terminal's Ctrl-C reaches only the watcher.
    static func spawn(
        path: String,
        arguments: [String],
        environment: [String],
        inherited: [FD],
        newProcessGroup: Bool = true,
        standardOutput: FD? = nil,
        standardError: FD? = nil
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        try check("posix_spawn_file_actions_init") { posix_spawn_file_actions_init(&actions) == 0 ? 0 : -1 }
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        // dup2 actions run in order, so a source that is also an earlier target would be
        // overwritten (glibc applies them one by one): first move every low source above the targets.
        let highestTarget = FD(2 + inherited.count)
        var temporaries: [FD] = []
        defer { temporaries.forEach(close) }
        var sources: [FD] = []
        var outputSources: [(source: FD, target: FD)] = []
        for (descriptor, target) in [(standardOutput, FD(1)), (standardError, FD(2))] {
            guard let descriptor else { continue }
            // The same shuffle rule: a low output descriptor could be overwritten by the dup2s below.
            if descriptor <= highestTarget {
                let moved = try duplicateAbove(descriptor, minimum: highestTarget + 1)
                temporaries.append(moved)
                outputSources.append((moved, target))
            } else {
                outputSources.append((descriptor, target))
            }
        }
        for fd in inherited {
            if fd <= highestTarget {
                let moved = try duplicateAbove(fd, minimum: highestTarget + 1)
                temporaries.append(moved)
                sources.append(moved)
            } else {
                sources.append(fd)
            }
        }
        for (source, target) in outputSources {
            let rc = posix_spawn_file_actions_adddup2(&actions, source, target)
            if rc != 0 { throw SystemCallError(call: "posix_spawn_file_actions_adddup2", errno: rc) }
        }
        for (index, fd) in sources.enumerated() {
            let rc = posix_spawn_file_actions_adddup2(&actions, fd, FD(3 + index))
            if rc != 0 { throw SystemCallError(call: "posix_spawn_file_actions_adddup2", errno: rc) }
        }
        let rc = pt_spawn_addclosefrom(&actions, highestTarget + 1)
        if rc != 0 { throw SystemCallError(call: "posix_spawn_file_actions_addclosefrom_np", errno: rc) }

        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var pid: pid_t = 0
        let argv = ([path] + arguments).map { strdup($0) }
        let envp = environment.map { strdup($0) }
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        let spawnResult = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envBuffer in
                posix_spawn(
                    &pid, path, &actions, &attributes,
                    UnsafeMutablePointer(mutating: argvBuffer.baseAddress!),
                    UnsafeMutablePointer(mutating: envBuffer.baseAddress!))
            }
        }
        // posix_spawn returns the error number instead of setting errno.
        if spawnResult != 0 { throw SystemCallError(call: "posix_spawn", errno: spawnResult, context: path) }
        return pid
    }
}
