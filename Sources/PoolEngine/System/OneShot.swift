/// A value set once, from any thread, and awaited once: how the watcher's thread hands the
/// pool's outcome to `run()`. Unlike an `AsyncStream`, waiting is not ended by cancellation:
/// a cancelled `run()` asks the pool to stop and still waits until it has.
final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, Never>)
        case set(Value)
        case taken
    }

    private let state = Mutex(State.empty)

    /// Sets the value; only the first call counts.
    func fulfill(_ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<Value, Never>? in
            switch state {
            case .empty:
                state = .set(value)
                return nil
            case .waiting(let continuation):
                state = .taken
                return continuation
            case .set, .taken:
                return nil
            }
        }
        waiter?.resume(returning: value)
    }

    /// Waits for the value; call it once.
    func value() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value? in
                switch state {
                case .set(let value):
                    state = .taken
                    return value
                case .empty:
                    state = .waiting(continuation)
                    return nil
                case .waiting, .taken:
                    preconditionFailure("OneShot.value() awaited twice")
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
