/// What a piece of the screen is, never which colour it has: themes map roles to colours.
public enum StyleRole: String, CaseIterable, Sendable, Hashable {
    case normal
    case headerTitle = "header.title"
    case headerValue = "header.value"
    case headerLabel = "header.label"
    case tableHeader = "table.header"
    case rowSelected = "row.selected"
    case rowNew = "row.new"
    case rowGone = "row.gone"
    case workerReady = "worker.ready"
    case workerStarting = "worker.starting"
    case workerStopping = "worker.stopping"
    case workerBackoff = "worker.backoff"
    case workerFailed = "worker.failed"
    case workerStopped = "worker.stopped"
    case eventInfo = "event.info"
    case eventWarning = "event.warning"
    case eventError = "event.error"
    case keyBar = "keybar.key"
    case keyBarLabel = "keybar.label"
    case dialog
    case dialogTitle = "dialog.title"
    case message
    case sparkline
}
