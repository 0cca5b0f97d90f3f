/// Starts a program worker (`command:`): its environment, its pipes, its sd_notify socket, and
/// the spawn through the watcher's own executable as an exec trampoline (see
/// `Sources/CPoolShims/trampoline.c`), which sets `LISTEN_PID` to the program's own pid.
///
/// What can be checked before spawning is (the program found in `PATH`, the working directory,
/// the environment file, the credentials), so that a mistake is a spawn failure with its reason
/// at once; what only the child can find out comes back on the exec-status pipe.
struct ProgramLauncher {
    /// A started program and the descriptors the watcher now owns.
    struct Launched {
        var pid: Int32
        var pidfd: Int32
        /// Read end of the exec-status pipe.
        var execStatus: Int32
        var standardOutput: Int32
        var standardError: Int32
        var notify: Int32
        var notifyPath: String
        /// The environment the program got, for its probe commands.
        var environment: [String]

        var descriptors: [Int32] { [execStatus, standardOutput, standardError, notify] }
    }

    /// Why a program was not started.
    struct LaunchError: Error, CustomStringConvertible {
        var description: String
    }

    /// The watcher's own executable: the trampoline.
    let trampoline: String
    let baseEnvironment: [String]
    let runtimeDirectory: String?
    let poolName: String

    /// The environment a program gets: the watcher's, then its `envFile`, then its group's
    /// `environment` (later ones win), then what pooltop sets.
    func environment(
        for program: ExternalProgram, group: GroupDescription, id: WorkerID, listenerNames: [String], notifyPath: String
    ) throws -> [String] {
        var values: [(String, String)] = baseEnvironment.map { entry in
            let equals = entry.firstIndex(of: "=") ?? entry.endIndex
            return (String(entry[..<equals]), equals == entry.endIndex ? "" : String(entry[entry.index(after: equals)...]))
        }
        if let file = program.environmentFile {
            do {
                values += try EnvironmentFile.read(file).map { ($0.key, $0.value) }
            } catch {
                throw LaunchError(description: "cannot read its envFile: \(error)")
            }
        }
        values += group.runner.environment.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        values += InheritedListener.variables(names: listenerNames)
        values.append(("NOTIFY_SOCKET", notifyPath))
        if let watchdog = program.watchdog { values.append(("WATCHDOG_USEC", "\(watchdog.nanoseconds / 1000)")) }
        values += [("POOLTOP_POOL", poolName), ("POOLTOP_WORKER_ID", "\(id)")]
        var seen: [String: Int] = [:]
        var result: [String] = []
        for (key, value) in values {
            if let index = seen[key] {
                result[index] = "\(key)=\(value)"
            } else {
                seen[key] = result.count
                result.append("\(key)=\(value)")
            }
        }
        return result
    }

    /// The `PATH` a program is looked up in: its own environment's, as execvp(3) would.
    static func searchPath(in environment: [String]) -> String {
        environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? "/usr/local/bin:/usr/bin:/bin"
    }

    /// Spawns the program for slot `id`; on failure nothing is left open.
    func launch(
        _ program: ExternalProgram, group: GroupDescription, id: WorkerID, generation: Int, sockets: [ListenerSockets.Handed]
    ) throws -> Launched {
        guard let runtimeDirectory else { throw LaunchError(description: "the pool has no runtime directory for its notify socket") }
        let notifyPath = "\(runtimeDirectory)/notify-\(id).sock"
        let environment = try environment(
            for: program, group: group, id: id, listenerNames: sockets.map(\.name), notifyPath: notifyPath)
        if let directory = program.workingDirectory, !Posix.isEnterableDirectory(directory) {
            throw LaunchError(description: "its workingDirectory \(directory) is not a directory the watcher can enter")
        }
        if case .failure(let error) = Posix.findExecutable(
            program.arguments[0], searchPath: Self.searchPath(in: environment), directory: program.workingDirectory)
        {
            throw LaunchError(description: "cannot run \(program.arguments[0]): \(error)")
        }
        var trampolineVariables = ["POOLTOP_EXEC_PARENT=\(Posix.processID)"]
        if let directory = program.workingDirectory { trampolineVariables.append("POOLTOP_EXEC_DIR=\(directory)") }
        if program.user != nil || program.group != nil {
            guard Posix.effectiveUserID == 0 else {
                throw LaunchError(description: "'user' and 'group' need the watcher to run as root (it runs as uid \(Posix.effectiveUserID))")
            }
            let credentials: Posix.Credentials
            do {
                credentials = try Posix.credentials(user: program.user, group: program.group)
            } catch {
                throw LaunchError(description: "\(error)")
            }
            if let uid = credentials.uid { trampolineVariables.append("POOLTOP_EXEC_UID=\(uid)") }
            if let gid = credentials.gid { trampolineVariables.append("POOLTOP_EXEC_GID=\(gid)") }
            if let name = credentials.userName { trampolineVariables.append("POOLTOP_EXEC_USER=\(name)") }
        }

        var opened: [Int32] = []
        var keep = false
        defer { if !keep { opened.forEach(Posix.close) } }
        let status = try Posix.outputPipe()
        let output = try Posix.outputPipe()
        let errors = try Posix.outputPipe()
        opened += [status.read, status.write, output.read, output.write, errors.read, errors.write]
        let notify = try Posix.bindNotifySocket(path: notifyPath)
        opened.append(notify)
        // The status pipe follows the listeners: LISTEN_FDS counts from 3 and must not include it.
        trampolineVariables.append("POOLTOP_EXEC_STATUS_FD=\(3 + sockets.count)")
        let pid = try Posix.spawn(
            path: trampoline, arguments: ["--pooltop-exec"] + program.arguments, environment: environment + trampolineVariables,
            inherited: sockets.map(\.fd) + [status.write], standardOutput: output.write, standardError: errors.write)
        for fd in [status.write, output.write, errors.write] { Posix.close(fd) }
        opened = [status.read, output.read, errors.read, notify]
        let pidfd: Int32
        do {
            pidfd = try Posix.pidfdOpen(pid)
        } catch {
            // Our unreaped child: its pid cannot have been reused.
            Posix.signalProcessGroup(pid, PosixSignal.kill)
            Posix.killAndReap(pid)
            Posix.removeFile(notifyPath)
            throw error
        }
        keep = true
        return Launched(
            pid: pid, pidfd: pidfd, execStatus: status.read, standardOutput: output.read, standardError: errors.read, notify: notify,
            notifyPath: notifyPath, environment: environment)
    }
}
