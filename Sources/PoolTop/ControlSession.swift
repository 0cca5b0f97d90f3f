import ArgumentParser
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
            printError("pooltop: \(error)")
            throw ExitCode(1)
        }
    }

    /// Says that no pool of that name runs, and which do; the exit status to throw.
    static func notRunning(_ pool: String) -> ExitCode {
        let running = RuntimeDirectory.poolNames().filter { RuntimeDirectory.isRunning(pool: $0) }
        let list = running.isEmpty ? "no pool is running" : "running pools: \(running.joined(separator: ", "))"
        printError("pooltop: no pool named '\(pool)' is running; \(list)")
        return ExitCode(1)
    }

    /// Sends a command; a refusal prints the pool's reason and exits 1.
    @discardableResult
    static func perform(_ pool: String, _ request: [String: JSONValue]) throws -> JSONValue {
        let client = try connect(pool)
        let response: JSONValue
        do {
            response = try client.request(request)
        } catch {
            printError("pooltop: \(error)")
            throw ExitCode(1)
        }
        guard response["ok"]?.bool == true else {
            printError("pooltop: pool '\(pool)' refused: \(response["error"]?.string ?? "\(response)")")
            throw ExitCode(1)
        }
        return response
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
