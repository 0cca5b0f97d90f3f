import PoolEngine

// Worker entry points for the integration tests: each does one observable thing and
// writes what it did into the test's own directory (POOLTOP_TEST_DIR).
await WorkerProcess.runIfWorker(entryPoints: FixtureEntryPoints.all)

// Not started as a worker: this binary has no watcher mode of its own.
print("PoolFixtures is a worker binary for pooltop's integration tests; the tests spawn it.")
