// Events: live streams for the console, `events` clients and the log, with a replay of the
// last ``WorkerPool/historyLimit`` for clients that join late.
extension WorkerPool {
    /// The pool's events from now on; the stream ends when the pool has stopped.
    public func events() -> AsyncStream<PoolEvent> {
        let (stream, continuation) = AsyncStream<PoolEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id = state.withLock { state -> Int? in
            if case .finished = state.phase { return nil }
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = continuation
            return id
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
            }
        } else {
            continuation.finish()
        }
        return stream
    }

    /// The pool's events with their times; with `replay`, what it keeps of its past first:
    /// each worker's last `logHistory` lines and markers, and the pool's own recent events,
    /// in the order they happened (``EventLog/everything``). The stream ends when the pool has stopped.
    public func eventRecords(replay: Bool) -> AsyncStream<PoolEventRecord> {
        eventRecordsCountingReplay(replay: replay).stream
    }

    /// The same stream, and how many of its first records are the replay.
    func eventRecordsCountingReplay(replay: Bool) -> (stream: AsyncStream<PoolEventRecord>, replayed: Int) {
        // Replay and registration under one lock: no event is missed or seen twice. The stream
        // is made there too, with room for the whole replay besides what comes live.
        let (stream, continuation, id, replayed) = state.withLock {
            state -> (AsyncStream<PoolEventRecord>, AsyncStream<PoolEventRecord>.Continuation, Int?, Int) in
            let history = replay ? state.log.everything : []
            let (stream, continuation) = AsyncStream<PoolEventRecord>.makeStream(bufferingPolicy: .bufferingNewest(history.count + 10_000))
            for record in history { continuation.yield(record) }
            if case .finished = state.phase { return (stream, continuation, nil, history.count) }
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.recordSubscribers[id] = continuation
            return (stream, continuation, id, history.count)
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                self?.state.withLock { _ = $0.recordSubscribers.removeValue(forKey: id) }
            }
        } else {
            continuation.finish()
        }
        return (stream, replayed)
    }

    func finishSubscribers() {
        let (subscribers, recordSubscribers) = state.withLock { state in
            defer {
                state.subscribers = [:]
                state.recordSubscribers = [:]
            }
            return (Array(state.subscribers.values), Array(state.recordSubscribers.values))
        }
        for subscriber in subscribers { subscriber.finish() }
        for subscriber in recordSubscribers { subscriber.finish() }
    }

    func publish(_ event: PoolEvent) {
        let record = PoolEventRecord(at: Posix.wallClockSeconds(), event: event)
        let (subscribers, recordSubscribers, logFile, recorder) = state.withLock { state in
            state.log.append(record)
            return (Array(state.subscribers.values), Array(state.recordSubscribers.values), state.logFile, state.recorder)
        }
        logFile?.write(record)
        recorder?.note(record)
        for subscriber in subscribers { subscriber.yield(event) }
        for subscriber in recordSubscribers { subscriber.yield(record) }
    }
}
