import Foundation
import Testing
import Host
import JSON
import PostgresStore

/// The contract of `JobQueueStore`, written against the protocol and run on SQLite and on
/// PostgreSQL. `Database` opens another connection (another process or host) to one fresh
/// database.
enum JobQueueConformance {
    typealias Database = @Sendable () async throws -> any JobQueueStore

    static func spec(_ id: String, priority: Int = 0, queue: String = "default", key: String? = nil, maxAttempts: Int = 3,
                     backoff: JobBackoff = JobBackoff(baseMs: 0, maxMs: 0), runAtMs: Int64? = nil) -> JobSpec {
        JobSpec(id: id, kind: "test", payload: ["n": .string(id)], queue: queue, priority: priority, runAtMs: runAtMs,
                uniqueKey: key, maxAttempts: maxAttempts, backoff: backoff)
    }

    static func nowMs() -> Int64 { Timestamps.wallNanos() / 1_000_000 }

    /// Higher priority first; equal priorities in enqueue order; only the queues asked for.
    static func priorityAndOrder(_ connect: Database) async throws {
        let q = try await connect()
        for (id, p) in [("low", -5), ("first", 0), ("high", 10), ("second", 0), ("third", 0)] { _ = try await q.enqueue(spec(id, priority: p)) }
        _ = try await q.enqueue(spec("elsewhere", priority: 100, queue: "other"))
        var order: [String] = []
        while let job = try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first { order.append(job.id) }
        #expect(order == ["high", "first", "second", "third", "low"])
        let batch = try await q.dequeue(queues: ["other", "default"], worker: "w", limit: 10, leaseMs: 60_000)
        #expect(batch.map(\.id) == ["elsewhere"])
        #expect(batch.first?.state == .running && batch.first?.attempt == 1 && batch.first?.worker == "w")
    }

    /// A job scheduled later is not leased before its time; one scheduled in the past is.
    static func scheduling(_ connect: Database) async throws {
        let q = try await connect()
        _ = try await q.enqueue(spec("later", runAtMs: nowMs() + 3_600_000))
        _ = try await q.enqueue(spec("earlier", runAtMs: nowMs() - 1_000))
        let got = try await q.dequeue(queues: ["default"], worker: "w", limit: 10, leaseMs: 60_000)
        #expect(got.map(\.id) == ["earlier"])
        #expect(try await q.job(id: "later")?.state == .available)
    }

    /// A unique key dedups while its job is pending or running, and frees once it ends.
    static func uniqueKeys(_ connect: Database) async throws {
        let q = try await connect()
        #expect(try await q.enqueue(spec("a", key: "k")).duplicate == false)
        let again = try await q.enqueue(spec("b", key: "k"))
        #expect(again.duplicate && again.job.id == "a")
        #expect(try await q.job(id: "b") == nil)
        let job = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        #expect(try await q.enqueue(spec("c", key: "k")).job.id == "a", "running still holds the key")
        #expect(try await q.finish(job, .succeeded(result: ["ok": true])))
        let after = try await q.enqueue(spec("d", key: "k"))
        #expect(!after.duplicate && after.job.id == "d")
        #expect(try await q.job(id: "a")?.result == ["ok": true])
        await #expect(throws: JobQueueError.self) { _ = try await q.enqueue(spec("d")) }
    }

    /// Failed attempts are retried after their backoff, then the job is dead with its history.
    static func retriesThenDead(_ connect: Database) async throws {
        let q = try await connect()
        _ = try await q.enqueue(spec("slow", backoff: JobBackoff(baseMs: 600_000, maxMs: 600_000)))
        let first = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        let before = nowMs()
        #expect(try await q.finish(first, .failed(error: "boom", retryable: true)))
        let waiting = try #require(try await q.job(id: "slow"))
        #expect(waiting.state == .retryable && waiting.lastError == "boom")
        #expect(waiting.runAtMs >= before + 300_000 && waiting.runAtMs <= nowMs() + 900_000, "jittered 0.5–1.5 × the base")
        #expect(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).isEmpty)

        _ = try await q.enqueue(spec("flaky", maxAttempts: 3))
        for attempt in 1...3 {
            let job = try #require(try await q.dequeue(queues: ["default"], worker: "w\(attempt)", limit: 1, leaseMs: 60_000).first)
            #expect(job.id == "flaky" && job.attempt == attempt)
            #expect(try await q.finish(job, .failed(error: "error \(attempt)", retryable: true)))
        }
        let dead = try #require(try await q.job(id: "flaky"))
        #expect(dead.state == .dead && dead.finishedAtMs != nil && dead.lastError == "error 3")
        #expect(dead.attempts.map(\.outcome) == ["failed", "failed", "failed"])
        #expect(dead.attempts.map(\.worker) == ["w1", "w2", "w3"])

        _ = try await q.enqueue(spec("fatal", maxAttempts: 5))
        let fatal = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        #expect(try await q.finish(fatal, .failed(error: "bad payload", retryable: false)))
        #expect(try await q.job(id: "fatal")?.state == .dead)
        #expect(Set(try await q.listJobs(JobFilter(states: [.dead]), limit: 10, offset: 0).map(\.id)) == ["flaky", "fatal"])
        #expect(try await q.countJobs(JobFilter(states: [.dead])) == 2)
        _ = try await q.enqueue(spec("other-queue", queue: "reports"))
        let counts = try await q.countJobsByQueue(JobFilter())
        #expect(counts == ["default": [.retryable: 1, .dead: 2], "reports": [.available: 1]], "\(counts)")
        #expect(try await q.countJobsByQueue(JobFilter(states: [.dead])) == ["default": [.dead: 2]])
        #expect(try await q.countJobsByQueue(JobFilter(queue: "nope")).isEmpty)
    }

    /// Cancel: a pending job never runs; a running one is flagged for its worker (heartbeat
    /// says so, and `cancelRequests` is signalled) and ends `cancelled`.
    static func cancel(_ connect: Database, sharedWakeups: Bool) async throws {
        let q = try await connect()
        let watcher = sharedWakeups ? try await connect() : q
        _ = await watcher.wakeTicket()
        _ = try await q.enqueue(spec("pending"))
        #expect(try await q.cancelJob(id: "pending") == .cancelled)
        #expect(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).isEmpty)
        #expect(try await q.cancelJob(id: "pending") == .alreadyFinished(.cancelled))
        #expect(try await q.cancelJob(id: "nope") == .notFound)

        _ = try await q.enqueue(spec("running"))
        let job = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        #expect(try await q.heartbeat(jobId: job.id, worker: "w", leaseMs: 60_000) == false)
        let ticket = watcher.cancelRequests.ticket()
        #expect(try await q.cancelJob(id: "running") == .cancelling)
        #expect(await watcher.cancelRequests.wait(since: ticket, timeoutMs: 60_000), "the cancel request woke the watcher")
        #expect(try await q.heartbeat(jobId: job.id, worker: "w", leaseMs: 60_000) == true)
        #expect(try await q.finish(job, .cancelled(reason: "cancel requested")))
        let done = try #require(try await q.job(id: "running"))
        #expect(done.state == .cancelled && done.attempts.map(\.outcome) == ["cancelled"])
    }

    /// A worker that stops heartbeating loses its job to another at the next attempt; it can
    /// neither heartbeat nor finish it afterwards. A heartbeat keeps a lease alive.
    static func leaseRescue(_ connect: Database) async throws {
        let (a, b) = (try await connect(), try await connect())
        _ = try await a.enqueue(spec("kept"))
        _ = try await a.enqueue(spec("lost", priority: 1))
        let lost = try #require(try await a.dequeue(queues: ["default"], worker: "A", limit: 1, leaseMs: 1).first)
        let kept = try #require(try await a.dequeue(queues: ["default"], worker: "A", limit: 1, leaseMs: 1).first)
        #expect(lost.id == "lost" && kept.id == "kept")
        #expect(try await a.heartbeat(jobId: "kept", worker: "A", leaseMs: 600_000) == false)
        // Once the 1 ms lease of "lost" has expired, a rescue takes it (and only it).
        var rescued: [String] = []
        try await Wait.until("the lease of 'lost' expires") { rescued = try await b.rescueExpired(); return !rescued.isEmpty }
        #expect(rescued == ["lost"])
        let retried = try #require(try await b.dequeue(queues: ["default"], worker: "B", limit: 1, leaseMs: 60_000).first)
        #expect(retried.id == "lost" && retried.attempt == 2 && retried.worker == "B")
        #expect(try await a.heartbeat(jobId: "lost", worker: "A", leaseMs: 60_000) == nil)
        #expect(try await a.finish(lost, .succeeded(result: nil)) == false, "A no longer holds it")
        #expect(try await b.finish(retried, .succeeded(result: .int(2))))
        let done = try #require(try await a.job(id: "lost"))
        #expect(done.state == .succeeded && done.result == .int(2))
        #expect(done.attempts.map(\.outcome) == ["interrupted", "succeeded"])
        #expect(done.attempts.map(\.worker) == ["A", "B"])
        #expect(try await a.job(id: "kept")?.state == .running)

        _ = try await a.enqueue(spec("last", maxAttempts: 1))
        _ = try #require(try await a.dequeue(queues: ["default"], worker: "A", limit: 1, leaseMs: 1).first)
        try await Wait.until("the lease of 'last' expires") { rescued = try await b.rescueExpired(); return !rescued.isEmpty }
        #expect(rescued == ["last"])
        #expect(try await a.job(id: "last")?.state == .dead)
    }

    /// A job released by a worker that shuts down runs again at once, even after its last
    /// attempt (shutdowns do not use attempts up); a crash (rescue) does count.
    static func releaseGoesBackAtOnce(_ connect: Database) async throws {
        let q = try await connect()
        _ = try await q.enqueue(spec("r", maxAttempts: 1, backoff: JobBackoff(baseMs: 600_000, maxMs: 600_000)))
        let first = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        #expect(try await q.finish(first, .released(reason: "interrupted: shutting down")))
        let back = try #require(try await q.job(id: "r"))
        #expect(back.state == .retryable && back.maxAttempts == 2 && back.attempts.map(\.outcome) == ["interrupted"])
        let second = try #require(try await q.dequeue(queues: ["default"], worker: "w2", limit: 1, leaseMs: 60_000).first,
                                  "runnable at once, not after the backoff")
        #expect(second.attempt == 2)
    }

    /// The dead-letter queue: retry makes a dead job run again, discard deletes a finished one.
    static func deadLetters(_ connect: Database) async throws {
        let q = try await connect()
        _ = try await q.enqueue(spec("x", maxAttempts: 1))
        let job = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        await #expect(throws: JobQueueError.self) { _ = try await q.discardJob(id: "x") }
        await #expect(throws: JobQueueError.self) { _ = try await q.retryJob(id: "x") }
        #expect(try await q.finish(job, .failed(error: "no", retryable: true)))
        #expect(try await q.job(id: "x")?.state == .dead)
        let retried = try #require(try await q.retryJob(id: "x"))
        #expect(retried.state == .available && retried.maxAttempts == 2)
        let again = try #require(try await q.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first)
        #expect(again.attempt == 2)
        #expect(try await q.finish(again, .failed(error: "still no", retryable: true)))
        #expect(try await q.job(id: "x")?.state == .dead)
        #expect(try await q.discardJob(id: "x"))
        #expect(try await q.job(id: "x") == nil)
        #expect(try await q.discardJob(id: "x") == false)
        #expect(try await q.retryJob(id: "x") == nil)
    }

    /// Workers on several connections never get the same job (every job leased exactly once).
    static func concurrentWorkersShareWithoutOverlap(_ connect: @escaping Database) async throws {
        let q = try await connect()
        let count = 120
        for i in 0..<count { _ = try await q.enqueue(spec("j\(i)")) }
        let leased = try await withThrowingTaskGroup(of: [String].self) { group in
            for w in 0..<4 {
                group.addTask {
                    let worker = try await connect()
                    var mine: [String] = []
                    while true {
                        let jobs = try await worker.dequeue(queues: ["default"], worker: "w\(w)", limit: 3, leaseMs: 60_000)
                        if jobs.isEmpty { return mine }
                        for job in jobs {
                            mine.append(job.id)
                            #expect(try await worker.finish(job, .succeeded(result: nil)))
                        }
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(leased.count == count && Set(leased).count == count)
        #expect(try await q.countJobs(JobFilter(states: [.succeeded])) == count)
    }

    /// A wake-up arrives when a job is enqueued (from another host where the backend can tell).
    static func wakeUp(_ connect: Database, sharedWakeups: Bool) async throws {
        let producer = try await connect()
        let waiter = sharedWakeups ? try await connect() : producer
        let ticket = await waiter.wakeTicket()
        #expect(try await waiter.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).isEmpty)
        async let woken = waiter.waitForJobs(since: ticket, timeoutMs: 120_000)
        _ = try await producer.enqueue(spec("wake"))
        #expect(await woken, "woken by the enqueue, not by the end of the wait")
        #expect(try await waiter.dequeue(queues: ["default"], worker: "w", limit: 1, leaseMs: 60_000).first?.id == "wake")
        // A wait with nothing new ends by its timeout and says so.
        #expect(await waiter.waitForJobs(since: await waiter.wakeTicket(), timeoutMs: 10) == false)
    }

    /// Payloads come back exactly (big numbers, member names); bad specs are refused.
    static func payloadsAndBadInput(_ connect: Database) async throws {
        let q = try await connect()
        let payload = try JSONValue.parse(#"{"big":123456789012345678901234567890,"e\u0301":1,"é":2,"f":0.1}"#)
        _ = try await q.enqueue(JobSpec(id: "p", kind: "run", payload: payload))
        #expect(try await q.job(id: "p")?.payload == payload)
        for bad in [JobSpec(kind: "run", payload: .null, queue: "Bad Queue"), JobSpec(kind: "", payload: .null),
                    JobSpec(kind: "run", payload: .null, maxAttempts: 0), JobSpec(id: "", kind: "run", payload: .null)] {
            await #expect(throws: JobQueueError.self) { _ = try await q.enqueue(bad) }
        }
    }

    /// Retention removes old succeeded and cancelled jobs, never dead or pending ones.
    static func retention(_ connect: Database) async throws {
        let q = try await connect()
        for id in ["ok", "gone", "dead", "pending"] { _ = try await q.enqueue(spec(id, maxAttempts: 1)) }
        #expect(try await q.cancelJob(id: "gone") == .cancelled)
        for job in try await q.dequeue(queues: ["default"], worker: "w", limit: 2, leaseMs: 60_000) {
            _ = try await q.finish(job, job.id == "ok" ? .succeeded(result: nil) : .failed(error: "x", retryable: true))
        }
        #expect(try await q.pruneJobs(finishedBeforeMs: nowMs() - 3_600_000) == 0)
        #expect(try await q.pruneJobs(finishedBeforeMs: nowMs() + 1_000) == 2)
        #expect(Set(try await q.listJobs(JobFilter(), limit: 10, offset: 0).map(\.id)) == ["dead", "pending"])
    }

}

@Suite struct SQLiteJobQueueTests {
    static func database() -> JobQueueConformance.Database {
        let path = EpisodeFixtures.tempDir("jobs") + "/nova.sqlite"
        return { try SQLiteStore(path: path) }
    }

    @Test func priorityAndOrder() async throws { try await JobQueueConformance.priorityAndOrder(Self.database()) }
    @Test func scheduling() async throws { try await JobQueueConformance.scheduling(Self.database()) }
    @Test func uniqueKeys() async throws { try await JobQueueConformance.uniqueKeys(Self.database()) }
    @Test func retriesThenDead() async throws { try await JobQueueConformance.retriesThenDead(Self.database()) }
    @Test func cancel() async throws { try await JobQueueConformance.cancel(Self.database(), sharedWakeups: false) }
    @Test func leaseRescue() async throws { try await JobQueueConformance.leaseRescue(Self.database()) }
    @Test func deadLetters() async throws { try await JobQueueConformance.deadLetters(Self.database()) }
    @Test func releaseGoesBackAtOnce() async throws { try await JobQueueConformance.releaseGoesBackAtOnce(Self.database()) }
    @Test func concurrentWorkers() async throws { try await JobQueueConformance.concurrentWorkersShareWithoutOverlap(Self.database()) }
    @Test func wakeUp() async throws { try await JobQueueConformance.wakeUp(Self.database(), sharedWakeups: false) }
    @Test func payloadsAndBadInput() async throws { try await JobQueueConformance.payloadsAndBadInput(Self.database()) }
    @Test func retention() async throws { try await JobQueueConformance.retention(Self.database()) }
}

@Suite struct PostgresJobQueueTests {
    static func database(_ stores: PostgresStoreTests.Stores) async throws -> JobQueueConformance.Database {
        let url = try await PostgresStoreTests.freshDatabase()
        return { try await stores.connect(url) }
    }

    typealias C = JobQueueConformance
    @Test func priorityAndOrder() async throws { try await C.priorityAndOrder(try await Self.database(.init())) }
    @Test func scheduling() async throws { try await C.scheduling(try await Self.database(.init())) }
    @Test func uniqueKeys() async throws { try await C.uniqueKeys(try await Self.database(.init())) }
    @Test func retriesThenDead() async throws { try await C.retriesThenDead(try await Self.database(.init())) }
    @Test func cancel() async throws { try await C.cancel(try await Self.database(.init()), sharedWakeups: true) }
    @Test func leaseRescue() async throws { try await C.leaseRescue(try await Self.database(.init())) }
    @Test func deadLetters() async throws { try await C.deadLetters(try await Self.database(.init())) }
    @Test func releaseGoesBackAtOnce() async throws { try await C.releaseGoesBackAtOnce(try await Self.database(.init())) }
    @Test func concurrentWorkers() async throws { try await C.concurrentWorkersShareWithoutOverlap(try await Self.database(.init())) }
    @Test func notifyWakesAnotherHost() async throws { try await C.wakeUp(try await Self.database(.init()), sharedWakeups: true) }
    @Test func payloadsAndBadInput() async throws { try await C.payloadsAndBadInput(try await Self.database(.init())) }
    @Test func retention() async throws { try await C.retention(try await Self.database(.init())) }
}
