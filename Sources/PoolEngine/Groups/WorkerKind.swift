/// What a group's workers do; it selects the defaults a group gets.
public enum WorkerKind: String, Sendable, Codable, CaseIterable {
    /// Serves connections on listening sockets that the watcher opened and handed down.
    case reactor
    /// Executes jobs that other workers send it over IPC.
    case job
    /// A single-purpose process (a queue consumer, an exporter), supervised like the others.
    case service
}
