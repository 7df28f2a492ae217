import CHostSupport
import DriverABI
import Foundation
import Host
import JSON
import Logging
import NIOPosix
import PostgresNIO
import PostgresStore
import Synchronization

/// The durable job queue (issue 12), on SQLite and on PostgreSQL, beside pgqueuer on the same
/// PostgreSQL in the same run (Benchmarks/queue/peer_pgqueuer.py):
///
/// - throughput of no-op jobs: N jobs queued, then W workers drain them (dequeue → run →
///   complete); jobs/s = N / drain time, for W = 1, 4, 16. Each worker takes up to 10 jobs per
///   dequeue and runs up to 40 at once (pgqueuer: batch_size 10, its default, and no cap on
///   running jobs; each of its workers is a process of its own).
/// - latency enqueue → job start with one idle worker, p50 and p99 (goal with PostgreSQL:
///   p50 < 3 ms, p99 < 15 ms; graphile-worker's ~4 ms average is the anchor).
/// - rescue: a worker that stops heartbeating (what a SIGKILLed worker looks like to the
///   database) — time from its last heartbeat until another worker starts the job again, for a
///   5 s lease (goal: ≤ the lease plus one rescue pass).
///
/// Needs NOVA_TEST_PG_DSN (run under Tests/servers/with-servers.sh; `make bench` does) and, for
/// the peer, NOVA_BENCH_PYTHON with pgqueuer and asyncpg (`make bench` makes that virtualenv).
/// NOVA_QUEUE_BENCH_JOBS sets N (default 5000).
enum QueueBench {
    static let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    static func run() async throws {
        let env = ProcessInfo.processInfo.environment
        guard let dsn = env["NOVA_TEST_PG_DSN"], !dsn.isEmpty else {
            say("  NOVA_TEST_PG_DSN is not set: run under Tests/servers/with-servers.sh (make bench does)")
            return
        }
        let jobs = Int(env["NOVA_QUEUE_BENCH_JOBS"] ?? "") ?? 5000
        let dir = FileManager.default.currentDirectoryPath + "/.nova-bench-queue"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        say("  throughput of no-op jobs (\(jobs) queued, then drained; a worker takes up to 10 per dequeue and runs up to 40 at once — pgqueuer: batch_size 10, no cap on running jobs):")
        var pg: [Int: Double] = [:]
        for workers in [1, 4, 16] {
            progress("draining with \(workers) worker(s)")
            let url = try await freshDatabase(dsn)
            let sqlite = dir + "/w\(workers).sqlite"
            let s = try await drain(jobs: jobs, workers: workers) { try SQLiteStore(path: sqlite) }
            let p = try await drain(jobs: jobs, workers: workers) { try await PostgresStore.connect(url: url, maxConnections: 2) }
            pg[workers] = p
            say("    \("\(workers) worker(s)".padding(toLength: 12, withPad: " ", startingAt: 0)) SQLite \(String(format: "%8.0f", s)) jobs/s   PostgreSQL \(String(format: "%8.0f", p)) jobs/s")
        }
        progress("pgqueuer")
        let peer = runPeer(dsn: dsn, jobs: jobs)
        if let peer {
            for workers in [1, 4, 16] {
                guard let theirs = peer.throughput[workers], let ours = pg[workers] else { continue }
                say("    pgqueuer \(peer.version), \(workers) worker process(es): \(String(format: "%8.0f", theirs)) jobs/s   ratio nova/pgqueuer (PostgreSQL) \(String(format: "%.2f", ours / theirs))×")
            }
        }

        progress("latency")
        let url = try await freshDatabase(dsn)
        let pgLatency = try await latency(samples: 500) { try await PostgresStore.connect(url: url, maxConnections: 2) }
        // One process, one SQLite store: producer and worker share it (and its wake-up signal).
        let sqliteStore = try SQLiteStore(path: dir + "/latency.sqlite")
        let sqLatency = try await latency(samples: 500) { sqliteStore }
        say("  latency enqueue → job start, one idle worker, 500 jobs one at a time:")
        say("    PostgreSQL (LISTEN/NOTIFY wake-up)  p50 \(Measure.fmt(pgLatency.p50))   p99 \(Measure.fmt(pgLatency.p99))   (goal p50 < 3 ms, p99 < 15 ms)")
        say("    SQLite (in-process wake-up)         p50 \(Measure.fmt(sqLatency.p50))   p99 \(Measure.fmt(sqLatency.p99))")
        if let peer, let p50 = peer.latencyP50, let p99 = peer.latencyP99 {
            say("    pgqueuer \(peer.version)                    p50 \(Measure.fmt(p50))   p99 \(Measure.fmt(p99))   ratio p50 \(String(format: "%.2f", p50 / pgLatency.p50))× (above 1: nova is faster)")
        }

        let rescueURL = try await freshDatabase(dsn)
        let rescue = try await rescueLatency(leaseMs: 5_000) { try await PostgresStore.connect(url: rescueURL, maxConnections: 2) }
        say("  rescue after a worker stops heartbeating (lease 5 s, PostgreSQL): restarted \(Measure.fmt(rescue)) after its last heartbeat (\(String(format: "%.2f", rescue / 5e9))× the lease)")
    }

    /// A figure on stdout, written at once (print's buffer would hold it back through a pipe).
    static func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    /// Progress on stderr (the figures go to stdout).
    static func progress(_ s: String) { FileHandle.standardError.write(Data("  … \(s)\n".utf8)) }

    /// A no-op handler that counts the jobs it ran and notes when each one started.
    final class Counter: JobHandler, Sendable {
        let count = Atomic<Int>(0)
        let onStart: @Sendable (Job) -> Void
        init(onStart: @escaping @Sendable (Job) -> Void = { _ in }) { self.onStart = onStart }
        func perform(_ job: Job, worker: String) async -> JobCompletion {
            onStart(job)
            count.add(1, ordering: .relaxed)
            return .succeeded(result: nil)
        }
        func requestCancel(_ job: Job) {}
    }

    /// Queues `jobs` no-op jobs, then times `workers` workers draining them; jobs/s.
    static func drain(jobs: Int, workers: Int, open: @escaping @Sendable () async throws -> any JobQueueStore) async throws -> Double {
        let producer = try await open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            let per = (jobs + 15) / 16
            for p in 0..<16 {
                group.addTask {
                    for i in (p * per)..<min(jobs, (p + 1) * per) { _ = try await producer.enqueue(JobSpec(kind: "noop", payload: .int(i))) }
                }
            }
            try await group.waitForAll()
        }
        var stores: [any JobQueueStore] = []
        for _ in 0..<workers { stores.append(try await open()) }
        let handler = Counter()
        let pool = stores.map { JobWorker(queue: $0, handlers: ["noop": handler], options: JobWorkerOptions(concurrency: 40, batchSize: 10, pollMs: 100)) }
        let t0 = nova_monotonic_ns()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for w in pool { group.addTask { await w.run() } }
            // Done when every job's completion is committed.
            while try await producer.countJobs(JobFilter(states: [.succeeded])) < jobs { try await Task.sleep(for: .milliseconds(5)) }
            for w in pool { w.stop() }
            try await group.waitForAll()
        }
        let seconds = Double(nova_monotonic_ns() - t0) / 1e9
        close([producer] + stores)
        return Double(jobs) / seconds
    }

    /// Enqueue → handler start, one job at a time with one idle worker; p50 and p99 in ns.
    static func latency(samples: Int, open: @escaping @Sendable () async throws -> any JobQueueStore) async throws -> (p50: Double, p99: Double) {
        let producer = try await open()
        let consumer = try await open()
        let started = Mutex<[String: Int64]>([:])
        let arrived = WakeSignal()
        let handler = Counter { job in
            started.withLock { $0[job.id] = nova_monotonic_ns() }
            arrived.signal()
        }
        let worker = JobWorker(queue: consumer, handlers: ["noop": handler], options: JobWorkerOptions(concurrency: 1, pollMs: 10_000))
        var deltas: [Double] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            try await Task.sleep(for: .milliseconds(300))  // the worker is idle, waiting for a wake-up
            for i in 0..<(samples + 20) {
                let ticket = arrived.ticket()
                let id = "lat-\(i)"
                let t0 = nova_monotonic_ns()
                _ = try await producer.enqueue(JobSpec(id: id, kind: "noop", payload: .null))
                while started.withLock({ $0[id] }) == nil { await arrived.wait(since: ticket, timeoutMs: 30_000) }
                if i >= 20 { deltas.append(Double(started.withLock { $0[id]! } - t0)) }  // 20 warm-up jobs
                try await Task.sleep(for: .milliseconds(2))  // let the worker go idle again
            }
            worker.stop()
            try await group.waitForAll()
        }
        close([producer, consumer])
        let sorted = deltas.sorted()
        return (Measure.median(sorted), sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
    }

    /// A job leased by a worker that never heartbeats; ns from its lease start (the last sign
    /// of life) until a live worker starts it again.
    static func rescueLatency(leaseMs: Int, open: @escaping @Sendable () async throws -> any JobQueueStore) async throws -> Double {
        let store = try await open()
        _ = try await store.enqueue(JobSpec(id: "rescue-me", kind: "noop", payload: .null))
        let t0 = nova_monotonic_ns()
        _ = try await store.dequeue(queues: [JobQueueLimits.defaultQueue], worker: "killed", limit: 1, leaseMs: leaseMs)
        let startedAt = Atomic<Int64>(0)
        let handler = Counter { _ in startedAt.store(nova_monotonic_ns(), ordering: .relaxed) }
        let live = try await open()
        let worker = JobWorker(queue: live, handlers: ["noop": handler], options: JobWorkerOptions(concurrency: 1, leaseMs: leaseMs))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            while startedAt.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            worker.stop()
            try await group.waitForAll()
        }
        close([store, live])
        return Double(startedAt.load(ordering: .relaxed) - t0)
    }

    static func close(_ stores: [any JobQueueStore]) {
        for s in stores { (s as? PostgresStore)?.close() }
    }

    /// A new empty database on the server of `dsn`; its URL.
    static func freshDatabase(_ dsn: String) async throws -> String {
        guard var url = URLComponents(string: dsn), let host = url.host, let user = url.user else { throw JobQueueError("bad NOVA_TEST_PG_DSN") }
        var config = PostgresConnection.Configuration(host: host, port: url.port ?? 5432, username: user, password: url.password,
                                                      database: String(url.path.dropFirst()), tls: .disable)
        config.options.connectTimeout = .seconds(5)
        let conn = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(), configuration: config, id: 1, logger: logger)
        let name = "nova_bench_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        try await conn.query("CREATE DATABASE \(unescaped: String(name))", logger: logger)
        try await conn.close()
        url.path = "/" + name
        return url.string ?? dsn
    }

    struct Peer {
        var version: String
        var throughput: [Int: Double]
        var latencyP50: Double?
        var latencyP99: Double?
    }

    /// Runs Benchmarks/queue/peer_pgqueuer.py on a fresh database; nil (with a note) without it.
    static func runPeer(dsn: String, jobs: Int) -> Peer? {
        let python = ProcessInfo.processInfo.environment["NOVA_BENCH_PYTHON"] ?? "python3"
        let script = FileManager.default.currentDirectoryPath + "/Benchmarks/queue/peer_pgqueuer.py"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python, script, "--dsn", dsn, "--jobs", String(jobs)]
        // stderr to a file: pgqueuer logs a lot, and a full pipe nobody reads would stall it.
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("nova-bench-pgqueuer-\(getpid()).log").path
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errPath)
        do { try p.run() } catch {
            say("  pgqueuer peer not run: cannot start \(python): \(error)")
            return nil
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let errText = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        guard p.terminationStatus == 0, let json = try? JSONValue.parse(Array(data)) else {
            say("  pgqueuer peer not run (exit \(p.terminationStatus)): \(errText.suffix(600)) — install it with: pip install -r Benchmarks/queue/requirements.txt")
            return nil
        }
        var throughput: [Int: Double] = [:]
        for (k, v) in json["throughput"]?.objectValue ?? [:] { if let n = Int(k), let d = v.doubleValue { throughput[n] = d } }
        return Peer(version: json["version"]?.stringValue ?? "?", throughput: throughput,
                    latencyP50: json["latency_p50_ns"]?.doubleValue, latencyP99: json["latency_p99_ns"]?.doubleValue)
    }
}
