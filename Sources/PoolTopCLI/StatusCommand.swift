import ArgumentParser
import FoundationEssentials
import PoolConsole
import PoolEngine

#if PostgresQueue
import PoolQueue
#endif

/// `pooltop status NAME [--json]`.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a running pool's groups and workers.")

    @Argument(help: "The pool's name.")
    var name: String

    @Flag(name: .long, help: "Print the status document as JSON (see docs/control-protocol.md).")
    var json = false

    func run() throws {
        let (response, answer) = try ControlSession.performText(name, ["command": .string("status")])
        guard let status = response["status"] else {
            printError("\(CLIContext.shared.commandName): pool '\(name)' sent no status")
            throw ExitCode(1)
        }
        if json {
            // The watcher's own text, whose integers are exact (a JSONValue's are Doubles).
            let text = PoolSnapshot.statusText(ofAnswer: answer).map(String.init) ?? status.serialized
            #if PostgresQueue
            // The queue groups' state beside the pool's, as the text form prints it.
            let queues = QueueEndpoint.published(pool: name)
            if !queues.isEmpty {
                print(text.dropLast() + #","queues":"# + JSONValue.array(queues.map(Self.json)).serialized + "}")
                return
            }
            #endif
            print(text)
            return
        }
        let snapshot: PoolSnapshot
        do {
            snapshot = try PoolSnapshot.fromStatusAnswer(answer)
        } catch {
            printError("\(CLIContext.shared.commandName): the status of pool '\(name)' could not be read (\(error)); its text (\(answer.utf8.count) bytes): \(answer)")
            throw ExitCode(1)
        }
        print(Self.render(snapshot))
        #if PostgresQueue
        // What the pool's queue groups say of their database, from the file each keeps current.
        let queues = QueueEndpoint.published(pool: name)
        if !queues.isEmpty { print("\n" + queues.map(\.summary).joined(separator: "\n")) }
        #endif
    }

    #if PostgresQueue
    /// A queue group's entry of `status --json`: where it works (no password) and its connection.
    static func json(_ endpoint: QueueEndpoint) -> JSONValue {
        var object: [String: JSONValue] = [
            "group": .string(endpoint.group), "database": .string("\(endpoint.address)"), "schema": .string(endpoint.schema),
            "queues": .array(endpoint.queues.map(JSONValue.string)), "connected": .bool(endpoint.connected),
            "claimed": .number(Double(endpoint.running)), "updatedAt": .number(endpoint.updatedAt),
        ]
        if let since = endpoint.outageSince { object["outageSince"] = .number(since) }
        if let reason = endpoint.outageReason { object["outageReason"] = .string(reason) }
        return .object(object)
    }
    #endif

    static func render(_ snapshot: PoolSnapshot) -> String {
        let pool = snapshot.pool
        var lines = [
            "pool \(pool.name)  pid \(pool.pid)  up \(Formatting.duration(pool.uptimeSeconds))  \(pool.state)  restarts: hard \(pool.restarts.hard), soft \(pool.restarts.soft)",
            "",
        ]
        // A column for groups that wait for others (`after:`), only when one does.
        let waits = snapshot.groups.contains { $0.waitingFor != nil }
        // DEFINITION: the hash `pooltop apply` prints for each group, to tell whether a change took.
        var groups = [["GROUP", "KIND", "MIN", "DESIRED", "MAX", "RUNNING", "READY", "DEFINITION"] + (waits ? ["WAITING FOR"] : [])]
        for group in snapshot.groups {
            groups.append(
                [
                    group.name, group.kind.rawValue, "\(group.min)", "\(group.desired)", "\(group.max)", "\(group.running)",
                    "\(group.ready)", group.definition ?? "-",
                ]
                    + (waits ? [group.waitingFor ?? "-"] : []))
        }
        lines.append(table(groups))
        lines.append("")
        var workers = [["ID", "GROUP", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT", "JOBS", "CONNS", "RSS", "CPU"]]
        for worker in snapshot.workers {
            let uptime = worker.state.hasProcess ? worker.startedAt.map { Formatting.duration(snapshot.takenAt - $0) } ?? "-" : "-"
            var lastExit = "-"
            if let exit = worker.lastExit {
                let status = exit.code.map { "code \($0)" } ?? exit.signal.map { "signal \($0)" } ?? exit.status
                lastExit = "\(exit.reason.rawValue) (\(status))"
            }
            var state = worker.state.rawValue
            if worker.state == .backoff, let until = worker.backoffUntil {
                state += " \(Formatting.tenths(max(0, until - snapshot.takenAt)))s"
            }
            let a = worker.activity
            workers.append([
                "\(worker.id)", worker.group, worker.pid == 0 ? "-" : "\(worker.pid)", state, uptime, "\(worker.restarts)",
                lastExit, "\(a.jobsProcessed)/\(a.jobsErrors)/\(a.jobsInFlight)", "\(a.connectionsActive)",
                worker.rssBytes == 0 ? "-" : Formatting.bytes(worker.rssBytes), "\(Formatting.tenths(worker.cpuSeconds))s",
            ])
        }
        lines.append(table(workers))
        return lines.joined(separator: "\n")
    }
}

/// `pooltop list`.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the pools running for this user: name, pid, uptime, workers.")

    func run() throws {
        var rows = [["NAME", "PID", "UPTIME", "WORKERS (ready/running/slots)"]]
        for name in RuntimeDirectory.poolNames() where RuntimeDirectory.isRunning(pool: name) {
            guard let snapshot = try? PoolSnapshot.read(pool: name) else { continue }
            let ready = snapshot.workers.filter { $0.state == .ready }.count
            let running = snapshot.workers.filter { $0.state.hasProcess }.count
            rows.append([name, "\(snapshot.pool.pid)", Formatting.duration(snapshot.pool.uptimeSeconds), "\(ready)/\(running)/\(snapshot.workers.count)"])
        }
        if rows.count == 1 {
            print("no pool is running (runtime directory \(RuntimeDirectory.base))")
        } else {
            print(table(rows))
        }
    }
}
