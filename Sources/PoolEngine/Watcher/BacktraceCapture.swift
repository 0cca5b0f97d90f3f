import Glibc

/// Captures the backtrace of every thread of a hung worker, off the watcher's loop and bounded
/// in time (decision 0012): `eu-stack` (elfutils) when installed, else `gdb` in batch mode,
/// both attaching with ptrace, which works whatever the process is stuck in (a blocking call,
/// a deadlock, an endless loop, even SIGSTOP). Swift symbols are demangled with the Swift
/// runtime's own demangler. Without either tool, the kernel's view of each thread is given
/// instead (its name, state, wait channel and system call, from /proc).
enum BacktraceCapture {
    /// The tool's time limit; the core kills the process at ``WatcherCore/backtraceLimit`` anyway.
    static let toolLimit: Duration = .seconds(4)
    /// The most text kept of a capture.
    static let maximumBytes = 64 * 1024

    /// Starts a capture on a thread of its own; `done` gets the text (or why there is none).
    static func start(pid: Int32, worker: WorkerID, directory: String?, environment: [String], done: @escaping @Sendable (String) -> Void) {
        do {
            try DedicatedThread.start(name: "backtrace") {
                done(capture(pid: pid, worker: worker, directory: directory, environment: environment))
            }
        } catch {
            done("no backtrace: cannot start a thread for the capture: \(error)")
        }
    }

    static func capture(pid: Int32, worker: WorkerID, directory: String?, environment: [String]) -> String {
        let searchPath = ProgramLauncher.searchPath(in: environment)
        let tools: [(String, [String])] = [
            ("eu-stack", ["-p", "\(pid)"]),
            (
                "gdb",
                [
                    "-p", "\(pid)", "-batch", "-nx", "-q", "-ex", "set pagination off", "-ex", "set print thread-events off",
                    "-ex", "thread apply all bt",
                ]
            ),
        ]
        var problems: [String] = []
        for (tool, arguments) in tools {
            guard case .success(let path) = Posix.findExecutable(tool, searchPath: searchPath, directory: nil) else { continue }
            switch run(path, arguments, directory: directory ?? "/tmp", tag: "\(worker)-\(pid)", environment: environment) {
            case .success(let text):
                let cleaned = clean(text, tool: tool)
                if cleaned.contains("#") { return "captured with \(tool):\n" + SwiftDemangler.demangleSymbols(in: cleaned) }
                problems.append("\(tool) found no frames: \(text.split(separator: "\n").suffix(3).joined(separator: " | "))")
            case .failure(let why):
                problems.append("\(tool): \(why)")
            }
        }
        let why = problems.isEmpty ? "neither eu-stack nor gdb is installed" : problems.joined(separator: "; ")
        return "no backtrace (\(why)); what the kernel says of each thread:\n" + kernelView(pid: pid)
    }

    private struct ToolFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a tool with its output in a file of the runtime directory; killed at ``toolLimit``.
    private static func run(_ path: String, _ arguments: [String], directory: String, tag: String, environment: [String]) -> Result<String, ToolFailure> {
        let file = "\(directory)/backtrace-\(tag).txt"
        Posix.removeFile(file)
        defer { Posix.removeFile(file) }
        do {
            let output = try Posix.openForAppending(file)
            defer { Posix.close(output) }
            guard try Posix.runBounded(path: path, arguments: arguments, environment: environment, output: output, timeout: toolLimit) != nil
            else {
                return .failure(ToolFailure(description: "took longer than \(DurationParser.format(toolLimit))"))
            }
        } catch {
            return .failure(ToolFailure(description: "\(error)"))
        }
        guard case .bytes(let bytes)? = try? Posix.readRegularFile(file, limit: 16 << 20, timeoutNanoseconds: 1_000_000_000) else {
            return .failure(ToolFailure(description: "its output could not be read"))
        }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Keeps the frames and thread headers, drops the tools' chatter, and bounds the size.
    static func clean(_ text: String, tool: String) -> String {
        var kept: [Substring] = []
        var size = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.drop { $0 == " " }
            let keep =
                tool == "gdb"
                ? trimmed.hasPrefix("#") || trimmed.hasPrefix("Thread ")
                : trimmed.hasPrefix("#") || trimmed.hasPrefix("TID ") || trimmed.hasPrefix("PID ")
            guard keep else { continue }
            size += line.utf8.count + 1
            if size > maximumBytes {
                kept.append("… (cut at \(maximumBytes / 1024) KiB)")
                break
            }
            kept.append(line)
        }
        return kept.joined(separator: "\n")
    }

    /// Each thread's name, state, wait channel and current system call, from /proc.
    static func kernelView(pid: Int32) -> String {
        let tasks = ((try? Posix.listDirectory("/proc/\(pid)/task")) ?? []).compactMap { Int32($0) }.sorted()
        guard !tasks.isEmpty else { return "  (the process is gone)" }
        return tasks.map { tid in
            func read(_ name: String) -> String {
                guard case .bytes(let bytes)? = try? Posix.readRegularFile("/proc/\(pid)/task/\(tid)/\(name)", limit: 4096, timeoutNanoseconds: 100_000_000)
                else { return "?" }
                return String(decoding: bytes, as: UTF8.self).trimmingTrailingWhitespace
            }
            let stat = read("stat")
            let state = stat.split(separator: ")").last?.split(separator: " ").first.map(String.init) ?? "?"
            return "  thread \(tid) (\(read("comm"))): state \(state), waiting in \(read("wchan")), syscall \(read("syscall"))"
        }.joined(separator: "\n")
    }
}

extension String {
    fileprivate var trimmingTrailingWhitespace: String {
        var text = self
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return text
    }
}

