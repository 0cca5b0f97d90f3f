import FoundationEssentials
import Glibc
import PoolDemo
import PoolEngine

/// A Prometheus scrape of a real pool of `workers` slots: the metrics worker takes a snapshot
/// of shared memory and renders it per request. The floor is a 404 from the same server on
/// the same connection: the HTTP round trip without the snapshot and the rendering.
enum MetricsBenchmarks {
    static func run(workers: Int, scrapes: Int) async {
        let port = HTTPBenchmarks.freePort()
        let pool = WorkerPool(
            name: "bench-metrics-\(getpid())", entryPoints: DemoPool.entryPoints,
            configuration: WorkerPool.Configuration(stopTimeout: .seconds(10), handlesSignals: false), logger: quietLogger)
        // Safe: valid by construction; describeGroup only fails after run().
        try! pool.describeGroup(WorkerGroup(entryPoint: "demo-job", kind: .job, minWorkers: workers - 1, name: "jobs"))
        try! pool.describeGroup(try! PrometheusGroup(address: "127.0.0.1:\(port)", name: "metrics"))
        let task = Task { try await pool.run() }
        await pool.awaitStart()
        // Real figures in every family: jobs run on many workers (their histograms are not
        // empty) and the watcher has sampled every worker's memory and CPU.
        for _ in 0..<2000 { _ = try? await pool.submitJob(Array("echo x".utf8), to: "jobs") }
        try? await Task.sleep(for: .milliseconds(1500))
        guard let connection = Connection(port: port) else {
            print("# metrics_scrape: cannot connect to the metrics worker on port \(port)")
            pool.stop()
            _ = try? await task.value
            return
        }
        var scrapeTimes: [Double] = []
        var floorTimes: [Double] = []
        var bytes = 0
        for round in 0..<(scrapes + 3) {
            let start = nowMicroseconds()
            guard let size = connection.get("/metrics", expect: 200) else { break }
            let scraped = nowMicroseconds() - start
            let floorStart = nowMicroseconds()
            guard connection.get("/nothing", expect: 404) != nil else { break }
            let floor = nowMicroseconds() - floorStart
            // The first rounds warm the connection and the worker's code paths.
            if round >= 3 {
                scrapeTimes.append(scraped / 1000)
                floorTimes.append(floor / 1000)
                bytes = size
            }
        }
        connection.close()
        pool.stop()
        _ = try? await task.value
        guard scrapeTimes.count == scrapes else {
            print("# metrics_scrape: the metrics worker stopped answering after \(scrapeTimes.count) scrapes")
            return
        }
        Figure(
            name: "metrics_scrape_\(workers)_workers", samples: scrapeTimes, floor: floorTimes, target: 5,
            note: "GET /metrics of a real pool of \(workers) slots over keep-alive HTTP, \(scrapes) scrapes, \(bytes) bytes each; floor: a 404 from the same server on the same connection"
        ).print()
    }

    /// A keep-alive HTTP/1.1 connection that reads a content-length body.
    final class Connection {
        let fd: Int32
        private var pending: [UInt8] = []
        private var buffer = [UInt8](repeating: 0, count: 65536)

        init?(port: Int) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(fd)
                return nil
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }

        func close() { Glibc.close(fd) }

        /// Sends a GET and reads the whole reply; the body's size, or nil on another status or an error.
        func get(_ path: String, expect status: Int) -> Int? {
            let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
            guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return nil }
            let separator = Array("\r\n\r\n".utf8)
            while true {
                if let end = pending.firstRange(of: separator) {
                    let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self).lowercased()
                    let lines = head.split(separator: "\r\n")
                    let code = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
                    let length = lines.first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if pending.count >= end.upperBound + length {
                        pending.removeFirst(end.upperBound + length)
                        return code == status ? length : nil
                    }
                }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n <= 0 { return nil }
                pending += buffer[0..<n]
            }
        }
    }
}
