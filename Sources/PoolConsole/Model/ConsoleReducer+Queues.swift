import PoolEngine

/// The queue view's keys (`Q`): move among the dead jobs, open one, retry or discard it after
/// a confirmation whose default is Cancel.
extension ConsoleReducer {
    static func queueKey(_ state: inout ConsoleState, key: ConsoleKey, view: ConsoleState.QueueView, report: QueueReport?)
        -> [ConsoleEffect]
    {
        var view = view
        let dead = report?.deadJobs ?? []
        let last = max(dead.count - 1, 0)
        switch key {
        case .escape where view.opened, .backspace where view.opened, .enter where view.opened:
            view.opened = false
        case .escape, .character("q"), .character("Q"):
            state.mode = .normal
            return []
        case .enter:
            view.opened = !dead.isEmpty
        case .up, .character("k"):
            view.selected = max(0, view.selected - 1)
        case .down, .character("j"):
            view.selected = min(last, view.selected + 1)
        case .pageUp:
            view.selected = max(0, view.selected - 10)
        case .pageDown:
            view.selected = min(last, view.selected + 10)
        case .home:
            view.selected = 0
        case .end:
            view.selected = last
        case .character("r"), .character("x"):
            // The list may have shrunk since the key before: act on what is selected now.
            guard dead.indices.contains(min(view.selected, last)) else {
                state.message = "no dead job to \(key == .character("r") ? "retry" : "discard")"
                break
            }
            if state.readOnly {
                state.message = "read-only: actions are disabled"
                break
            }
            view.selected = min(view.selected, last)
            let (group, job) = dead[view.selected]
            let what = "dead job \(job.id) (queue \(job.queue), \(job.attempts) attempt\(job.attempts == 1 ? "" : "s"), group \(group))"
            state.mode = .confirm(
                key == .character("r")
                    ? Confirmation(
                        question: "Retry \(what)? It becomes pending again with fresh attempts, and the pool runs it.",
                        queue: .retry(group: group, id: job.id), returnTo: view)
                    : Confirmation(
                        question: "Discard \(what)? It is deleted from the database for good, with its payload and error.",
                        queue: .discard(group: group, id: job.id), returnTo: view))
            return []
        default:
            break
        }
        state.mode = .queues(view)
        return []
    }
}
