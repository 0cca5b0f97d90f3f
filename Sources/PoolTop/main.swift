import PoolDemo
import PoolEngine
import PoolTopCLI

// First, before anything awaits: this process's tasks run on threads of its own, so an idle
// watcher is not woken every second by libdispatch (it does nothing in a worker; decision 0015).
TaskThreads.install()

// pooltop is `PoolTopCLI` with the demo's entry points and the demo pool as its default: the
// same one call a Swift developer's own binary makes with its own.
await PoolTopCLI.main(
    entryPoints: DemoPool.entryPoints, defaultConfiguration: .yaml(DemoPool.configuration, name: "<demo pool>"),
    commandName: "pooltop")
