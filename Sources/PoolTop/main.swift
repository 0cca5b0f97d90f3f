import PoolDemo
import PoolTopCLI

// pooltop is `PoolTopCLI` with the demo's entry points and the demo pool as its default: the
// same one call a Swift developer's own binary makes with its own.
await PoolTopCLI.main(
    entryPoints: DemoPool.entryPoints, defaultConfiguration: .yaml(DemoPool.configuration, name: "<demo pool>"),
    commandName: "pooltop")
