import CPoolShims

/// Files a crashing watcher removes on its way down: its shared-memory segment and control
/// socket would otherwise stay until the next start of a pool of the same name.
///
/// A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE; a Swift trap is one of
/// them) runs a C handler that unlinks these paths, restores the terminal if a console took it
/// over, and passes the signal on, so the process still dies of it. SIGKILL cannot be caught:
/// then the next watcher of the pool replaces what was left.
enum CrashGuard {
    /// A path registered for removal; `release()` once it was removed the normal way.
    struct Registration {
        fileprivate let slot: Int32

        func release() { pt_crash_guard_remove_path(slot) }
    }

    /// Registers `path`; nil when the guard's 16 slots are taken or the path is too long (the
    /// file is then only removed the normal way).
    static func removeOnCrash(_ path: String) -> Registration? {
        _ = pt_crash_guard_install()
        let slot = pt_crash_guard_add_path(path)
        return slot >= 0 ? Registration(slot: slot) : nil
    }
}
