extension WorkerPool {
    /// Replaces a group's running workers one at a time, never running fewer than before.
    ///
    /// While the group has a spare slot (fewer wanted than its max), each replacement starts in
    /// it beside the worker it replaces, and only once it is ready is the old one asked to finish
    /// (a reactor's new connections go to the ready workers meanwhile; a job worker drains its
    /// queue); the old slot becomes the next spare. A group at its max has no room: each worker
    /// is then asked to finish first and its slot restarted (a reactor's socket stays open, so
    /// its connections queue for the replacement). The roll stops at the first replacement that
    /// is not ready within the group's start timeout, stopping it and leaving the workers not yet
    /// reached untouched. A second roll of the group while one runs is refused (`busy`).
    /// Returns how many were replaced.
    @discardableResult
    public func rollingRestart(_ group: GroupReference) async throws(CommandError) -> Int {
        let description = try resolve(group)
        guard beginRoll(description.id) else {
            throw CommandError(.busy, "a rolling restart of '\(description.name)' is already under way")
        }
        defer { endRoll(description.id) }
        guard let first = snapshot() else { throw CommandError(.notRunning, "the pool is not running") }
        let running = first.workers.filter { description.owns($0.id) && $0.state.hasProcess }
        var replaced = 0
        func stopped(_ why: String) -> CommandError {
            CommandError(.failed, "rolling restart of '\(description.name)' stopped after \(replaced) of \(running.count): \(why); the rest were left running")
        }
        for worker in running {
            guard let now = snapshot() else { throw CommandError(.notRunning, "rolling restart of '\(description.name)' stopped: the pool stopped") }
            // A stopped slot of the group is one nobody wants (scaled down, or retired by this roll).
            var spare = now.workers.first { description.owns($0.id) && $0.state == .stopped }
            if let candidate = spare {
                do throws(CommandError) {
                    try await command(.spareStartRequested(candidate.id))
                } catch {
                    spare = nil
                }
            }
            if let spare {
                let started = try await awaitReady(spare.id, after: spare.generation, within: description.startTimeout)
                guard started == .ready else {
                    // Give the slot back as it was: a spare.
                    try? await stopWorker(spare.id)
                    throw stopped("the replacement for worker \(worker.id) in slot \(spare.id) did not start (\(started.rawValue))")
                }
                try await command(.workerRetireRequested(worker.id))
                // One extra worker at a time: the next starts once this one has left.
                let limit = ContinuousClock.now + description.stopTimeout + .seconds(1)
                while snapshot()?.worker(worker.id)?.state.hasProcess == true && ContinuousClock.now < limit {
                    try? await Task.sleep(for: .milliseconds(10))
                }
            } else {
                try await restartWorker(worker.id)
                let started = try await awaitReady(worker.id, after: worker.generation, within: description.startTimeout + description.stopTimeout)
                guard started == .ready else {
                    throw stopped("the replacement of worker \(worker.id) did not start (\(started.rawValue))")
                }
            }
            replaced += 1
        }
        return replaced
    }

    /// Waits until slot `id` runs a generation after `generation` that is ready; returns the
    /// state it ended in (`ready`, or a state it will not get ready from, or `starting` when time ran out).
    private func awaitReady(_ id: WorkerID, after generation: Int, within timeout: Duration) async throws(CommandError) -> WorkerState {
        let limit = ContinuousClock.now + timeout
        while true {
            guard let now = snapshot()?.worker(id) else { throw CommandError(.notRunning, "the pool stopped") }
            if now.generation > generation {
                if now.state == .ready { return .ready }
                if now.state == .failed || now.state == .backoff || now.state == .finished { return now.state }
            }
            if ContinuousClock.now > limit { return .starting }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
