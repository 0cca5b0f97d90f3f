import PoolEngine
import PoolTopCLI

// First, before anything awaits: this process's tasks run on threads of its own, so an idle
// watcher is not woken every second by libdispatch (it does nothing in a worker; decision 0015).
TaskThreads.install()

// A binary that wrongly starts a thread before `runIfWorker`: its fork server must not fork.
startIdleThreadIfAsked()

// Worker entry points for the integration tests: each does one observable thing and
// writes what it did into the test's own directory (POOLTOP_TEST_DIR). Spawned as a worker, it
// runs one; otherwise it is a binary of one's own under PoolTopCLI, with every pooltop command
// (the tests run `PoolFixtures run` and its operator commands through it).
await PoolTopCLI.main(entryPoints: FixtureEntryPoints.all, commandName: "pool-fixtures")
