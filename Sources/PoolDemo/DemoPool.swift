import PoolEngine

/// The bundled demo pool that `pooltop` runs when no configuration is given.
public enum DemoPool {
    /// Every entry point the demo binary knows.
    public static var entryPoints: EntryPoints {
        var entryPoints = EntryPoints()
        entryPoints.register("ticker") { Ticker() }
        entryPoints.register("demo-job") { DemoJobWorker() }
        entryPoints.register("job-submitter") { JobSubmitter() }
        entryPoints.register("http-hello") { HTTPHello() }
        return entryPoints
    }

    /// The demo pool's description, in the same YAML a user would write.
    public static let configuration = """
        name: demo
        stopTimeout: 10s
        groups:
          - name: jobs
            kind: job
            entryPoint: demo-job
            min: 2
            max: 4
            jobGroups: []
            # One process kept started ahead: a crashed worker's replacement is that process.
            standby: true
            restart:
              policy: always
              backoff: {initial: 100ms, factor: 2, max: 30s, resetAfter: 10s}
          - name: ticker
            kind: service
            entryPoint: ticker
            min: 1
            max: 1
            restart:
              policy: limited
              maxRestarts: 5
              window: 60s
          - name: submitter
            kind: service
            entryPoint: job-submitter
            min: 1
            max: 1
            jobGroups: [jobs]
          - name: http
            kind: reactor
            entryPoint: http-hello
            min: 2
            max: 4
            jobGroups: [jobs]
            listen: ["127.0.0.1:8080"]
          - name: metrics
            kind: service
            entryPoint: prometheus
            listen: ["127.0.0.1:9091"]
        """
}
