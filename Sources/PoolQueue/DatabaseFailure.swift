#if PostgresQueue
import PostgresNIO

/// What a postgres-nio error says, as a sentence, and whether it lost the connection: its own
/// description hides the server's message on purpose (it may carry data), and the queue's logs
/// need it.
enum DatabaseFailure {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo {
            let message = info[.message] ?? "server error"
            let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            let detail = info[.detail].map { ": \($0)" } ?? ""
            return "\(message)\(detail)\(state)"
        }
        if let underlying = error.underlying { return "\(error.code): \(underlying)" }
        return "\(error.code)"
    }

    /// Whether the error means the connection is gone (reconnect) rather than a failed statement.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return true }
        switch error.code {
        case .server, .queryCancelled, .tooManyParameters, .invalidCommandTag: return false
        default: return true
        }
    }
}

#endif
