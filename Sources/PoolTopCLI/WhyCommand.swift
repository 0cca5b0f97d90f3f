import ArgumentParser
import PoolConsole
import PoolEngine

/// `pooltop why NAME [WORKER] [--last N] [--json]`.
struct WhyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why",
        abstract: "Why did a worker die? The pool's post-mortems, newest first; the pool may be stopped.",
        discussion: """
            Each death: when, the process, its exit status and reason, uptime, the job it was running, its last 50 log lines, its memory and CPU over its last 60 s, and the backtrace when it was killed as hung. Kept per slot (the last 16) in the pool's state directory, so they survive the pool's stop and a SIGKILL of its watcher.
            """)

    @Argument(help: "The pool's name.") var name: String
    @Argument(help: "Only this worker's deaths.") var worker: Int?
    @Option(name: .long, help: "How many deaths to show.") var last: Int = 5
    @Flag(name: .long, help: "Print them as JSON, one per line.") var json = false

    func validate() throws {
        if last < 1 { throw ValidationError("--last must be at least 1 (got \(last))") }
        if let worker, worker < 1 { throw ValidationError("WORKER must be a worker id ≥ 1 (got \(worker))") }
    }

    func run() throws {
        let records = PostMortemFile.records(pool: name).filter { worker == nil || $0.worker.rawValue == worker }
        guard !records.isEmpty else {
            let whose = worker.map { "worker \($0) of pool '\(name)'" } ?? "pool '\(name)'"
            printError("\(CLIContext.shared.commandName): no death of \(whose) is on record (\(StateDirectory.path(pool: name)))")
            throw ExitCode(1)
        }
        let shown = records.suffix(last).reversed()
        if json {
            for record in shown { print((try? JSONValue.encodeLine(record)) ?? "{}") }
            return
        }
        print(shown.map(Self.render).joined(separator: "\n\n"))
    }

    static func render(_ record: PostMortem) -> String {
        PostMortemText.lines(record).joined(separator: "\n")
    }
}
