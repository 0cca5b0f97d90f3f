import PoolEngine
import PoolTopCLI

// First, before anything awaits: this process's tasks run on threads of its own, so an idle
// watcher is not woken every second by libdispatch (it does nothing in a worker; decision 0015).
TaskThreads.install()

// One binary is the watcher, the console and every worker. `WordsAPI` opens the console on
// pool.yaml, `WordsAPI run` runs it headless (systemd), and every other pooltop command is here.
var entryPoints = EntryPoints()
entryPoints.register("api") { API() }
entryPoints.register("words") { Words() }
await PoolTopCLI.main(entryPoints: entryPoints, defaultConfiguration: .file("pool.yaml"), commandName: "words-api")
