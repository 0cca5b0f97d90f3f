// What a group that runs a program (`command:`) may say, checked before anything runs: the
// mistakes a spawn would only find at 3 a.m. (a job group with a command, a user that does not
// exist, a probe that can never succeed) are configuration errors with their key path.
extension PoolValidator {
    /// - Returns: a digest of the envFile's entries, when it has one: a file edited since the
    ///   pool started changes the group's definition, so `apply` rolls the group.
    static func validate(_ program: ExternalProgram, of group: WorkerGroup, path: String) throws(ConfigurationError) -> UInt64? {
        if !group.entryPoint.isEmpty {
            throw ConfigurationError(
                path: "\(path).command", message: "give either 'entryPoint' (a Swift worker) or 'command' (a program), not both")
        }
        guard let first = program.arguments.first, !first.isEmpty else {
            throw ConfigurationError(path: "\(path).command", message: "must name a program: a list such as [\"python3\", \"app.py\"]")
        }
        if program.arguments.contains(where: { $0.utf8.contains(0) }) {
            throw ConfigurationError(path: "\(path).command", message: "an argument contains a NUL byte")
        }
        if group.kind == .job {
            throw ConfigurationError(
                path: "\(path).command",
                message: "a job group runs Swift job handlers; a command can only run in a service or reactor group")
        }
        if !group.jobGroups.isEmpty {
            throw ConfigurationError(
                path: "\(path).jobGroups", message: "a program cannot send jobs (job clients are Swift-only); remove 'jobGroups'")
        }
        if group.jobExecutor != nil {
            throw ConfigurationError(path: "\(path).jobs", message: "only job groups run jobs")
        }
        if case .probe(let probe) = program.readiness {
            try validate(probe, path: "\(path).ready")
        }
        if let watchdog = program.watchdog {
            try check(watchdog, "\(path).watchdog", positive: true, to: ConfigurationLimits.longestTimeout)
        }
        if program.user != nil || program.group != nil {
            do {
                _ = try Posix.credentials(user: program.user, group: program.group)
            } catch {
                throw ConfigurationError(path: "\(path).\(program.user != nil ? "user" : "group")", message: "\(error)")
            }
        }
        var digest: UInt64?
        if let file = program.environmentFile {
            do {
                let entries = try EnvironmentFile.read(file)
                var entriesDigest = DefinitionDigest()
                for entry in entries { entriesDigest.add("\(entry.key)=\(entry.value)\n".utf8) }
                digest = entriesDigest.value
            } catch {
                throw ConfigurationError(path: "\(path).envFile", message: "\(error)")
            }
        }
        if let directory = program.workingDirectory, !Posix.isEnterableDirectory(directory) {
            throw ConfigurationError(path: "\(path).workingDirectory", message: "\(directory) is not a directory the watcher can enter")
        }
        return digest
    }

    private static func validate(_ probe: ReadinessProbe, path: String) throws(ConfigurationError) {
        try check(probe.interval, "\(path).interval", positive: true, to: ConfigurationLimits.longestTimeout)
        try check(probe.timeout, "\(path).timeout", positive: true, to: ConfigurationLimits.longestTimeout)
        try check(probe.initialDelay, "\(path).initialDelay", to: ConfigurationLimits.longestTimeout)
        if !(1...1000).contains(probe.failureThreshold) {
            throw ConfigurationError(
                path: "\(path).failureThreshold", message: "must be between 1 and 1000 (got \(probe.failureThreshold))")
        }
        switch probe.check {
        case .tcp(_, let port), .http(_, let port, _):
            if !(1...65535).contains(port) {
                throw ConfigurationError(path: path, message: "port \(port) is not between 1 and 65535")
            }
        case .exec(let command):
            if command.first?.isEmpty ?? true {
                throw ConfigurationError(path: "\(path).exec", message: "must name a program to run")
            }
        }
    }

    /// The default name of a program group: its program's file name.
    static func programName(_ program: ExternalProgram) -> String {
        let first = program.arguments.first ?? "program"
        return first.split(separator: "/").last.map(String.init) ?? first
    }
}
