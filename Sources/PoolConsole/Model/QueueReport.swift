import PoolEngine

/// What the queue view (`Q`) shows: each PostgreSQL queue group of the pool with its
/// database state, its queues' figures and its dead jobs, as read at one moment.
///
/// The console knows nothing of PostgreSQL: a ``QueueBrowser`` fills this in (pooltop's is
/// built with the `PostgresQueue` trait).
public struct QueueReport: Hashable, Sendable {
    /// One queue group of the pool (a `postgres-queue` service group).
    public struct Group: Hashable, Sendable {
        public var name: String
        /// Where it works: address (without password), schema.
        public var place: String
        /// The group's own connection to its database, as it published it.
        public var isConnected: Bool
        /// The group's state in a sentence (connected, or unreachable since when and why).
        public var state: String
        /// Why the console could not read the queue's figures itself; nil when it could.
        public var problem: String?
        public var queues: [QueueFigures]
        /// Newest first.
        public var deadJobs: [DeadJob]

        public init(
            name: String, place: String, isConnected: Bool, state: String, problem: String? = nil, queues: [QueueFigures] = [],
            deadJobs: [DeadJob] = []
        ) {
            self.name = name
            self.place = place
            self.isConnected = isConnected
            self.state = state
            self.problem = problem
            self.queues = queues
            self.deadJobs = deadJobs
        }
    }

    public var groups: [Group]
    /// When it was read, in seconds since the epoch.
    public var readAt: Double

    public init(groups: [Group], readAt: Double) {
        self.groups = groups
        self.readAt = readAt
    }

    /// Every group's dead jobs in the order the view lists them, each with its group.
    public var deadJobs: [(group: String, job: DeadJob)] {
        groups.flatMap { group in group.deadJobs.map { (group.name, $0) } }
    }
}

/// A change the queue view makes to a dead job, once the operator confirmed it.
public enum QueueAction: Hashable, Sendable {
    /// Back to pending with fresh attempts.
    case retry(group: String, id: Int64)
    /// Deleted for good.
    case discard(group: String, id: Int64)
}

/// Reads a pool's PostgreSQL queues and changes their dead jobs, for the queue view.
///
/// Both calls talk to a database: the console calls them from a task, never from its loop.
public protocol QueueBrowser: Sendable {
    /// The pool's queue groups now; a group whose database cannot be read says why in its `problem`.
    func read() async -> QueueReport
    /// Carries out `action`; a sentence for the message line.
    func perform(_ action: QueueAction) async -> String
    /// Lets go of what reading holds (connections); called once the console has ended.
    func close() async
}

/// The newest report of a ``QueueBrowser``, read in the background at the console's refresh
/// rate while the queue view is open: the loop never waits for the database.
final class QueueFeed: Sendable {
    private struct State {
        var report: QueueReport?
        var isReading = false
        var startedAt = -Double.infinity
    }

    let browser: any QueueBrowser
    private let state = Mutex(State())

    init(browser: any QueueBrowser) {
        self.browser = browser
    }

    /// The newest report read; nil before the first read ends.
    var report: QueueReport? { state.withLock { $0.report } }

    /// Starts a read when the last one began `interval` seconds ago or more and none is running.
    func refresh(now: Double, interval: Double) {
        let starts = state.withLock { state in
            guard !state.isReading, now - state.startedAt >= interval else { return false }
            state.isReading = true
            state.startedAt = now
            return true
        }
        guard starts else { return }
        let browser = self.browser
        Task {
            let report = await browser.read()
            self.state.withLock { state in
                state.report = report
                state.isReading = false
            }
        }
    }

    /// The next ``refresh(now:interval:)`` reads at once (after an action changed the queue).
    func invalidate() {
        state.withLock { $0.startedAt = -Double.infinity }
    }
}
