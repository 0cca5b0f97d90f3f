import Glibc
import Testing

@testable import PoolEngine

/// tmux on a private socket: a real terminal for the console, driven by keys and read back as text.
struct Tmux {
    let socket: String
    let directory: String

    func run(_ arguments: String) throws -> CommandOutput {
        try TestSupport.shell("tmux -L '\(socket)' \(arguments)", directory: directory)
    }

    func start(_ command: String, width: Int = 120, height: Int = 40) throws {
        _ = try run("new-session -d -s main -x \(width) -y \(height) \"\(command)\"")
    }

    /// Starts `pooltop <arguments>` in the session, tagged for the orphan check, in the terminal
    /// `environment` describes; `then` runs in the same shell once pooltop has ended.
    func startPooltop(
        _ arguments: String, tag: String, environment: String = "LANG=C.UTF-8 TERM=tmux-256color", then: String? = nil
    ) throws {
        let command = "env \(environment) PT_TEST_TAG=\(tag) '\(TestSupport.pooltopExecutable)' \(arguments)"
        try start(then.map { "\(command); \($0)" } ?? command)
    }

    func screen(_ target: String = "main") -> String {
        (try? run("capture-pane -p -t \(target)"))?.stdout ?? ""
    }

    func keys(_ keys: String, _ target: String = "main") throws {
        _ = try run("send-keys -t \(target) \(keys)")
    }

    func waitFor(_ text: String, in target: String = "main", timeout: Duration = .seconds(15)) async -> Bool {
        await TestSupport.eventually(timeout: timeout) { screen(target).contains(text) }
    }

    func kill() { _ = try? run("kill-server") }
}

@Suite("pooltop console end to end under tmux", .serialized)
struct ConsoleEndToEndTests {
    @Test("the console hosts a pool: scale, kill, job, attach elsewhere, detach, quit with nothing left")
    func hostedConsole() async throws {
        let name = TestSupport.uniqueName("console")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("--config '\(config)'", tag: name)
        #expect(await tmux.waitFor("GROUP"), "screen:\n\(tmux.screen())")
        #expect(await tmux.waitFor("ready"))
        func status() -> JSONValue? {
            (try? TestSupport.pooltop(["status", name, "--json"], directory: directory)).flatMap { try? JSONValue.parse($0.stdout) }
        }

        // + raises the selected group (jobs), and the pool agrees.
        try tmux.keys("+")
        #expect(await TestSupport.eventually { status()?["groups"]?.array?.first?["desired"]?.integer == 3 }, "screen:\n\(tmux.screen())\nstatus: \(String(describing: status()))")

        // k on the first worker, confirmed with y: a new process takes its slot.
        let before = status()?["workers"]?.array?.first?["pid"]?.integer
        try tmux.keys("Tab")
        try tmux.keys("k")
        #expect(await tmux.waitFor("SIGKILL?"), "screen:\n\(tmux.screen())")
        try tmux.keys("y")
        #expect(await TestSupport.eventually {
            let worker = status()?["workers"]?.array?.first
            return worker?["restarts"]?.integer == 1 && worker?["pid"]?.integer != before && worker?["state"]?.string == "ready"
        })
        let replacement = status()?["workers"]?.array?.first?["pid"]?.integer ?? -1
        #expect(await tmux.waitFor("\(replacement)"), "the screen shows the replacement's pid")

        // j opens the test-job form for the selected job group; Enter submits; the result list appears.
        try tmux.keys("Tab")
        try tmux.keys("j")
        #expect(await tmux.waitFor("Submit test jobs to group jobs"), "screen:\n\(tmux.screen())")
        try tmux.keys("Enter")
        #expect(await tmux.waitFor("#1 worker"), "screen:\n\(tmux.screen())")
        #expect(tmux.screen().contains(": hello from pooltop  (wait"))
        try tmux.keys("Escape")

        // Another console attaches in a second window, sees the same pool, and detaches.
        _ = try tmux.run("new-window -t main -n other \"env LANG=C.UTF-8 TERM=tmux-256color '\(TestSupport.pooltopExecutable)' attach \(name)\"")
        #expect(await tmux.waitFor("[attached]", in: "main:other"), "attached screen:\n\(tmux.screen("main:other"))")
        #expect(await tmux.waitFor("jobs", in: "main:other"))
        try tmux.keys("q", "main:other")
        #expect(await TestSupport.eventually { !(((try? tmux.run("list-windows -t main"))?.stdout ?? "other").contains("other")) })
        #expect(status()?["pool"]?["name"]?.string == name, "detaching left the pool running")

        // Quitting the hosting console asks, then stops the pool with nothing left behind.
        try tmux.keys("q", "main:0")
        #expect(await tmux.waitFor("Quit and stop pool", in: "main:0"))
        try tmux.keys("y", "main:0")
        #expect(await TestSupport.eventually { (try? tmux.run("has-session -t main"))?.status != .exited(0) })
        #expect(!Posix.isDirectory(path: RuntimeDirectory.path(pool: name)))
        #expect((try? Posix.sharedMemoryOwnerAndMode(name: SharedLayout.segmentName(pool: name, uid: Posix.userID))) == nil)
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a closed terminal stops a hosted console's pool and ends an attached console, leaving that pool running")
    func closedTerminal() async throws {
        let name = TestSupport.uniqueName("hangup")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let hosting = Tmux(socket: name, directory: directory)
        try hosting.startPooltop("--config '\(config)'", tag: name)
        #expect(await hosting.waitFor("ready"))

        let attachedTag = "\(name)-attached"
        let attaching = Tmux(socket: attachedTag, directory: directory)
        try attaching.startPooltop("attach \(name)", tag: attachedTag)
        #expect(await attaching.waitFor("[attached]"))
        attaching.kill()
        // The attached console goes (it must not spin on a dead terminal) and the pool stays.
        await TestSupport.expectNoOrphans(attachedTag)
        #expect(RuntimeDirectory.isRunning(pool: name))

        hosting.kill()
        // Every process of the hosted console, the watcher and its workers, ends; nothing is left.
        await TestSupport.expectNoOrphans(name)
        #expect(await TestSupport.eventually { !Posix.isDirectory(path: RuntimeDirectory.path(pool: name)) })
        #expect((try? Posix.sharedMemoryOwnerAndMode(name: SharedLayout.segmentName(pool: name, uid: Posix.userID))) == nil)
    }

    @Test("pooltop top --once prints one frame of a running pool")
    func topOnce() async throws {
        let name = TestSupport.uniqueName("top")
        let directory = TestSupport.makeDirectory(name)
        let watcher = try ExternalWatcher(
            arguments: ["run", "--config", WatcherProcessTests().poolFile(directory, name: name)], tag: name, directory: directory)
        #expect(await watcher.waitForLog("ready", count: 3))
        let output = try TestSupport.pooltop(["top", "--once", name, "--width", "100", "--height", "20"], directory: directory)
        #expect(output.status == .exited(0), "\(output)")
        #expect(output.stdout.contains("pooltop \(name)") && output.stdout.contains("ticker"), "\(output.stdout)")
        #expect(output.stdout.split(separator: "\n", omittingEmptySubsequences: false).count <= 21)
        watcher.signal(SIGTERM)
        #expect(watcher.waitForExit() == .exited(0))
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a console that crashes (SIGSEGV) gives the terminal back: modes restored, full-screen left; its segment, control socket and runtime directory are removed, its workers exit")
    func crashRestoresTerminal() async throws {
        let name = TestSupport.uniqueName("crash")
        let directory = TestSupport.makeDirectory(name)
        let config = WatcherProcessTests().poolFile(directory, name: name)
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        // After pooltop ends, the same shell records the terminal's modes and says so. Swift's
        // backtracer, which the guard hands the signal to, prints the crash on the restored
        // terminal; told not to wait for a key there.
        let after = "\(directory)/stty.txt"
        try tmux.startPooltop(
            "--config '\(config)'", tag: name, environment: "LANG=C.UTF-8 TERM=tmux-256color SWIFT_BACKTRACE=interactive=no",
            then: "stty -a > '\(after)'; echo SHELL-AGAIN; sleep 60")
        #expect(await tmux.waitFor("ready"), "screen:\n\(tmux.screen())")
        let snapshot = try PoolSnapshot.read(pool: name)
        let segment = "/dev/shm/pooltop-\(Posix.userID)-\(name)"
        #expect(access(segment, F_OK) == 0)
        kill(snapshot.pool.pid, SIGSEGV)
        #expect(await tmux.waitFor("SHELL-AGAIN"), "screen:\n\(tmux.screen())")
        let modes = TestSupport.lines(directory, "stty.txt").joined(separator: " ")
        #expect(modes.contains(" icanon") && modes.contains(" echo "), "cooked mode and echo are back: \(modes)")
        #expect(!modes.contains("-icanon") && !modes.contains("-echo "), "\(modes)")
        // The alternate screen was left: the console's frame is gone from what the pane shows.
        #expect(!tmux.screen().contains("GROUP"), "screen:\n\(tmux.screen())")
        #expect(access(segment, F_OK) != 0, "the segment was removed")
        #expect(access(RuntimeDirectory.controlSocket(pool: name), F_OK) != 0, "the control socket was removed")
        await TestSupport.expectNoOrphans(name)
        // The last orphaned worker to leave removes the runtime directory the guard emptied.
        #expect(await TestSupport.eventually { access(RuntimeDirectory.path(pool: name), F_OK) != 0 }, "runtime directory left: \((try? Posix.listDirectory(RuntimeDirectory.path(pool: name))) ?? [])")
    }

    @Test("colours follow the terminal: 24-bit on xterm-direct, the 256 palette, 8 colours, none with NO_COLOR; ASCII stand-ins without a UTF-8 locale")
    func terminalCapabilities() async throws {
        let name = TestSupport.uniqueName("colours")
        let directory = TestSupport.makeDirectory(name)
        let config = "\(directory)/pool.yaml"
        TestSupport.write(config, "name: \(name)\ngroups:\n  - {name: jobs, kind: job, entryPoint: demo-job, min: 1}\n")
        // The header's "pooltop" is #5FD7FF in the default theme.
        let cases: [(environment: String, present: [String], absent: [String])] = [
            ("LANG=C.UTF-8 TERM=xterm-direct", ["\u{1B}[38;2;95;215;255mpooltop", "↑↓"], ["\u{1B}[38;5;"]),
            ("LANG=C.UTF-8 TERM=tmux-256color", ["\u{1B}[38;5;81mpooltop", "↑↓"], ["\u{1B}[38;2;"]),
            ("LANG=C.UTF-8 TERM=xterm", ["\u{1B}[36mpooltop"], ["\u{1B}[38;5;", "\u{1B}[38;2;"]),
            // No colour at all: the table heading is drawn reversed instead.
            ("LANG=C.UTF-8 TERM=tmux-256color NO_COLOR=1", ["7m\u{1B}[39m\u{1B}[49mGROUP"], ["\u{1B}[38;", "\u{1B}[48;", "\u{1B}[36m"]),
            ("LANG=C LC_ALL=C TERM=tmux-256color", ["^v", "\u{1B}[38;5;81mpooltop"], ["↑", "▁"]),
        ]
        for (index, item) in cases.enumerated() {
            let tmux = Tmux(socket: "\(name)-\(index)", directory: directory)
            defer { tmux.kill() }
            // `swift test` sets NO_COLOR for its children; each case says what it wants.
            try tmux.startPooltop("--config '\(config)'", tag: name, environment: "-u NO_COLOR \(item.environment)")
            #expect(await tmux.waitFor("ready"), "\(item.environment): \(tmux.screen())")
            let screen = (try? tmux.run("capture-pane -e -p -t main"))?.stdout ?? ""
            for text in item.present { #expect(screen.contains(text), "\(item.environment): no \(text.debugDescription) in \(screen.prefix(600).debugDescription)") }
            for text in item.absent { #expect(!screen.contains(text), "\(item.environment): \(text.debugDescription) in \(screen.prefix(600).debugDescription)") }
            try tmux.keys("q")
            #expect(await tmux.waitFor("Quit and stop"))
            try tmux.keys("y")
            #expect(await TestSupport.eventually { (try? PoolSnapshot.read(pool: name)) == nil }, "\(item.environment): the pool stopped")
        }
        await TestSupport.expectNoOrphans(name)
    }

    @Test("a hosted pool that cannot start (its port is taken) ends the console with the reason and exit status 1, nothing left")
    func hostedPoolFailsToStart() async throws {
        let name = TestSupport.uniqueName("busyport")
        let directory = TestSupport.makeDirectory(name)
        let (port, holder) = try SocketClient.occupiedPort()
        defer { close(holder) }
        let config = "\(directory)/pool.yaml"
        TestSupport.write(config, "name: \(name)\ngroups:\n  - {name: web, kind: reactor, entryPoint: http-hello, min: 1, listen: [\"127.0.0.1:\(port)\"]}\n")
        let tmux = Tmux(socket: name, directory: directory)
        defer { tmux.kill() }
        try tmux.startPooltop("--config '\(config)'", tag: name, then: "echo EXIT=\\$?; sleep 60")
        #expect(await tmux.waitFor("EXIT=1"), "screen:\n\(tmux.screen())")
        // The message may wrap at the pane's width.
        let screen = tmux.screen().split(separator: "\n").joined()
        #expect(screen.contains("failed: group 'web': listener 127.0.0.1:\(port)") && screen.contains("already in use"), "\(screen)")
        #expect(access("/dev/shm/pooltop-\(Posix.userID)-\(name)", F_OK) != 0)
        #expect(access(RuntimeDirectory.path(pool: name), F_OK) != 0)
        await TestSupport.expectNoOrphans(name)
    }
}
