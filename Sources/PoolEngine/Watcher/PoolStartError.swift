/// Why the watcher could not start.
public struct PoolStartError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Another process holds the pool's PID file.
        case alreadyRunning = "already-running"
        /// The PID file could not be created or written.
        case pidFile = "pid-file"
        /// The runtime directory is unsafe or cannot be created.
        case runtimeDirectory = "runtime-directory"
        /// Shared memory or the control socket cannot be set up.
        case sharedState = "shared-state"
        /// A reactor group's listener cannot be bound (address in use, permission, bad address).
        case listener
        /// The log file (`logFile`) cannot be opened.
        case logFile = "log-file"
    }

    public var code: Code
    public var message: String
    public var underlying: SystemCallError?

    public var description: String {
        if let underlying { return "\(message): \(underlying)" }
        return message
    }
}
