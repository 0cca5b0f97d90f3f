import ArgumentParser
import PoolConsole
import PoolEngine

/// `pooltop job NAME GROUP PAYLOAD [--priority P] [--weight W] [--timeout S] [--count N] [--retries R] [--json]`.
struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Submit test jobs to a group of a running pool and show how each ended.",
        discussion: """
            For each job: the result or the error, which worker ran it and why it was picked, the queue wait, the run time and the tries it took.
            A job that never started on its worker (the worker died with it queued) always goes to another worker; one that had started ends worker-lost unless --retries allows more tries (for idempotent work only).
            The demo job workers understand: echo TEXT, sleep MS, cpu MS, fail MESSAGE, crash, exit, terminate.
            Exit status 1 when any job failed.
            """)

    @Argument(help: "The pool's name.") var name: String
    @Argument(help: "The job group's name (or id).") var group: String
    @Argument(help: "The job's payload, as text.") var payload: String
    @Option(help: "Higher runs first (default 0).") var priority: Int = 0
    @Option(help: "Counts against the executor's weight limit (default 1).") var weight: Int = 1
    @Option(help: "Seconds before the job fails with timed-out (default 30).") var timeout: Double?
    @Option(help: "How many copies to submit at once (default 1).") var count: Int = 1
    @Option(help: "Tries again, up to this many times, after a worker died with the job running (default 0: at most once).")
    var retries: Int = 0
    @Flag(help: "Print the response as JSON.") var json = false

    func validate() throws {
        if count < 1 { throw ValidationError("--count must be at least 1 (got \(count))") }
        if weight < 0 { throw ValidationError("--weight must not be negative (got \(weight))") }
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive (got \(timeout))") }
        if !(0...JobClient.maximumRetries).contains(retries) {
            throw ValidationError("--retries must be from 0 to \(JobClient.maximumRetries) (got \(retries))")
        }
    }

    func run() throws {
        var request: [String: JSONValue] = [
            "command": .string("job"), "group": Int(group).map { .number(Double($0)) } ?? .string(group),
            "payload": .string(payload), "priority": .number(Double(priority)), "weight": .number(Double(weight)),
            "count": .number(Double(count)), "retries": .number(Double(retries)),
        ]
        if let timeout { request["timeout"] = .number(timeout) }
        // Jobs take as long as they take; each has its own timeout.
        let response = try ControlSession.perform(name, request, timeout: nil)
        let jobs = response["jobs"]?.array ?? []
        if json {
            print(JSONValue.array(jobs).serialized)
        } else {
            var rows = [["#", "WORKER", "WAIT", "RUN", "TRIES", "OUTCOME", "PICKED BECAUSE"]]
            for job in jobs {
                let outcome =
                    job["ok"]?.bool == true
                    ? "ok: \(job["result"]?.string ?? "")"
                    : "\(job["code"]?.string ?? "error"): \(job["error"]?.string ?? "")"
                rows.append([
                    "\(job["index"]?.integer ?? 0)", job["worker"]?.integer.map(String.init) ?? "-",
                    job["queueWaitSeconds"]?.number.map(Formatting.shortDuration) ?? "-", job["runSeconds"]?.number.map(Formatting.shortDuration) ?? "-",
                    job["attempts"]?.integer.map(String.init) ?? "-", outcome, job["pickedBecause"]?.string ?? "",
                ])
            }
            print(table(rows))
        }
        if jobs.contains(where: { $0["ok"]?.bool != true }) { throw ExitCode(1) }
    }
}

