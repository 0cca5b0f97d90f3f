import Foundation
import ArgumentParser
import Glibc
import PoolConsole
import PoolEngine

/// `pooltop scale NAME GROUP N`.
struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale", abstract: "Scale a group of a running pool to N workers (within its min...max).")

    @Argument(help: "The pool's name.") var name: String
    @Argument(help: "The group's name (or id).") var group: String
    @Argument(help: "The number of workers.") var workers: Int

    func validate() throws {
        if workers < 0 { throw ValidationError("N must be a whole number ≥ 0 (got \(workers))") }
    }

    func run() throws {
        let target: JSONValue = Int(group).map { .number(Double($0)) } ?? .string(group)
        try ControlSession.perform(name, ["command": .string("scale"), "group": target, "workers": .number(Double(workers))])
        print("group \(group) of pool \(name): scaling to \(workers)")
    }
}

/// `pooltop restart NAME [GROUP | WORKER_ID] [--soft | --hard | --rolling]`.
struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Restart a running pool, one of its groups, or one worker.",
        discussion: """
            The whole pool: --soft (the default) replaces each worker as it finishes; --hard stops every worker, then starts them all.
            A group or a worker: --soft asks each worker to finish and replaces it; --hard kills it (SIGKILL) and replaces it at once.
            A group with --rolling: one worker at a time, each replacement ready before the next worker is asked to finish; stops at the first replacement that does not start.
            """)

    @Argument(help: "The pool's name.") var name: String
    @Argument(help: "A group name, or a worker id; the whole pool when left out.") var target: String?
    @Flag(help: "How to restart.") var mode: Mode = .soft

    enum Mode: String, EnumerableFlag {
        case soft, hard, rolling
    }

    func validate() throws {
        if mode == .rolling && (target == nil || Int(target!) != nil) {
            throw ValidationError("--rolling restarts a group: give its name, as in `pooltop restart \(name) http --rolling`")
        }
    }

    func run() throws {
        var request: [String: JSONValue] = ["command": .string("restart"), "mode": .string(mode.rawValue)]
        var what = "pool \(name)"
        if let target {
            if let id = Int(target) {
                request["worker"] = .number(Double(id))
                what = "worker \(id) of pool \(name)"
            } else {
                request["group"] = .string(target)
                what = "group \(target) of pool \(name)"
            }
        }
        // A roll takes as long as its replacements take to get ready.
        let response = try ControlSession.perform(name, request, timeout: mode == .rolling ? nil : ControlSession.answerTimeout)
        if mode == .rolling {
            print("\(what): rolling restart done, \(response["replaced"]?.integer ?? 0) worker(s) replaced")
        } else {
            print("\(what): \(mode.rawValue) restart requested")
        }
    }
}

/// `pooltop stop NAME [--worker ID]`.
struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop a running pool gracefully, or one of its workers.")

    @Argument(help: "The pool's name.") var name: String
    @Option(name: .long, help: "Stop only this worker; its slot stays stopped until restarted or scaled up.")
    var worker: Int?

    func run() throws {
        var request: [String: JSONValue] = ["command": .string("stop")]
        if let worker { request["worker"] = .number(Double(worker)) }
        try ControlSession.perform(name, request)
        print(worker.map { "worker \($0) of pool \(name): stopping" } ?? "pool \(name): stopping")
    }
}

/// `pooltop logs NAME [-f]`.
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a running pool's recent events and worker log lines (each worker's last 1,000 lines, across its restarts); -f keeps following.")

    @Argument(help: "The pool's name.") var name: String
    @Flag(name: .shortAndLong, help: "Keep printing new lines until the pool stops or Ctrl-C.") var follow = false
    @Flag(name: .long, help: "Print each record as its JSON line.") var json = false
    @Option(name: .long, help: "Only this worker's lines (its id).") var worker: Int?
    @Option(name: .long, help: "Only this group's lines.") var group: String?
    @Option(name: .long, help: "Only lines matching this regular expression (on the printed line).") var grep: String?
    @Option(name: .long, help: "Only lines from the last DURATION (30s, 5m, 1h).") var since: String?

    /// What a line must be to be printed: the options, checked once.
    struct LineFilter {
        var worker: Int?
        var group: String?
        var pattern: Regex<AnyRegexOutput>?
        var earliest: Double?

        func accepts(_ record: JSONValue, rendered: String) -> Bool {
            if let worker, record["worker"]?.integer != worker { return false }
            if let group, record["group"]?.string != group { return false }
            if let earliest, (record["at"]?.number ?? 0) < earliest { return false }
            if let pattern, (try? pattern.firstMatch(in: rendered)) == nil { return false }
            return true
        }
    }

    func validate() throws {
        if let grep, (try? Regex(grep)) == nil { throw ValidationError("--grep: '\(grep)' is not a regular expression") }
        if let since, DurationParser.parse(since) == nil {
            throw ValidationError("--since: '\(since)' is not a duration (for example 30s, 5m, 1h)")
        }
        if let worker, worker < 1 { throw ValidationError("--worker must be a worker id ≥ 1 (got \(worker))") }
    }

    func run() throws {
        let filter = LineFilter(
            worker: worker, group: group, pattern: try grep.map { try Regex($0) },
            earliest: since.flatMap(DurationParser.parse).map { Date().timeIntervalSince1970 - $0.seconds })
        let client = try ControlSession.connect(name)
        do {
            let acknowledgement = try client.request(["command": .string("events")])
            guard acknowledgement["ok"]?.bool == true else {
                printError("\(CLIContext.shared.commandName): pool '\(name)' refused: \(acknowledgement["error"]?.string ?? "")")
                throw ExitCode(1)
            }
            while let line = try client.readLine() {
                switch line["type"]?.string {
                case "live":
                    if !follow { return }
                case "end":
                    return
                default:
                    let rendered = Self.render(line)
                    guard filter.accepts(line, rendered: rendered) else { continue }
                    print(json ? line.serialized : rendered)
                    // Followed output is read as it comes (a pipe, a file): do not hold lines back.
                    if follow { fflush(nil) }
                }
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        }
    }

    static func render(_ record: JSONValue) -> String {
        let time = record["at"]?.number.map(Formatting.clock) ?? "--:--:--"
        return "\(time) \(PoolEventRecord(line: record)?.text ?? "\(record)")"
    }
}

