import Testing

@testable import PoolEngine


/// Lists of code facts in docs/ are kept in step with the code.
@Suite("Documentation matches the code")
struct DocumentationTests {
    static let repositoryRoot: String = {
        // This file is Tests/PoolEngineTests/DocumentationTests.swift.
        var path = "\(#filePath)"
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path
    }()

    static func read(_ relative: String) -> String {
        let bytes = (try? Posix.readFile("\(repositoryRoot)/\(relative)")) ?? []
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The backticked first cells of the table rows under `heading`.
    static func tableKeys(_ text: String, heading: String) -> [String] {
        var inSection = false
        var keys: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("## ") { inSection = line.hasPrefix("## \(heading)") }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(3)
            if let end = cell.firstIndex(of: "`") { keys.append(String(cell[..<end])) }
        }
        return keys
    }

    @Test("docs/control-protocol.md lists exactly the codes a refused request or command can carry")
    func commandErrorCodes() {
        let documented = Set(Self.tableKeys(Self.read("docs/control-protocol.md"), heading: "Responses"))
        #expect(!documented.isEmpty)
        let codes = CommandError.Code.allCases.map(\.rawValue) + ControlErrorCode.allCases.map(\.rawValue)
        #expect(documented == Set(codes), "docs/control-protocol.md lists \(documented.sorted()); the code has \(codes.sorted())")
    }

    @Test("docs/configuration.md lists exactly the keys the parser accepts, section by section")
    func configurationKeys() {
        let text = Self.read("docs/configuration.md")
        #expect(!text.isEmpty)
        #expect(Set(Self.tableKeys(text, heading: "Pool keys")) == Set(PoolConfiguration.poolKeys))
        #expect(Set(Self.tableKeys(text, heading: "Group keys")) == Set(PoolConfiguration.groupKeys))
        #expect(Set(Self.tableKeys(text, heading: "Restart keys")) == Set(PoolConfiguration.restartKeys))
        #expect(Set(Self.tableKeys(text, heading: "Backoff keys")) == Set(PoolConfiguration.backoffKeys))
        #expect(Set(Self.tableKeys(text, heading: "Job keys")) == Set(PoolConfiguration.jobsKeys))
        #expect(Set(Self.tableKeys(text, heading: "Scaling keys")) == Set(PoolConfiguration.scalingKeys))
        #expect(Set(Self.tableKeys(text, heading: "Recycle keys")) == Set(PoolConfiguration.recycleKeys))
        #expect(Set(Self.tableKeys(text, heading: "Probe keys")) == Set(PoolConfiguration.readyKeys))
    }

    @Test("docs/reliability.md gives every configuration range exactly as the validator enforces it")
    func configurationRanges() {
        let text = Self.read("docs/reliability.md")
        #expect(!text.isEmpty)
        var rows: [String: String] = [:]
        var inSection = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") { inSection = line == "### Configuration values" }
            guard inSection, line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|").map { $0.split(separator: " ").joined(separator: " ") }
            guard cells.count >= 2 else { continue }
            rows[String(cells[0].dropFirst().dropLast())] = cells[1]
        }
        #expect(rows.count == ConfigurationLimits.documented.count)
        for (key, range) in ConfigurationLimits.documented {
            #expect(rows[key] == range, "\(key): the docs say \(rows[key] ?? "nothing"), the code \(range)")
        }
    }

    @Test("docs/worker-lifecycle.md describes every worker state and every exit reason")
    func lifecycleTerms() {
        let text = Self.read("docs/worker-lifecycle.md")
        for state in WorkerState.allCases {
            #expect(text.contains("| `\(state.rawValue)` |"), "state \(state.rawValue) is not in the states table")
        }
        for reason in ExitReason.allCases {
            #expect(text.contains("`\(reason.rawValue)`"), "exit reason \(reason.rawValue) is not described")
        }
    }

    @Test("the example in docs/configuration.md is a valid pool description")
    func configurationExampleParses() throws {
        let text = Self.read("docs/configuration.md")
        let start = try #require(text.range(of: "```yaml\n"))
        let end = try #require(text[start.upperBound...].range(of: "```"))
        let yaml = String(text[start.upperBound..<end.lowerBound])
        var entryPoints = EntryPoints()
        entryPoints.register("demo-job") { NoWork() }
        entryPoints.register("ticker") { NoWork() }
        let (_, description) = try PoolConfiguration.parse(yaml: yaml, entryPoints: entryPoints)
        #expect(description.groups.map(\.name) == ["jobs", "ticker"])
    }
}

private struct NoWork: WorkerEntryPoint {
    func run() async throws {}
}
