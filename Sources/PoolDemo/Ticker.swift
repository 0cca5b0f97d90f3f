import PoolEngine

/// A service worker that logs a line every second until it is stopped (the seed's ServiceWorker).
public struct Ticker: WorkerEntryPoint {
    private var worker: Worker?

    public init() {}

    public mutating func initialize(worker: Worker) async throws {
        self.worker = worker
    }

    public func run() async throws {
        guard let worker else { return }
        var tick = 0
        while !worker.isStopRequested {
            tick += 1
            worker.logger.info("tick \(tick)")
            do {
                try await Task.sleep(for: .seconds(1))
            } catch {
                // Cancelled: the worker was asked to stop.
                return
            }
        }
    }
}

