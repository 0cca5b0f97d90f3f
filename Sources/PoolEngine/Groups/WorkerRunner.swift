/// How a group's worker processes are launched: which executable, with which extra environment.
///
/// The default runs the watcher's own executable (`/proc/self/exe`), which finds its entry
/// point by name; point `executable` elsewhere to keep workers in a separate binary that calls
/// ``WorkerProcess/runIfWorker(entryPoints:)`` first thing in `main`.
public struct WorkerRunner: Hashable, Sendable, Codable {
    /// The program to spawn; nil means the running executable.
    public var executable: String?
    /// Variables added to the worker's environment (on top of the watcher's).
    public var environment: [String: String]

    public init(executable: String? = nil, environment: [String: String] = [:]) {
        self.executable = executable
        self.environment = environment
    }

    /// Spawn the running executable with the watcher's environment.
    public static let sameExecutable = WorkerRunner()
}
