/// The codes of responses that refuse a request or a connection itself; a refused command
/// answers with its ``CommandError/Code`` instead (`docs/control-protocol.md`, "Responses").
enum ControlErrorCode: String, CaseIterable, Sendable {
    /// Not a JSON object on one line, a missing or wrong-typed field, or a field the command does not take.
    case badRequest = "bad-request"
    /// `command` is not one the protocol has.
    case unknownCommand = "unknown-command"
    /// The line is longer than ``ControlServer/maximumLineLength``.
    case oversized
    /// The peer is not the pool's owner.
    case permissionDenied = "permission-denied"
    /// Every one of the socket's connections is busy.
    case busy

    /// The response object: `ok` false, this code, and `message` as the error.
    func response(_ message: String) -> [String: JSONValue] { refusal(code: rawValue, message) }
}

/// Every refusal's response object: `ok` false, its code, the sentence saying why, and the
/// request's `id` when it had one.
func refusal(code: String, _ message: String, id: JSONValue? = nil) -> [String: JSONValue] {
    var response: [String: JSONValue] = ["ok": .bool(false), "code": .string(code), "error": .string(message)]
    if let id { response["id"] = id }
    return response
}

/// One request line of the control protocol, checked field by field.
///
/// `package`, with its parser: the fuzz harness (Tests/Fuzz) parses request lines.
package struct ControlRequest: Sendable {
    enum RestartTarget: Equatable, Sendable {
        case pool
        case group(GroupReference)
        case worker(WorkerID)
    }

    enum Command: Equatable, Sendable {
        case ping
        case status
        case scale(GroupReference, to: Int)
        case restart(RestartTarget, hard: Bool)
        case rollingRestart(GroupReference)
        case stop(WorkerID?)
        case kill(WorkerID)
        case events(replay: Bool)
        case job(JobCommand)
        /// `pooltop apply`: a configuration's text, the file it came from (relative paths and
        /// error lines), and whether only to plan.
        case apply(configuration: String, file: String?, dryRun: Bool)
    }

    struct JobCommand: Equatable, Sendable {
        var group: GroupReference
        var payload: String
        var priority: Int
        var weight: Int
        var timeout: Duration?
        var count: Int
        /// Tries again after a worker died with the job running (at least once, for idempotent work).
        var retries: Int = 0
    }

    /// The most jobs one `job` request may submit.
    static let maximumJobCount = 10_000

    /// A request that cannot be carried out, with the response that says why.
    package struct Failure: Error {
        package var response: [String: JSONValue]

        init(_ code: ControlErrorCode, _ message: String, id: JSONValue?) {
            response = refusal(code: code.rawValue, message, id: id)
        }
    }

    static let commands = ["ping", "status", "scale", "restart", "stop", "kill", "events", "job", "apply"]
    /// Fields each command accepts, besides `id` and `command`.
    static let fields: [String: [String]] = [
        "ping": [], "status": [], "scale": ["group", "workers"], "restart": ["group", "worker", "mode"],
        "stop": ["worker"], "kill": ["worker"], "events": ["replay"],
        "job": ["group", "payload", "priority", "weight", "timeout", "count", "retries"],
        "apply": ["configuration", "file", "dryRun"],
    ]

    var id: JSONValue?
    var command: Command

    package init(parsing text: String) throws(Failure) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(text)
        } catch {
            throw Failure(.badRequest, "malformed request: not a JSON object on one line", id: nil)
        }
        guard let object = value.object else {
            throw Failure(.badRequest, "malformed request: expected a JSON object, got \(value)", id: nil)
        }
        id = object["id"]
        guard let name = object["command"]?.string else {
            throw Failure(.badRequest, "field 'command' is missing or not a string; commands: \(Self.commands.joined(separator: ", "))", id: id)
        }
        guard let allowed = Self.fields[name] else {
            throw Failure(.unknownCommand, "unknown command '\(name)'; commands: \(Self.commands.joined(separator: ", "))", id: id)
        }
        for key in object.keys where key != "id" && key != "command" && !allowed.contains(key) {
            let accepted = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
            throw Failure(.badRequest, "unknown field '\(key)' for '\(name)'; it accepts: \(accepted)", id: id)
        }
        switch name {
        case "ping": command = .ping
        case "status": command = .status
        case "scale":
            let group = try Self.group(object["group"], id: id, required: true)!
            guard let workers = object["workers"]?.integer, workers >= 0 else {
                throw Failure(.badRequest, "field 'workers' must be a whole number ≥ 0", id: id)
            }
            command = .scale(group, to: workers)
        case "restart":
            var hard = false
            var rolling = false
            if let mode = object["mode"] {
                guard let text = mode.string, ["soft", "hard", "rolling"].contains(text) else {
                    throw Failure(.badRequest, "field 'mode' must be \"soft\", \"hard\" or \"rolling\"", id: id)
                }
                hard = text == "hard"
                rolling = text == "rolling"
            }
            if object["group"] != nil && object["worker"] != nil {
                throw Failure(.badRequest, "give 'group' or 'worker', not both", id: id)
            }
            if rolling {
                guard let group = try Self.group(object["group"], id: id, required: false) else {
                    throw Failure(.badRequest, "mode \"rolling\" needs a 'group'", id: id)
                }
                command = .rollingRestart(group)
            } else if let group = try Self.group(object["group"], id: id, required: false) {
                command = .restart(.group(group), hard: hard)
            } else if let worker = try Self.worker(object["worker"], id: id) {
                command = .restart(.worker(worker), hard: hard)
            } else {
                command = .restart(.pool, hard: hard)
            }
        case "stop":
            command = .stop(try Self.worker(object["worker"], id: id))
        case "kill":
            guard let worker = try Self.worker(object["worker"], id: id) else {
                throw Failure(.badRequest, "field 'worker' is missing (the id of the worker to kill)", id: id)
            }
            command = .kill(worker)
        case "job":
            let group = try Self.group(object["group"], id: id, required: true)!
            guard let payload = object["payload"]?.string else {
                throw Failure(.badRequest, "field 'payload' is missing or not a string", id: id)
            }
            let requestID = id
            func integer(_ key: String, _ fallback: Int, range: ClosedRange<Int>) throws(Failure) -> Int {
                try Self.integer(object[key], key, fallback, range: range, id: requestID)
            }
            var timeout: Duration?
            if let value = object["timeout"] {
                guard let seconds = value.number, seconds > 0, seconds <= 86_400 else {
                    throw Failure(.badRequest, "field 'timeout' must be a number of seconds in (0, 86400]", id: id)
                }
                timeout = .saturating(seconds: seconds)
            }
            command = .job(
                JobCommand(
                    group: group, payload: payload, priority: try integer("priority", 0, range: -1_000_000...1_000_000),
                    weight: try integer("weight", 1, range: 0...1_000_000), timeout: timeout,
                    count: try integer("count", 1, range: 1...Self.maximumJobCount),
                    retries: try integer("retries", 0, range: 0...JobClient.maximumRetries)))
        case "apply":
            guard let configuration = object["configuration"]?.string else {
                throw Failure(.badRequest, "field 'configuration' is missing or not a string (the text of a pool.yaml)", id: id)
            }
            var file: String?
            if let value = object["file"] {
                guard let path = value.string, path.hasPrefix("/") else {
                    throw Failure(.badRequest, "field 'file' must be an absolute path (relative paths in the file are resolved against it)", id: id)
                }
                file = path
            }
            var dryRun = false
            if let value = object["dryRun"] {
                guard let flag = value.bool else { throw Failure(.badRequest, "field 'dryRun' must be true or false", id: id) }
                dryRun = flag
            }
            command = .apply(configuration: configuration, file: file, dryRun: dryRun)
        default:
            var replay = true
            if let value = object["replay"] {
                guard let flag = value.bool else { throw Failure(.badRequest, "field 'replay' must be true or false", id: id) }
                replay = flag
            }
            command = .events(replay: replay)
        }
    }

    private static func integer(
        _ value: JSONValue?, _ key: String, _ fallback: Int, range: ClosedRange<Int>, id: JSONValue?
    ) throws(Failure) -> Int {
        guard let value else { return fallback }
        guard let number = value.integer, range.contains(number) else {
            throw Failure(.badRequest, "field '\(key)' must be a whole number in \(range.lowerBound)...\(range.upperBound)", id: id)
        }
        return number
    }

    private static func group(_ value: JSONValue?, id: JSONValue?, required: Bool) throws(Failure) -> GroupReference? {
        guard let value else {
            if required { throw Failure(.badRequest, "field 'group' is missing (a group name or id)", id: id) }
            return nil
        }
        if let name = value.string { return .name(name) }
        if let number = value.integer { return .id(GroupID(number)) }
        throw Failure(.badRequest, "field 'group' must be a group name or id", id: id)
    }

    private static func worker(_ value: JSONValue?, id: JSONValue?) throws(Failure) -> WorkerID? {
        guard let value else { return nil }
        guard let number = value.integer, number >= 1 else {
            throw Failure(.badRequest, "field 'worker' must be a worker id (a whole number ≥ 1)", id: id)
        }
        return WorkerID(number)
    }
}

/// Carries out control commands on the pool; every outcome is one response line.
enum ControlCommands {
    /// What precedes the snapshot in a `status` answer (``statusAnswer(_:status:)``).
    static let statusKey = #","status":"#

    /// A `status` answer: the response's fields, then the snapshot's own JSON spliced in last,
    /// not rebuilt as a JSONValue tree (``PoolSnapshot/statusText(ofAnswer:)`` reads it back).
    static func statusAnswer(_ response: [String: JSONValue], status: String) -> String {
        JSONValue.object(response).serialized.dropLast() + statusKey + status + "}"
    }

    static func perform(_ command: ControlRequest.Command, on pool: WorkerPool, id: JSONValue?) async -> String {
        var response: [String: JSONValue] = ["ok": .bool(true)]
        if let id { response["id"] = id }
        do throws(CommandError) {
            switch command {
            case .ping:
                response["pong"] = .bool(true)
                response["pid"] = .number(Double(Posix.processID))
            case .status:
                guard let snapshot = pool.snapshot() else { throw CommandError(.notRunning, "the pool is not running") }
                guard let status = try? JSONValue.encodeLine(snapshot) else {
                    throw CommandError(.failed, "the status could not be encoded")
                }
                return statusAnswer(response, status: status)
            case .scale(let group, let count):
                try await pool.scale(group, to: count)
            case .restart(.pool, let hard):
                pool.restart(hard ? .hard : .soft)
            case .restart(.group(let group), let hard):
                try await pool.restartGroup(group, hard: hard)
            case .restart(.worker(let workerID), let hard):
                try await pool.restartWorker(workerID, hard: hard)
            case .rollingRestart(let group):
                let replaced = try await pool.rollingRestart(group)
                response["replaced"] = .number(Double(replaced))
            case .stop(nil):
                pool.stop()
            case .stop(let workerID?):
                try await pool.stopWorker(workerID)
            case .kill(let workerID):
                try await pool.killWorker(workerID)
            case .events:
                throw CommandError(.misuse, "events is a stream; it is handled by the connection")
            case .job(let job):
                response["jobs"] = .array(await runJobs(job, on: pool))
            case .apply(let configuration, let file, let dryRun):
                let change = try await pool.apply(yaml: configuration, file: file, dryRun: dryRun)
                response["plan"] = (try? JSONValue.from(change.groups)) ?? .array([])
                response["summary"] = .string(PoolChange.summary(change.groups))
                guard change.refusals.isEmpty else {
                    var refused = refusal(
                        code: CommandError.Code.cannotApply.rawValue,
                        "the change cannot be applied while the pool runs; nothing was changed: "
                            + change.refusals.map(\.description).joined(separator: "; "),
                        id: id)
                    refused["plan"] = response["plan"]
                    refused["refusals"] = .array(
                        change.refusals.map { refusal in
                            var entry: [String: JSONValue] = ["path": .string(refusal.path), "message": .string(refusal.message)]
                            if let line = refusal.line { entry["line"] = .number(Double(line)) }
                            return .object(entry)
                        })
                    return JSONValue.object(refused).serialized
                }
                response["applied"] = .bool(!dryRun && !change.isEmpty)
            }
        } catch {
            response = refusal(code: error.code.rawValue, error.message, id: id)
        }
        return JSONValue.object(response).serialized
    }
}

extension ControlCommands {
    /// Runs `count` copies of a job at once; each reports its result or error, who ran it and why.
    static func runJobs(_ job: ControlRequest.JobCommand, on pool: WorkerPool) async -> [JSONValue] {
        let payload = Array(job.payload.utf8)
        return await withTaskGroup(of: (Int, JSONValue).self) { group in
            for index in 0..<job.count {
                group.addTask {
                    var entry: [String: JSONValue] = ["index": .number(Double(index))]
                    do throws(JobError) {
                        let result = try await pool.submitJob(
                            payload, to: job.group, priority: job.priority, weight: job.weight, timeout: job.timeout,
                            retries: job.retries)
                        entry["ok"] = .bool(true)
                        entry["result"] = .string(result.text)
                        entry["worker"] = .number(Double(result.worker.rawValue))
                        entry["pickedBecause"] = .string(result.pickedBecause)
                        entry["queueWaitSeconds"] = .number(result.queueWait.seconds)
                        entry["runSeconds"] = .number(result.runTime.seconds)
                        entry["attempts"] = .number(Double(result.attempts))
                    } catch {
                        entry["ok"] = .bool(false)
                        entry["code"] = .string(error.code.rawValue)
                        entry["error"] = .string(error.message)
                        entry["attempts"] = .number(Double(error.attempts))
                        if let worker = error.worker { entry["worker"] = .number(Double(worker.rawValue)) }
                    }
                    return (index, .object(entry))
                }
            }
            var results = [JSONValue](repeating: .null, count: job.count)
            for await (index, entry) in group { results[index] = entry }
            return results
        }
    }
}
