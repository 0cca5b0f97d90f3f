#if canImport(Glibc)
import Glibc
#endif

/// A dedicated OS thread for a blocking loop (epoll, a blocking read), joined when done.
/// Swift concurrency's pool threads must never block, so loops that wait in the kernel live here.
final class PosixThread: @unchecked Sendable {
    // @unchecked: `handle` is written once by `init` before the thread can be joined, then only read.
    private var handle = pthread_t()

    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(Body {
            Posix.setThreadName(String(name.prefix(15)))
            body()
        }).toOpaque()
        let rc = pthread_create(&handle, nil, { argument in
            // Safe: the pointer is the retained Body passed just above, released exactly once here.
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<Body>.fromOpaque(box).release()
            throw SystemCallError(call: "pthread_create", errno: rc, context: name)
        }
    }

    func join() {
        pthread_join(handle, nil)
    }

    /// Lets the thread's resources go when it ends, for a thread nobody will join.
    func detach() {
        pthread_detach(handle)
    }
}

/// Runs blocking work (a terminal loop) on an OS thread of its own, so it never holds one of
/// Swift concurrency's few pool threads.
public enum DedicatedThread {
    /// Starts `body` on a new, detached thread and returns at once; for a loop that blocks in
    /// the kernel for as long as it runs (a control client reading a stream).
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws {
        try PosixThread(name: name, body).detach()
    }

    /// Runs `body` on a new thread and returns when it has finished.
    public static func run(name: String, _ body: @escaping @Sendable () -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                // Nobody joins it (the caller waits on the continuation): detached, its stack is
                // freed when it ends instead of staying until the process does.
                try PosixThread(name: name) {
                    body()
                    continuation.resume()
                }.detach()
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
