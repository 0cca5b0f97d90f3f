#if canImport(Glibc)
import Glibc
#endif
import CPoolShims

/// An epoll instance, level-triggered, with a 64-bit token per watched descriptor: the
/// watcher's ``EventMonitor`` and the job client's I/O thread each wait on one.
struct Epoll: Sendable {
    /// What a descriptor is watched for, and what was seen.
    struct Events: OptionSet, Sendable, Hashable {
        let rawValue: UInt32
        static let readable = Events(rawValue: PT_EPOLLIN)
        static let writable = Events(rawValue: PT_EPOLLOUT)
        /// The peer shut its side for writing or closed (needs asking for).
        static let peerHangUp = Events(rawValue: PT_EPOLLRDHUP)
        /// Both sides are shut (always reported).
        static let hangUp = Events(rawValue: PT_EPOLLHUP)
        /// An error is pending (always reported).
        static let error = Events(rawValue: PT_EPOLLERR)
        /// EPOLLEXCLUSIVE: of the epoll instances of several processes watching one descriptor,
        /// only one (or a few) wakes per event, not all of them.
        static let exclusive = Events(rawValue: 1 << 28)
    }

    struct Event: Sendable {
        var events: Events
        var token: UInt64
    }

    let fd: Posix.FD

    init(context: String) throws {
        fd = try Posix.check("epoll_create1", context: context) { pt_epoll_create() }
    }

    func add(_ watched: Posix.FD, _ events: Events, token: UInt64) throws {
        try Posix.check("epoll_ctl(ADD)", context: "fd \(watched)") { pt_epoll_ctl(fd, PT_EPOLL_CTL_ADD, watched, events.rawValue, token) }
    }

    func modify(_ watched: Posix.FD, _ events: Events, token: UInt64) throws {
        try Posix.check("epoll_ctl(MOD)", context: "fd \(watched)") { pt_epoll_ctl(fd, PT_EPOLL_CTL_MOD, watched, events.rawValue, token) }
    }

    /// Stops watching (before the descriptor is closed); a descriptor not watched is no error.
    func remove(_ watched: Posix.FD) {
        _ = pt_epoll_ctl(fd, PT_EPOLL_CTL_DEL, watched, 0, 0)
    }

    /// Waits for events, at most `timeoutMilliseconds` (-1: no limit); an interrupted wait
    /// returns none.
    func wait(into events: inout [Event], timeoutMilliseconds: Int32) throws {
        events.removeAll(keepingCapacity: true)
        // On the stack: every loop (the watcher's, the job server's, the job client's) waits
        // here once per turn, and a heap buffer per turn showed in nothing but cost.
        let error = withUnsafeTemporaryAllocation(of: pt_epoll_event.self, capacity: 64) { raw -> Int32? in
            let count = pt_epoll_wait(fd, raw.baseAddress, 64, timeoutMilliseconds)
            if count < 0 { return errno }
            for entry in raw[0..<Int(count)] { events.append(Event(events: Events(rawValue: entry.events), token: entry.data)) }
            return nil
        }
        guard let error, error != EINTR else { return }
        throw SystemCallError(call: "epoll_wait", errno: error, context: "fd \(fd)")
    }

    /// Waits for events until `deadline` (monotonic nanoseconds; nil: no limit).
    func wait(into events: inout [Event], until deadline: UInt64?) throws {
        var timeout: Int32 = -1
        if let deadline {
            let now = Posix.monotonicNanoseconds()
            // Rounded up so the wake-up is never early (an early one would spin until the deadline).
            timeout = deadline <= now ? 0 : Int32(min((deadline - now + 999_999) / 1_000_000, 3_600_000))
        }
        try wait(into: &events, timeoutMilliseconds: timeout)
    }

    func close() { Posix.close(fd) }
}

/// An eventfd to wake a thread blocked in `epoll_wait`.
struct WakeUpEvent: Sendable {
    let fd: Posix.FD

    init(context: String) throws {
        fd = try Posix.check("eventfd", context: context) { pt_eventfd() }
    }

    func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { try? Posix.write(fd, $0) }
    }

    /// Resets it after a wake-up.
    func consume() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { try? Posix.read(fd, into: $0) }
    }

    func close() { Posix.close(fd) }
}
