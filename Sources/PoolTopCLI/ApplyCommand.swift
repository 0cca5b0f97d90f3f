import ArgumentParser
import Foundation
import PoolEngine

/// `pooltop apply NAME FILE [--dry-run] [--json]`.
struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Change a running pool to match a configuration file, without stopping it.",
        discussion: """
            Prints the plan, then makes it: new min/max, restart policies, quotas and scaling take effect at once; a group whose workers would start differently (command, entryPoint, env, envFile, workingDirectory, job groups…) is rolled, one worker at a time; new groups start and removed groups stop, in dependency order.
            What cannot change live (a group's kind or listeners, a max beyond the slots it started with, the pid file…) is refused with the key and line, and the pool is left untouched.
            `pooltop status NAME` shows each group's definition hash, which the plan shows too.
            """)

    @Argument(help: "The pool's name.") var name: String
    @Argument(help: "The configuration file (pool.yaml).") var file: String
    @Flag(name: .long, help: "Print the plan only; change nothing.") var dryRun = false
    @Flag(name: .long, help: "Print the pool's answer as JSON.") var json = false

    func run() throws {
        let path = file.hasPrefix("/") ? file : FileManager.default.currentDirectoryPath + "/" + file
        let text: String
        do {
            text = try PoolConfiguration.readText(file: path)
        } catch {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        }
        let client = try ControlSession.connect(name)
        let response: JSONValue
        do {
            response = try client.request(
                ["command": .string("apply"), "configuration": .string(text), "file": .string(path), "dryRun": .bool(dryRun)],
                timeout: ControlSession.answerTimeout)
        } catch {
            printError("\(CLIContext.shared.commandName): \(error)")
            throw ExitCode(1)
        }
        if json {
            print(response.serialized)
            if response["ok"]?.bool != true { throw ExitCode(1) }
            return
        }
        if let plan = response["plan"]?.array {
            print("pool \(name): plan for \(file)")
            print(Self.planTable(plan))
        }
        guard response["ok"]?.bool == true else {
            if let refusals = response["refusals"]?.array {
                printError("\(CLIContext.shared.commandName): cannot apply this change while the pool runs; nothing was changed:")
                for refusal in refusals {
                    let line = refusal["line"]?.integer.map { ":\($0)" } ?? ""
                    printError("  \(file)\(line): \(refusal["path"]?.string ?? ""): \(refusal["message"]?.string ?? "")")
                }
            } else {
                printError("\(CLIContext.shared.commandName): pool '\(name)' refused: \(response["error"]?.string ?? "\(response)")")
            }
            throw ExitCode(1)
        }
        if dryRun {
            print("dry run: nothing was changed")
        } else if response["applied"]?.bool == true {
            print("applied; rolls go on one worker at a time (follow them with `\(CLIContext.shared.commandName) logs \(name)`)")
        } else {
            print("nothing to change")
        }
    }

    /// The plan as a table: group, action, what changes, the definition hash it will have.
    static func planTable(_ plan: [JSONValue]) -> String {
        var rows = [["GROUP", "ACTION", "DEFINITION", "CHANGES"]]
        for entry in plan {
            rows.append([
                entry["group"]?.string ?? "?", entry["action"]?.string ?? "?", entry["definition"]?.string ?? "",
                (entry["changes"]?.array ?? []).compactMap(\.string).joined(separator: ", "),
            ])
        }
        return table(rows)
    }
}
