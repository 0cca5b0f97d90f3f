import ArgumentParser
import Glibc
import PoolEngine

/// What every operator command shares: connect to a pool by name, or say which pools run.
enum ControlSession {
    /// Connects to `pool`; an unknown name exits 1 with the list of running pools.
    static func connect(_ pool: String) throws -> ControlClient {
        do {
            return try ControlClient(pool: pool)
        } catch let error as ControlClientError where error.code == .notRunning {
            throw notRunning(pool)
        } catch {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        }
    }

    /// Says that no pool of that name runs, and which do; the exit status to throw.
    static func notRunning(_ pool: String) -> ExitCode {
        let running = RuntimeDirectory.poolNames().filter { RuntimeDirectory.isRunning(pool: $0) }
        let list = running.isEmpty ? "no pool is running" : "running pools: \(running.joined(separator: ", "))"
        printError("\(CLIContext.shared.commandName): no pool named '\(pool)' is running; \(list)")
        return ExitCode(1)
    }

    /// How long a command waits for the pool's answer: `POOLTOP_CONTROL_TIMEOUT` seconds, or 30.
    /// A stopped or wedged watcher still accepts connections (the kernel does), so without a
    /// limit a script would wait forever.
    static var answerTimeout: Duration {
        if let value = getenv("POOLTOP_CONTROL_TIMEOUT"), let seconds = Double(String(cString: value)), seconds > 0, seconds <= 86_400 {
            return .milliseconds(Int64(seconds * 1000))
        }
        return .seconds(30)
    }

    /// Sends a command; a refusal prints the pool's reason and exits 1, and so does no answer
    /// within `timeout` (nil: a job or a rolling restart, which take as long as they take).
    @discardableResult
    static func perform(_ pool: String, _ request: [String: JSONValue], timeout: Duration? = answerTimeout) throws -> JSONValue {
        try performText(pool, request, timeout: timeout).response
    }

    /// ``perform(_:_:timeout:)``, with the answer's text as the pool sent it (for a status,
    /// decoded from it by ``PoolSnapshot/fromStatusAnswer(_:)``).
    static func performText(
        _ pool: String, _ request: [String: JSONValue], timeout: Duration? = answerTimeout
    ) throws -> (response: JSONValue, text: String) {
        let client = try connect(pool)
        let response: JSONValue
        let text: String
        do {
            text = try client.requestText(request, timeout: timeout)
            response = try JSONValue.parse(text)
        } catch {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        }
        guard response["ok"]?.bool == true else {
            printError("\(CLIContext.shared.commandName): pool '\(pool)' refused: \(response["error"]?.string ?? "\(response)")")
            throw ExitCode(1)
        }
        return (response, text)
    }
}

/// Left-aligned columns separated by two spaces.
func table(_ rows: [[String]]) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: width)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    return rows.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}
