/// The watcher's listening sockets for reactor groups.
///
/// A TCP listener gets one `SO_REUSEPORT` socket per live slot: the kernel spreads connections
/// evenly over them, each worker accepts only on its own socket (no thundering herd, no lost
/// accept race), and because the watcher keeps the socket while the slot's worker is replaced,
/// connections queued on it wait for the replacement instead of being reset. A slot that stops
/// for good (scaled down, finished, failed) gives its sockets back so no connection is hashed
/// to a socket nobody will accept on. A Unix-domain listener is one socket shared by the group.
///
/// Only the watcher loop touches an instance, so it needs no lock.
final class ListenerSockets {
    struct Handed {
        var name: String
        var fd: Int32
    }

    private let pool: PoolDescription
    private var perSlot: [WorkerID: [Handed]] = [:]
    private var perGroup: [GroupID: [String: Int32]] = [:]

    init(pool: PoolDescription) {
        self.pool = pool
    }

    /// Binds what the groups' first workers need, so that a bad listener fails `run()` before
    /// any worker starts; on failure everything bound so far is closed.
    static func bindInitial(pool: PoolDescription) throws(PoolStartError) -> ListenerSockets {
        let sockets = ListenerSockets(pool: pool)
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

    /// The sockets slot `id`'s worker inherits, in its group's listener order; binds any missing.
    func descriptors(for id: WorkerID) throws(ListenerError) -> [Handed] {
        if let existing = perSlot[id] { return existing }
        guard let group = pool.group(owning: id), !group.listeners.isEmpty else { return [] }
        var handed: [Handed] = []
        for listener in group.listeners {
            do {
                switch listener.address {
                case .tcp(let host, let port):
                    if !groupHolds(listener.name, group: group) {
                        // SO_REUSEPORT would let us join another process's sockets on the address
                        // (a second pool, a stale server of the same user) and split its traffic
                        // silently: while we hold none, bind once without it to find out.
                        Posix.close(try Posix.listenTCP(host: host, port: port, backlog: 1, reusePort: false))
                    }
                    let fd = try Posix.listenTCP(host: host, port: port, backlog: listener.backlog, reusePort: true)
                    handed.append(Handed(name: listener.name, fd: fd))
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

    /// Closes slot `id`'s own sockets: its worker stopped for good.
    func retire(_ id: WorkerID) {
        guard let handed = perSlot.removeValue(forKey: id) else { return }
        for socket in handed where !isShared(socket.fd) { Posix.close(socket.fd) }
    }

    /// Closes every socket and removes the Unix socket files the pool created.
    func closeAll() {
        for id in Array(perSlot.keys) { retire(id) }
        for (_, paths) in perGroup {
            for (path, fd) in paths {
                Posix.close(fd)
                Posix.removeFile(path)
            }
        }
        perGroup = [:]
    }

    private func groupHolds(_ name: String, group: GroupDescription) -> Bool {
        perSlot.contains { id, handed in group.owns(id) && handed.contains { $0.name == name } }
    }

    private func isShared(_ fd: Int32) -> Bool {
        perGroup.values.contains { $0.values.contains(fd) }
    }
}
