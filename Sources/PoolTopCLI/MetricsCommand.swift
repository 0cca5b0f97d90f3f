import ArgumentParser
import PoolEngine

/// `pooltop metrics NAME`: the pool's Prometheus exposition on stdout, read from shared memory
/// (the same text the metrics group serves at /metrics), for scripts, `promtool` and bug reports.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Print a running pool's metrics in the Prometheus text format.")

    @Argument(help: "The pool's name.")
    var name: String

    func run() throws {
        let reader: PoolStateReader
        do {
            reader = try PoolStateReader(pool: name)
        } catch let error as SharedStateError where error.code == .notFound {
            throw ControlSession.notRunning(name)
        } catch {
            printError("\(CLIContext.shared.commandName): cannot read pool '\(name)': \(error)")
            throw ExitCode(1)
        }
        print(
            PrometheusExposition.text(reader.snapshot()) + String(decoding: PublishedMetrics.collected(pool: name), as: UTF8.self),
            terminator: "")
    }
}
