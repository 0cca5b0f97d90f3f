import Logging
import NIOCore
import Synchronization

/// One control connection: checks the peer's uid, then answers each request line, each in a
/// task of its own (a slow `restart --rolling` does not hold up a `status` sent after it on
/// the same connection); an `events` request streams on it until the pool stops or the client
/// goes. The connection closes once the client half-closed and every answer is written.
struct ControlSession: Sendable {
    let connection: ControlServer.Connection
    let pool: WorkerPool
    let logger: Logger
    let connections: ControlConnections

    /// Ends the session after an answer that closes the connection (over-long line, stream end).
    private struct Closing: Error {}

    /// Answers and streams under way on the connection.
    private final class UnderWay: Sendable {
        let count = Atomic<Int>(0)
    }

    func run() async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                guard await isAuthorized(outbound) else { return }
                // Answers and streams under way: while any is, the connection is not idle (and
                // not the one closed to make room for a new one).
                let active = UnderWay()
                let channel = connection.channel
                try await withThrowingDiscardingTaskGroup { group in
                    do {
                        for try await line in inbound {
                            let text = String(buffer: line)
                            if text.allSatisfy({ $0 == " " || $0 == "\r" || $0 == "\t" }) { continue }
                            let request: ControlRequest
                            switch Result(catching: { () throws(ControlRequest.Failure) in try ControlRequest(parsing: text) }) {
                            case .success(let parsed):
                                request = parsed
                            case .failure(let failure):
                                try await write(failure.response, outbound)
                                continue
                            }
                            if active.count.add(1, ordering: .relaxed).newValue == 1 { connections.setBusy(channel, true) }
                            group.addTask {
                                defer {
                                    if active.count.subtract(1, ordering: .relaxed).newValue == 0 {
                                        connections.setBusy(channel, false)
                                    }
                                }
                                try await answer(request, outbound)
                            }
                        }
                    } catch ControlRequestError.oversized(let length) {
                        try? await write(
                            ControlErrorCode.oversized.response(
                                "request line of \(length)+ bytes is longer than the limit of \(ControlServer.maximumLineLength)"),
                            outbound)
                        throw Closing()
                    }
                }
            }
        } catch {
            // The peer went, sent an over-long line, or the server is shutting down: the
            // connection is closed either way, and nothing is left to answer.
        }
    }

    /// Only the pool owner's uid may control it (SO_PEERCRED); others are told why.
    private func isAuthorized(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async -> Bool {
        do {
            guard let provider = connection.channel as? any SocketOptionProvider else {
                throw ControlRequestError.noPeerCredentials
            }
            let peer: PeerCredentials = try await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(Posix.socketLevel), name: SocketOptionName(Posix.peerCredentialsOption)
            ).get()
            guard peer.uid == Posix.userID else {
                logger.warning(
                    "control socket: refused a connection from uid \(peer.uid) (pid \(peer.pid)); only uid \(Posix.userID) may connect")
                try? await write(
                    ControlErrorCode.permissionDenied.response(
                        "uid \(peer.uid) may not control this pool; only its owner (uid \(Posix.userID)) may"),
                    outbound)
                return false
            }
            return true
        } catch {
            logger.error("control socket: cannot read the peer's credentials: \(error)")
            return false
        }
    }

    private func answer(_ request: ControlRequest, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        if case .events(let replay) = request.command {
            let (records, replayed) = pool.eventRecordsCountingReplay(replay: replay)
            // Someone follows the pool live: its figures are sampled at full rate meanwhile.
            pool.viewerStreamStarted()
            defer { pool.viewerStreamEnded() }
            try await stream(records, replayed: replayed, id: request.id, outbound)
            // The pool stopped: it said so; now the connection closes.
            throw Closing()
        }
        let line = await ControlCommands.perform(request.command, on: pool, id: request.id)
        try await outbound.write(ByteBuffer(string: line + "\n"))
    }

    /// Streams events as lines; a client too slow to read loses events, and is told how many.
    private func stream(
        _ records: AsyncStream<PoolEventRecord>, replayed: Int, id: JSONValue?, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) async throws {
        var acknowledgement: [String: JSONValue] = [
            "ok": .bool(true), "streaming": .bool(true), "replaying": .number(Double(replayed)),
            // How many lines a worker's history holds, so a console keeps as many as the pool.
            "logHistory": .number(Double(pool.configuration.logHistory)),
        ]
        if let id { acknowledgement["id"] = id }
        try await write(acknowledgement, outbound)
        var dropped = 0
        var remaining = replayed
        // After the replayed history, a marker: `logs` without -f stops there.
        if remaining == 0 { try await write(["type": .string("live")], outbound) }
        let channel = connection.channel
        for await record in records {
            guard channel.isActive else { return }
            if channel.isWritable {
                if dropped > 0 {
                    try await write(["type": .string("dropped"), "count": .number(Double(dropped))], outbound)
                    dropped = 0
                }
                if let line = try? JSONValue.encodeLine(record) { try await outbound.write(ByteBuffer(string: line + "\n")) }
            } else {
                dropped += 1
            }
            remaining -= 1
            if remaining == 0 { try await write(["type": .string("live")], outbound) }
        }
        try await write(["type": .string("end"), "why": .string("the pool has stopped")], outbound)
    }

    private func write(_ response: [String: JSONValue], _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws {
        try await outbound.write(ByteBuffer(string: JSONValue.object(response).serialized + "\n"))
    }
}
