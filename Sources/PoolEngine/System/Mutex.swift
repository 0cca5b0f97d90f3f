import CPoolShims
import Synchronization

/// `Synchronization.Mutex`, made visible to ThreadSanitizer; every target of this package uses it.
///
/// The standard library's mutex locks with futex calls in code ThreadSanitizer does not
/// instrument, so under `make sanitize` every access made under one would be reported as a race.
/// This wrapper tells ThreadSanitizer about the lock (acquire once taken, release before it is
/// let go); outside a sanitizer build those calls do nothing. Its address is the wrapper's own,
/// read before the lock is taken: the value's address would be an access ThreadSanitizer checks.
package struct Mutex<Value: ~Copyable>: ~Copyable {
    private let base: Synchronization.Mutex<Value>

    package init(_ initialValue: consuming sending Value) {
        base = Synchronization.Mutex(initialValue)
    }

    package borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        let address = withUnsafePointer(to: self) { UnsafeRawPointer($0) }
        return try base.withLock { (value: inout sending Value) throws(E) -> sending Result in
            pt_tsan_acquire(address)
            defer { pt_tsan_release(address) }
            return try body(&value)
        }
    }
}

extension Mutex: @unchecked Sendable where Value: ~Copyable {}

/// A lock that guards nothing of its own: what it serializes lives elsewhere (writes to a
/// descriptor, a part of the shared segment).
package struct Lock: ~Copyable, Sendable {
    // A byte, not `()`: ThreadSanitizer checks the access to a zero-size value at the address
    // after it, which in a class is the next field (another lock's word), and reports a race.
    private let mutex = Mutex<UInt8>(0)

    package init() {}

    package borrowing func withLock<Result, E: Error>(_ body: () throws(E) -> sending Result) throws(E) -> sending Result {
        try mutex.withLock { (_: inout sending UInt8) throws(E) -> sending Result in try body() }
    }
}
