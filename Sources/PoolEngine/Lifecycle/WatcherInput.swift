/// Something that happened to the pool, fed to ``WatcherCore`` with the time it was seen.
enum WatcherInput: Hashable, Sendable {
    /// `run()` began: start every group's minimum.
    case poolDidStart
    case processDidSpawn(WorkerID, generation: Int, pid: Int32)
    case spawnDidFail(WorkerID, generation: Int, error: String)
    case workerDidBecomeReady(WorkerID, generation: Int)
    case workerDidReport(WorkerID, generation: Int, WorkerExitReport)
    case channelDidClose(WorkerID, generation: Int)
    case processDidExit(WorkerID, generation: Int, TerminationStatus)
    /// Time passed: act on every deadline that is due.
    case clockDidAdvance
    /// Stop the pool; a second request while stopping kills what is left at once.
    case stopRequested(reason: String)
    case restartRequested(hard: Bool)
    /// A command a caller waits on; the core answers it with ``WatcherAction/reply(_:_:)``.
    case command(WatcherCommand, reply: ReplyToken)
    /// What the loop read of its workers (their activity, and RSS when /proc was sampled):
    /// busy workers are stopped last when scaling down; recycle quotas and idle shrinking
    /// are decided from it.
    case workersSampled([WorkerID: WorkerSample])
    /// A group grown on demand was idle long enough: one worker fewer, never below min.
    case shrinkRequested(GroupID)
    /// The worker reached a recycle quota: replace it once it has finished its work.
    case workerRecycleRequested(WorkerID, generation: Int, quota: String)
    /// A sender found no worker of the group able to take a job: add one, up to max, at most one
    /// per ``WatcherCore/scaleUpInterval`` per group.
    case scaleUpRequested(GroupID)
    /// A program worker's exec finished: it runs (`failure` nil), or it could not be started.
    case programDidExec(WorkerID, generation: Int, failure: String?)
    /// A program worker sent an sd_notify message.
    case programDidNotify(WorkerID, generation: Int, NotifyMessage)
    /// A program worker's readiness probe succeeded.
    case probeDidSucceed(WorkerID, generation: Int)
    /// A ready program worker's probe failed `failureThreshold` times in a row.
    case probeDidFail(WorkerID, generation: Int, why: String)
    /// The heartbeats of the workers whose hang check was due (``WorkerSlot/hangAt``), as the
    /// loop read them from shared memory: each the instant of the worker's last beat, nil
    /// before its first.
    case heartbeatsRead([WorkerID: PoolInstant?])
    /// The backtrace of a hung worker's threads, captured (or why not): it is killed now.
    case backtraceCaptured(WorkerID, generation: Int, String)
}

/// What the watcher loop must do; the core never performs effects itself.
enum WatcherAction: Hashable, Sendable {
    /// Spawn the slot's worker process as this generation and send it its bootstrap.
    case spawn(WorkerID, generation: Int)
    /// Start a standby process or a fork server for the group (``StandbyProcess``), watched as
    /// ``WorkerID/standby(_:)``.
    case spawnStandby(groupIndex: Int, generation: Int, forkServer: Bool)
    /// Make standby `standby` the slot's process as this generation: send it the bootstrap.
    case promoteStandby(WorkerID, generation: Int, standby: Int)
    /// Have fork server `server` fork the slot's process as this generation, from the slot's
    /// bootstrap (decision 0028).
    case forkWorker(WorkerID, generation: Int, server: Int)
    /// Send the stop request on the worker's control channel.
    case requestStop(WorkerID, generation: Int, StopRequest)
    /// SIGKILL the worker's process.
    case kill(WorkerID, generation: Int)
    /// Tell subscribers and the log.
    case emit(PoolEvent)
    /// Answer the caller of a command.
    case reply(ReplyToken, CommandReply)
    /// Every slot has stopped for good: `run()` returns, or throws the failure.
    case finish(PoolFailure?)
    /// Capture the backtrace of every thread of the hung process, within a time bound, and
    /// answer with ``WatcherInput/backtraceCaptured(_:generation:_:)``.
    case captureBacktrace(WorkerID, generation: Int, pid: Int32)
}
