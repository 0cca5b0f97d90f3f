#if canImport(Glibc)
import Glibc
#endif

/// Routes the watcher's signals into the event monitor through a self-pipe, so a signal is
/// just another event on the watcher's one stream, and keeps working after every restart
/// (amphp-pool stopped trapping signals after SIGUSR2, one of its known bugs).
final class SignalRoute: Sendable {
    static let routed: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]
    private let readFD: Int32
    private let writeFD: Int32
    private let monitor: EventMonitor

    init(monitor: EventMonitor) throws {
        (readFD, writeFD) = try Posix.pipe()
        self.monitor = monitor
        try monitor.watchSignals(readFD: readFD)
        for signal in Self.routed { try Posix.routeSignal(signal, toDescriptor: writeFD) }
    }

    /// Gives the signals back their default actions and closes the pipe.
    func restore() {
        for signal in Self.routed { Posix.restoreDefaultSignal(signal) }
        monitor.forget(descriptor: readFD)
        Posix.close(readFD)
        Posix.close(writeFD)
    }
}

/// Notes that one of some signals arrived, for a loop that checks between turns (the attached
/// console restores the terminal and exits on SIGTERM or SIGHUP instead of dying mid-frame).
public final class SignalFlag: Sendable {
    private let readFD: Int32
    private let writeFD: Int32
    private let signals: [Int32]

    /// Starts catching `signals` (nil: SIGTERM and SIGHUP).
    public init(signals: [Int32]? = nil) throws {
        (readFD, writeFD) = try Posix.pipe()
        let signals = signals ?? [SIGTERM, SIGHUP]
        self.signals = signals
        for signal in signals { try Posix.routeSignal(signal, toDescriptor: writeFD) }
    }

    /// Whether one of the signals has arrived since the flag was made.
    public var isRaised: Bool {
        var byte: UInt8 = 0
        let n = withUnsafeMutableBytes(of: &byte) { (try? Posix.read(readFD, into: $0)) ?? nil }
        return (n ?? 0) > 0
    }

    /// Gives the signals back their default actions.
    public func restore() {
        for signal in signals { Posix.restoreDefaultSignal(signal) }
        Posix.close(readFD)
        Posix.close(writeFD)
    }
}
