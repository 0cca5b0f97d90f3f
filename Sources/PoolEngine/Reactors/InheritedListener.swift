import NIOCore
import NIOPosix
import SystemPackage

/// A listening socket a reactor worker inherited from the watcher.
///
/// With SwiftNIO, hand it to `ServerBootstrap.withBoundSocket(_:)`, or call ``serve(_:on:)``.
/// Other code can take ``descriptor`` (`descriptor.rawValue` for C and NIO APIs), or find the socket the systemd way (`LISTEN_FDS`,
/// `LISTEN_FDNAMES`, `LISTEN_PID`): the worker sets all three before your entry point runs.
public struct InheritedListener: Sendable, Hashable {
    /// The listener's name in its group (`listen0` … unless named).
    public var name: String
    /// What the group declared; nil when the watcher announced a socket the group does not list.
    public var listener: Listener?
    /// The descriptor, open in this process. Whoever serves it owns it (NIO closes it with its channel).
    public var descriptor: SystemPackage.FileDescriptor
    /// Whether the group's workers share this socket (a Unix-domain listener, a socket systemd
    /// passed) instead of each having its own: a plain NIO server channel on it wakes in every
    /// worker for each connection (see ``serveHTTP(on:_:)``, which accepts exclusively).
    public var isShared = false

    /// Starts accepting on this socket with `bootstrap` (a NIO server bootstrap you configured).
    public func serve(_ bootstrap: ServerBootstrap) async throws -> any Channel {
        try await bootstrap.withBoundSocket(descriptor.rawValue).get()
    }

    /// Waits until no connection is queued on the socket (or `timeout` passes): call it once the
    /// worker is stopping and before closing the socket. The watcher sends no new connections to
    /// a stopping worker's socket, so the queue only shrinks; what is still in it when a socket
    /// closes for good would be reset.
    public func awaitQueueDrained(timeout: Duration = .milliseconds(200)) async {
        let deadline = ContinuousClock.now + timeout
        while (try? Posix.pollReadable(descriptor.rawValue, timeoutMilliseconds: 0)) == true && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// The systemd socket-activation variables (sd_listen_fds(3)); descriptors start at 3.
    static let countVariable = "LISTEN_FDS"
    static let namesVariable = "LISTEN_FDNAMES"
    static let pidVariable = "LISTEN_PID"
    /// The names of the listeners the group's workers share (`:`-separated), set by the watcher.
    static let sharedVariable = "POOLTOP_SHARED_LISTENERS"

    /// The variables announcing `names` to a spawned worker (LISTEN_PID is left to the worker).
    static func variables(names: [String]) -> [(String, String)] {
        names.isEmpty ? [] : [(countVariable, "\(names.count)"), (namesVariable, names.joined(separator: ":"))]
    }

    /// The same as `KEY=VALUE` environment entries.
    static func environment(names: [String]) -> [String] {
        variables(names: names).map { "\($0)=\($1)" }
    }

    /// Reads the socket-activation variables the watcher set; marks them as this process's.
    static func fromEnvironment(group: GroupDescription) -> [InheritedListener] {
        guard let countText = Posix.getenv(countVariable), let count = Int(countText), count > 0 else { return [] }
        let names = (Posix.getenv(namesVariable) ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        // sd_listen_fds(3) only trusts the variables when LISTEN_PID is this process.
        Posix.setenv(pidVariable, "\(Posix.processID)")
        let shared = Set((Posix.getenv(sharedVariable) ?? "").split(separator: ":").map(String.init))
        return (0..<count).map { index in
            let name = index < names.count ? names[index] : "unknown\(index)"
            var listener = InheritedListener(
                name: name, listener: group.listeners.first { $0.name == name },
                descriptor: SystemPackage.FileDescriptor(rawValue: Int32(3 + index)))
            listener.isShared = shared.contains(name)
            return listener
        }
    }
}
