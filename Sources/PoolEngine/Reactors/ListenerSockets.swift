/// The watcher's listening sockets for reactor groups.
///
/// A TCP listener gets one `SO_REUSEPORT` socket per live slot: the kernel spreads connections
/// evenly over them, each worker accepts only on its own socket (no thundering herd, no lost
/// accept race), and because the watcher keeps the socket while the slot's worker is replaced,
/// connections queued on it wait for the replacement instead of being reset. A slot that stops
/// for good (scaled down, finished, failed) gives its sockets back so no connection is hashed
/// to a socket nobody will accept on. A Unix-domain listener is one socket shared by the group.
///
/// The kernel's own spreading hashes each connection to any socket of the group, also to the
/// socket of a worker that is stopping or not ready yet: connections queued there wait, and
/// when a slot stops for good its socket is closed and they are reset. So the watcher steers:
/// a classic BPF program on each group (``steer(accepting:)``) sends new connections only to
/// the sockets of ready workers that stay, and a leaving worker takes what was already queued
/// before it closes (`InheritedListener.awaitQueueDrained`).
///
/// A TCP listener marked `shared` is one socket the group shares too, bound without
/// `SO_REUSEPORT`: for workers that serve one connection at a time, a connection waits for
/// whichever is free first (see ``Listener/shared``).
///
/// A socket systemd passed to the watcher (socket activation) is served instead: one socket the
/// group shares, as a Unix one is, never steered, and kept by systemd across a restart of the pool.
///
/// Only the watcher loop touches an instance, so it needs no lock.
final class ListenerSockets {
    struct Handed {
        var name: String
        var fd: Int32
    }

    /// Whether a handed socket is shared by the group's workers (a Unix-domain listener, a
    /// socket systemd passed) rather than the slot's own: its workers accept through
    /// ``SharedAcceptor``.
    func isSharedSocket(_ socket: Handed) -> Bool { isShared(socket.fd) }

    /// Changed by `apply` (``prepare(_:in:)``).
    private var pool: PoolDescription
    private var perSlot: [WorkerID: [Handed]] = [:]
    private var perGroup: [GroupID: [String: Int32]] = [:]
    /// Each TCP listener's reuseport group as the kernel keeps it: slots in the order their
    /// sockets started listening; a closed socket's place is taken by the last one.
    private var order: [ListenerKey: [WorkerID]] = [:]
    /// Each group's order and positions when it was last steered, to set a program only when
    /// either changes.
    private var steered: [ListenerKey: (order: [WorkerID], positions: [UInt32])] = [:]

    /// One listener of one group: one reuseport group in the kernel.
    private struct ListenerKey: Hashable, CustomStringConvertible {
        var group: GroupID
        var name: String
        var description: String { "\(name) of group \(group)" }
    }

    /// Sockets systemd passed, by the listener they serve (shared by the group's workers).
    private var activated: [ListenerKey: Int32] = [:]
    /// Passed sockets no listener of the pool matches, described for the log (closed).
    private(set) var unmatched: [String] = []

    init(pool: PoolDescription) {
        self.pool = pool
    }

    /// Binds what the groups' first workers need, so that a bad listener fails `run()` before
    /// any worker starts; on failure everything bound so far is closed.
    static func bindInitial(
        pool: PoolDescription, activation: SocketActivation = SocketActivation(sockets: [])
    ) throws(PoolStartError) -> ListenerSockets {
        let sockets = ListenerSockets(pool: pool)
        var used: Set<Int32> = []
        for group in pool.groups {
            for listener in group.listeners {
                guard let passed = activation.socket(for: listener), !used.contains(passed.fd) else { continue }
                used.insert(passed.fd)
                sockets.activated[ListenerKey(group: group.id, name: listener.name)] = passed.fd
            }
        }
        for passed in activation.sockets where !used.contains(passed.fd) {
            sockets.unmatched.append("'\(passed.name)' (\(passed.address ?? "unknown address"))")
            Posix.close(passed.fd)
        }
        for group in pool.groups where !group.listeners.isEmpty {
            for id in group.workerIDs.prefix(max(group.minWorkers, 1)) {
                do {
                    _ = try sockets.descriptors(for: id)
                } catch {
                    sockets.closeAll()
                    throw PoolStartError(code: .listener, message: "group '\(group.name)': \(error)")
                }
            }
        }
        return sockets
    }

    /// Slots whose sockets are for listeners their group no longer has (`apply` changed them):
    /// closed when the slot's process exits, so that its next process gets the new set.
    private var stale: Set<WorkerID> = []

    /// Takes the pool `apply` makes, binding what the new `groups`' first workers need, and
    /// checking that the addresses groups gain are free; on failure nothing changes (what was
    /// bound is closed) and the reason is returned. `hasProcess` says which slots run a
    /// process now: their sockets go when it exits (``slotExited(_:)``), the others' at once.
    func prepare(_ groups: [GroupDescription], in next: PoolDescription, hasProcess: (WorkerID) -> Bool) -> String? {
        let previous = pool
        // An address a running group gains must be free (nobody else's), like at start.
        for group in next.activeGroups {
            guard let old = previous.group(group.id), !old.retired, old.listeners != group.listeners else { continue }
            for listener in group.listeners where !old.listeners.contains(where: { $0.address == listener.address }) {
                guard case .tcp(let host, let port) = listener.address else { continue }
                do {
                    Posix.close(try Posix.listenTCP(host: host, port: port, backlog: 1, reusePort: false))
                } catch {
                    return "group '\(group.name)': listener \(listener): \(error)"
                }
            }
        }
        pool = next
        var bound: [WorkerID] = []
        for group in groups where !group.listeners.isEmpty {
            for id in group.workerIDs.prefix(max(group.minWorkers, 1)) {
                do {
                    _ = try descriptors(for: id)
                    bound.append(id)
                } catch {
                    for id in bound { retire(id) }
                    for group in groups { release(group) }
                    pool = previous
                    return "group '\(group.name)': \(error)"
                }
            }
        }
        // Only once nothing can fail: groups whose listeners changed let go of the old sockets.
        for group in next.activeGroups {
            guard let old = previous.group(group.id), !old.retired, old.listeners != group.listeners else { continue }
            for id in group.workerIDs where perSlot[id] != nil {
                if hasProcess(id) { stale.insert(id) } else { retire(id) }
            }
            releaseUnlisted(group)
        }
        return nil
    }

    /// A slot's process exited: sockets `apply` made stale go now, so its next process (if
    /// any) binds the group's new set.
    func slotExited(_ id: WorkerID) {
        guard stale.remove(id) != nil else { return }
        retire(id)
        if let group = pool.group(owning: id) { releaseUnlisted(group) }
    }

    /// Closes a group's shared sockets for listeners it no longer has, once no stale slot of
    /// the group (a process started with them) is left.
    private func releaseUnlisted(_ group: GroupDescription) {
        guard !stale.contains(where: { group.owns($0) }), var sockets = perGroup[group.id] else { return }
        let keys = Set(group.listeners.map { listener -> String in
            if case .unix(let path) = listener.address { return path }
            return listener.description
        })
        for (key, fd) in sockets where !keys.contains(key) {
            Posix.close(fd)
            if key.hasPrefix("/") { Posix.removeFile(key) }
            sockets[key] = nil
        }
        perGroup[group.id] = sockets
    }

    /// Closes the shared sockets (Unix-domain) of a group `apply` removed, once its last
    /// worker left, and removes their files.
    func release(_ group: GroupDescription) {
        for (key, fd) in perGroup.removeValue(forKey: group.id) ?? [:] {
            Posix.close(fd)
            // A Unix socket's key is its path; a shared TCP socket's is its address.
            if key.hasPrefix("/") { Posix.removeFile(key) }
        }
    }

    /// The sockets slot `id`'s worker inherits, in its group's listener order; binds any missing.
    func descriptors(for id: WorkerID) throws(ListenerError) -> [Handed] {
        if let existing = perSlot[id] { return existing }
        guard let group = pool.group(owning: id), !group.listeners.isEmpty else { return [] }
        var handed: [Handed] = []
        for listener in group.listeners {
            if let fd = activated[ListenerKey(group: group.id, name: listener.name)] {
                handed.append(Handed(name: listener.name, fd: fd))
                continue
            }
            do {
                switch listener.address {
                case .tcp(let host, let port) where listener.shared:
                    // Keyed by its address: never a path, so never a file to remove.
                    let key = listener.description
                    if let fd = perGroup[group.id]?[key] {
                        handed.append(Handed(name: listener.name, fd: fd))
                    } else {
                        let fd = try Posix.listenTCP(host: host, port: port, backlog: listener.backlog, reusePort: false)
                        perGroup[group.id, default: [:]][key] = fd
                        handed.append(Handed(name: listener.name, fd: fd))
                    }
                case .tcp(let host, let port):
                    if !groupHolds(listener.name, group: group) {
                        // SO_REUSEPORT would let us join another process's sockets on the address
                        // (a second pool, a stale server of the same user) and split its traffic
                        // silently: while we hold none, bind once without it to find out.
                        Posix.close(try Posix.listenTCP(host: host, port: port, backlog: 1, reusePort: false))
                    }
                    let fd = try Posix.listenTCP(host: host, port: port, backlog: listener.backlog, reusePort: true)
                    handed.append(Handed(name: listener.name, fd: fd))
                    order[ListenerKey(group: group.id, name: listener.name), default: []].append(id)
                case .unix(let path):
                    if let fd = perGroup[group.id]?[path] {
                        handed.append(Handed(name: listener.name, fd: fd))
                    } else {
                        let fd = try Posix.listenUnix(path: path, backlog: listener.backlog)
                        perGroup[group.id, default: [:]][path] = fd
                        handed.append(Handed(name: listener.name, fd: fd))
                    }
                }
            } catch {
                for socket in handed where !isShared(socket.fd) { Posix.close(socket.fd) }
                throw ListenerError(listener: listener.description, message: "\(error)")
            }
        }
        perSlot[id] = handed
        return handed
    }

    /// Whether a connection waits in the queue of one of slot `id`'s own sockets (not a shared one).
    func hasQueuedConnections(_ id: WorkerID) -> Bool {
        perSlot[id]?.contains { socket in
            // try?: poll fails only for a closed descriptor, which has nothing queued.
            !isShared(socket.fd) && (try? Posix.pollReadable(socket.fd, timeoutMilliseconds: 0)) == true
        } ?? false
    }

    /// Closes slot `id`'s own sockets: its worker stopped for good.
    func retire(_ id: WorkerID) {
        guard let handed = perSlot.removeValue(forKey: id), let group = pool.group(owning: id) else { return }
        for socket in handed where !isShared(socket.fd) {
            Posix.close(socket.fd)
            // The kernel fills the closed socket's place with the group's last one.
            let key = ListenerKey(group: group.id, name: socket.name)
            guard var sockets = order[key], let index = sockets.firstIndex(of: id) else { continue }
            sockets[index] = sockets[sockets.count - 1]
            sockets.removeLast()
            order[key] = sockets
            // A group whose last socket closed is gone, its program with it.
            if sockets.isEmpty { steered[key] = nil }
        }
    }

    /// Sends each TCP listener's new connections to the sockets of the slots in `accepting`
    /// only (when none of a group's slots is accepting, to all of them, as the kernel would).
    /// Cheap when nothing changed; a failure is returned for the caller to log, and the kernel's
    /// own spreading then goes on.
    func steer(accepting: Set<WorkerID>) -> [String] {
        var failures: [String] = []
        for (key, sockets) in order where !sockets.isEmpty {
            var positions = sockets.indices.filter { accepting.contains(sockets[$0]) }.map { UInt32($0) }
            if positions.isEmpty { positions = sockets.indices.map { UInt32($0) } }
            if let last = steered[key], last.order == sockets, last.positions == positions { continue }
            guard let fd = perSlot[sockets[0]]?.first(where: { $0.name == key.name })?.fd else { continue }
            do {
                try Posix.steerReusePort(fd, to: positions)
                steered[key] = (sockets, positions)
            } catch {
                // Said once per change, not retried at every turn of the loop.
                steered[key] = (sockets, positions)
                failures.append("listener \(key): \(error)")
            }
        }
        return failures
    }


    /// Closes every socket and removes the Unix socket files the pool created (systemd keeps
    /// its own copy of a socket it passed).
    func closeAll() {
        for id in Array(perSlot.keys) { retire(id) }
        for (_, fd) in activated { Posix.close(fd) }
        activated = [:]
        for (_, sockets) in perGroup {
            for (key, fd) in sockets {
                Posix.close(fd)
                if key.hasPrefix("/") { Posix.removeFile(key) }
            }
        }
        perGroup = [:]
    }

    private func groupHolds(_ name: String, group: GroupDescription) -> Bool {
        perSlot.contains { id, handed in group.owns(id) && handed.contains { $0.name == name } }
    }

    private func isShared(_ fd: Int32) -> Bool {
        perGroup.values.contains { $0.values.contains(fd) } || activated.values.contains(fd)
    }

    /// Which listeners serve sockets systemd passed, for the log.
    var activatedListeners: [String] {
        activated.keys.map(\.description).sorted()
    }
}
