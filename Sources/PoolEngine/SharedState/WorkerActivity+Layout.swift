extension WorkerActivity {
    /// Zeroes the fields that describe one process rather than the slot's totals (what it has
    /// in flight), between processes. Plain stores rather than a key-path table: a worker does
    /// this before it says ready, and a key path's first use instantiates it at run time.
    mutating func resetPerProcess() {
        jobsInFlight = 0
        inFlightWeight = 0
        connectionsActive = 0
        currentJobID = 0
        currentJobSince = 0
    }

    // The pairing of fields with record offsets, written out rather than as a key-path table:
    // key paths made decoding a 1,000-slot snapshot several times slower (commit d60c8ca).

    /// Builds the value from words read at record offsets.
    ///
    /// Counters are capped with ``SharedLayout/capped(_:)``: a corrupt segment must not make a sum
    /// over the workers (the console's totals) overflow. Ids and times are taken as they are.
    @inline(__always)
    init(reading word: (Int) -> UInt64) {
        typealias A = SharedLayout.Activity
        func count(_ offset: Int) -> UInt64 { UInt64(SharedLayout.capped(word(offset))) }
        self.init()
        jobsAccepted = count(A.jobsAccepted)
        jobsProcessed = count(A.jobsProcessed)
        jobsErrors = count(A.jobsErrors)
        jobsRejected = count(A.jobsRejected)
        jobsInFlight = count(A.jobsInFlight)
        inFlightWeight = count(A.inFlightWeight)
        connectionsAccepted = count(A.connectionsAccepted)
        connectionsProcessed = count(A.connectionsProcessed)
        connectionsErrors = count(A.connectionsErrors)
        connectionsActive = count(A.connectionsActive)
        currentJobID = word(A.currentJobID)
        currentJobSince = word(A.currentJobSince)
        lastUpdate = word(A.lastUpdate)
        jobsProcessedBeforeStart = count(A.jobsProcessedBeforeStart)
    }

    /// Calls `body` with each field's record offset and value.
    func forEachWord(_ body: (Int, UInt64) -> Void) {
        typealias A = SharedLayout.Activity
        body(A.jobsAccepted, jobsAccepted)
        body(A.jobsProcessed, jobsProcessed)
        body(A.jobsErrors, jobsErrors)
        body(A.jobsRejected, jobsRejected)
        body(A.jobsInFlight, jobsInFlight)
        body(A.inFlightWeight, inFlightWeight)
        body(A.connectionsAccepted, connectionsAccepted)
        body(A.connectionsProcessed, connectionsProcessed)
        body(A.connectionsErrors, connectionsErrors)
        body(A.connectionsActive, connectionsActive)
        body(A.currentJobID, currentJobID)
        body(A.currentJobSince, currentJobSince)
        body(A.lastUpdate, lastUpdate)
        body(A.jobsProcessedBeforeStart, jobsProcessedBeforeStart)
    }
}
