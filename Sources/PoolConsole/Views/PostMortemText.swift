import Foundation
import PoolEngine

/// A post-mortem as text: `pooltop why` prints it, the console's deaths view shows it.
public enum PostMortemText {
    /// One line for the deaths list: time, worker, group, reason, status, uptime, job.
    public static func summary(_ record: PostMortem) -> String {
        let job = record.job.map { "job \($0.id)" } ?? "-"
        return [
            Formatting.clock(record.at), "worker \(record.worker)".padding(toLength: 10, withPad: " ", startingAt: 0),
            record.group.padding(toLength: 12, withPad: " ", startingAt: 0),
            record.reason.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0),
            status(record).padding(toLength: 14, withPad: " ", startingAt: 0),
            "up \(Formatting.duration(record.uptimeSeconds))".padding(toLength: 10, withPad: " ", startingAt: 0), job,
        ].joined(separator: " ")
    }

    public static func status(_ record: PostMortem) -> String {
        switch record.status {
        case .exited(let code)?: return "exit code \(code)"
        case .signaled(let signal)?: return "signal \(signal)"
        case nil: return "never started"
        }
    }

    /// The whole post-mortem, one line per row.
    public static func lines(_ record: PostMortem) -> [String] {
        var lines = [
            "\(Formatting.clock(record.at)) worker \(record.worker) (\(record.group)) pid \(record.pid), generation \(record.generation): \(record.reason.rawValue), \(status(record)), after \(Formatting.duration(record.uptimeSeconds))"
        ]
        if let message = record.message { lines.append("  why: \(message)") }
        if let job = record.job {
            var described = "  running job \(job.id) for \(Formatting.duration(job.runningSeconds))"
            var particulars: [String] = []
            if job.priority != nil || job.payloadHead != nil { particulars.append("from \(job.sender ?? "outside the pool")") }
            if let priority = job.priority { particulars.append("priority \(priority)") }
            if let weight = job.weight { particulars.append("weight \(weight)") }
            if !particulars.isEmpty { described += " (\(particulars.joined(separator: ", ")))" }
            if let head = job.payloadHead {
                let more = (job.payloadBytes ?? 0) > head.utf8.count ? "… (\(job.payloadBytes ?? 0) bytes)" : ""
                // Quoted and escaped as Swift writes a string: a newline in the payload stays on this line.
                described += ": \(String(reflecting: head))\(more)"
            }
            lines.append(described)
        }
        if let request = record.request {
            let more = request.bytes > request.head.utf8.count ? "… (\(request.bytes) bytes)" : ""
            lines.append("  serving request \(String(reflecting: request.head))\(more) for \(Formatting.duration(request.runningSeconds))")
        }
        if let last = record.samples.last {
            let peak = record.samples.map(\.rssBytes).max() ?? last.rssBytes
            let cpu = record.samples.count > 1 ? last.cpuSeconds - record.samples[0].cpuSeconds : 0
            lines.append(
                "  memory \(Formatting.bytes(last.rssBytes)) at the last sample (peak \(Formatting.bytes(peak))), CPU \(String(format: "%.2f", cpu)) s over its last \(Formatting.duration(last.at - record.samples[0].at)) (\(record.samples.count) samples)"
            )
        }
        if !record.lines.isEmpty {
            lines.append("  last \(record.lines.count) log line(s):")
            for line in record.lines { lines.append("    \(Formatting.clock(line.at)) \(line.level): \(line.message)") }
        }
        if let backtrace = record.backtrace {
            lines.append("  backtrace:")
            for line in backtrace.split(separator: "\n") { lines.append("    \(line)") }
        }
        return lines
    }
}
