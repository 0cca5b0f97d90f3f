import CPoolShims

/// Files a crashing watcher removes on its way down: its shared-memory segment and control
/// socket would otherwise stay until the next start of a pool of the same name.
///
/// A fatal signal (SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE; a Swift trap is one of
/// them) runs a C handler that unlinks these paths, restores the terminal if a console took it
/// over, and passes the signal on, so the process still dies of it. SIGKILL cannot be caught:
/// then the next watcher of the pool replaces what was left.
public enum CrashGuard {
    /// A path registered for removal; `release()` once it was removed the normal way.
    struct Registration {
        fileprivate let slot: Int32

        func release() { pt_crash_guard_remove_path(slot) }
    }

    /// Saves the terminal's modes (of standard input) now: call it before a full-screen program
    /// changes them, so a crash can put them back.
    public static func saveTerminalModes() {
        pt_crash_guard_save_terminal()
    }

    /// On a crash, writes `bytes` (terminfo's strings that leave full-screen mode) and puts back
    /// the saved modes; nil when the program gave the terminal back itself.
    public static func restoreTerminalOnCrash(writing bytes: String?) {
        if let bytes {
            pt_crash_guard_set_restore_bytes(bytes)
            _ = pt_crash_guard_install()
        } else {
            pt_crash_guard_set_restore_bytes(nil)
        }
    }

    /// Registers `path`; nil when the guard's 16 slots are taken or the path is too long (the
    /// file is then only removed the normal way).
    static func removeOnCrash(_ path: String) -> Registration? {
        _ = pt_crash_guard_install()
        let slot = pt_crash_guard_add_path(path)
        return slot >= 0 ? Registration(slot: slot) : nil
    }
}
