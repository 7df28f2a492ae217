import Foundation
import JSON
import Synchronization
import HostSupport
import Store

/// Executes the jobs of one kind for a `JobWorker`.
public protocol JobHandler: Sendable {
    /// Runs one attempt of `job` (leased to `worker`) and says how it ended. Cancelling the
    /// calling task means the worker is going away: the handler should stop and return
    /// `.released`.
    func perform(_ job: Job, worker: String) async -> JobCompletion
    /// Someone asked to cancel `job` while it runs (called again on every heartbeat until it
    /// ends, so it may be called before `perform` has got going).
    func requestCancel(_ job: Job)
}

/// How a worker takes and keeps jobs.
public struct JobWorkerOptions: Sendable {
    /// This worker's name in leases and job histories (unique across hosts).
    public var name: String
    /// The queues it takes jobs from.
    public var queues: [String]
    /// Jobs at once.
    public var concurrency: Int
    /// Most jobs taken by one dequeue.
    public var batchSize: Int
    /// How long a lease lasts without a heartbeat; a crashed worker's jobs are rescued this
    /// long after its last heartbeat.
    public var leaseMs: Int
    /// The backstop poll when no wake-up arrives (other SQLite processes do not send any).
    public var pollMs: Int
    /// Finished (succeeded or cancelled) jobs older than this are pruned; nil keeps them.
    public var retentionMs: Int64?

    public init(name: String = JobWorkerOptions.defaultName(), queues: [String] = [JobQueueLimits.defaultQueue], concurrency: Int = 4,
                batchSize: Int = 10, leaseMs: Int = JobQueueLimits.defaultLeaseMs, pollMs: Int = 1_000, retentionMs: Int64? = 7 * 86_400_000) {
        self.name = name
        self.queues = queues
        self.concurrency = max(1, concurrency)
        self.batchSize = max(1, batchSize)
        self.leaseMs = max(10, leaseMs)
        self.pollMs = max(10, pollMs)
        self.retentionMs = retentionMs
    }

    /// `hostname:pid:random`, unique for every worker ever started.
    public static func defaultName() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(RunId.make().prefix(8))"
    }
}

/// Takes jobs from the durable queue and runs them with their kind's handler, `concurrency`
/// at a time: leases them, heartbeats while they run (and learns of cancel requests that way),
/// reports how each attempt ended, rescues jobs whose worker died, and prunes old ones.
///
/// Wake-ups come from the store (an enqueue on any host with PostgreSQL, in this process with
/// SQLite); the poll only backs them up. `stop()` ends intake; running jobs finish (or, when
/// the caller cancels `run()`, are released back to the queue by their handlers).
public final class JobWorker: Sendable {
    public let options: JobWorkerOptions
    private let queue: any JobQueueStore
    private let handlers: [String: any JobHandler]
    private let log: @Sendable (String) -> Void

    private struct State {
        var running = 0
        /// The jobs running now, by id, for the heartbeat (leases renewed together).
        var held: [String: Job] = [:]
        var stopping = false
        var started = 0
        var lastRescueError: String?
    }

    private let state = Mutex(State())
    private let slotFreed = WakeSignal()
    private let stopSignal = WakeSignal()
    /// Attempts that ended and are not yet reported: written in batches (one transaction each,
    /// like a group commit: what ends while a batch is being written goes in the next one).
    private let completions = Mutex<(items: [(job: Job, completion: JobCompletion)], closed: Bool)>(([], false))
    private let completionAdded = WakeSignal()

    /// - Parameter log: where operational problems go (a failing database, a lost lease).
    public init(queue: any JobQueueStore, handlers: [String: any JobHandler], options: JobWorkerOptions = JobWorkerOptions(),
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.queue = queue
        self.handlers = handlers
        self.options = options
        self.log = log
    }

    /// Jobs running now.
    public var runningCount: Int { state.withLock { $0.running } }
    /// Jobs started since `run()` began.
    public var startedCount: Int { state.withLock { $0.started } }

    /// Stops taking jobs; `run()` returns once the running ones have ended.
    public func stop() {
        state.withLock { $0.stopping = true }
        stopSignal.signal()
    }

    private var stopping: Bool { state.withLock { $0.stopping } || Task.isCancelled }

    /// Takes and runs jobs until `stop()` or cancellation; returns when every job it started
    /// has ended.
    public func run() async {
        completions.withLock { $0.closed = false }
        await withDiscardingTaskGroup { outer in
            outer.addTask { await self.reportCompletions() }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.maintain() }
                group.addTask { await self.heartbeats() }
                let stopTicket = stopSignal.ticket()
                while !stopping {
                    let slotTicket = slotFreed.ticket()
                    let running = runningCount
                    let free = options.concurrency - running
                    if free <= 0 {
                        await firstOf(slotFreed, slotTicket, timeoutMs: options.pollMs, stopTicket: stopTicket)
                        continue
                    }
                    // Take jobs in batches: with jobs running and few slots free, give the
                    // others a moment to end (short jobs end in bursts).
                    if running > 0 && free < max(1, min(options.batchSize, options.concurrency / 2)) {
                        await firstOf(slotFreed, slotTicket, timeoutMs: 2, stopTicket: stopTicket)
                    }
                    let ticket = await queue.wakeTicket()
                    let cancelTicket = queue.cancelRequests.ticket()
                    let jobs: [Job]
                    do {
                        jobs = try await queue.dequeue(queues: options.queues, worker: options.name,
                                                       limit: min(options.batchSize, options.concurrency - runningCount), leaseMs: options.leaseMs)
                    } catch {
                        log("job queue: dequeue failed: \(error)")
                        await firstOf(nil, 0, timeoutMs: options.pollMs, stopTicket: stopTicket)
                        continue
                    }
                    if jobs.isEmpty {
                        if runningCount == 0 { await firstOf(nil, ticket, timeoutMs: options.pollMs, stopTicket: stopTicket) }
                        else { await firstOf(slotFreed, slotTicket, timeoutMs: options.pollMs, stopTicket: stopTicket) }
                        continue
                    }
                    state.withLock {
                        $0.running += jobs.count
                        $0.started += jobs.count
                        for job in jobs { $0.held[job.id] = job }
                    }
                    // A cancel requested between the dequeue's commit and now found these jobs
                    // not yet held by the heartbeat: signal again so it looks at them.
                    if queue.cancelRequests.ticket() != cancelTicket { queue.cancelRequests.signal() }
                    for job in jobs {
                        group.addTask {
                            await self.execute(job)
                            self.state.withLock {
                                $0.running -= 1
                                $0.held.removeValue(forKey: job.id)
                            }
                            self.slotFreed.signal()
                        }
                    }
                }
                stopSignal.signal()  // ends maintain() and heartbeats()
            }
            completions.withLock { $0.closed = true }
            completionAdded.signal()
        }
    }

    /// Writes ended attempts in batches until `run()` ends and nothing is left. A batch that
    /// cannot be written is tried a few times (the leases cover the wait); after that rescue
    /// gives the jobs to a live worker.
    private func reportCompletions() async {
        while true {
            let ticket = completionAdded.ticket()
            let (batch, closed) = completions.withLock { c -> ([(job: Job, completion: JobCompletion)], Bool) in
                let take = Array(c.items.prefix(200))
                c.items.removeFirst(take.count)
                return (take, c.closed)
            }
            if batch.isEmpty {
                if closed { return }
                await completionAdded.wait(since: ticket, timeoutMs: 1_000)
                continue
            }
            for attempt in 1...5 {
                do {
                    let held = try await queue.finish(batch)
                    for (item, ok) in zip(batch, held) where !ok {
                        log("job \(item.job.id): the lease was lost before attempt \(item.job.attempt) ended; another worker has it")
                    }
                    break
                } catch {
                    log("job queue: reporting \(batch.count) attempt(s) failed (try \(attempt)): \(error)")
                    try? await Task.sleep(for: .milliseconds(200 * attempt))
                }
            }
        }
    }

    /// Waits for a wake-up: `signal` past `ticket` (or the queue's, when `signal` is nil),
    /// `stop()`, or `timeoutMs`.
    private func firstOf(_ signal: WakeSignal?, _ ticket: UInt64, timeoutMs: Int, stopTicket: UInt64) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if let signal { await signal.wait(since: ticket, timeoutMs: timeoutMs) } else {
                    await self.queue.waitForJobs(since: ticket, timeoutMs: timeoutMs)
                }
            }
            group.addTask { await self.stopSignal.wait(since: stopTicket, timeoutMs: timeoutMs) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Rescues jobs of dead workers (often enough that a job waits at most about one lease)
    /// and prunes old jobs, until the worker stops.
    private func maintain() async {
        let rescueEvery = max(50, min(options.leaseMs / 4, 1_000))
        var lastPrune: Int64 = 0
        let stopTicket = stopSignal.ticket()
        while !stopping {
            do {
                let rescued = try await queue.rescueExpired()
                if !rescued.isEmpty { log("job queue: rescued \(rescued.count) job(s) whose worker stopped: \(rescued.joined(separator: ", "))") }
                let now = Timestamps.wallNanos() / 1_000_000
                if let retention = options.retentionMs, now - lastPrune > 600_000 {
                    lastPrune = now
                    _ = try await queue.pruneJobs(finishedBeforeMs: now - retention)
                }
            } catch {
                log("job queue: maintenance failed: \(error)")
            }
            if await stopSignal.wait(since: stopTicket, timeoutMs: rescueEvery) { return }
        }
    }

    /// One attempt: the handler and a heartbeat side by side; the attempt's end is reported
    /// unless the lease was lost meanwhile (then the job belongs to someone else).
    private func execute(_ job: Job) async {
        guard let handler = handlers[job.kind] else {
            completions.withLock { $0.items.append((job, .failed(error: "no handler for job kind '\(job.kind)' on worker \(options.name)", retryable: true))) }
            completionAdded.signal()
            return
        }
        let completion = await handler.perform(job, worker: options.name)
        completions.withLock { $0.items.append((job, completion)) }
        completionAdded.signal()
    }

    /// Renews the leases of every running job in one statement, every third of the lease (or
    /// at once when a cancel request arrives), and passes cancel requests to the handlers, until
    /// the worker stops and its jobs have ended.
    private func heartbeats() async {
        let every = max(5, options.leaseMs / 3)
        let cancels = queue.cancelRequests
        var ticket = cancels.ticket()
        var lastBeat = ContinuousClock.now
        let stopTicket = stopSignal.ticket()
        while true {
            // Wait for the period, a cancel request, or — once stopping — a job's end.
            let (cancelTicket, slotTicket) = (ticket, slotFreed.ticket())
            let stopped = stopSignal.ticket() != stopTicket
            if stopped && state.withLock({ $0.held.isEmpty }) { return }
            let wait = max(1, every - Int((ContinuousClock.now - lastBeat) / .milliseconds(1)))
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await cancels.wait(since: cancelTicket, timeoutMs: wait) }
                if stopped {
                    group.addTask { await self.slotFreed.wait(since: slotTicket, timeoutMs: wait) }
                } else {
                    group.addTask { await self.stopSignal.wait(since: stopTicket, timeoutMs: wait) }
                }
                await group.next()
                group.cancelAll()
            }
            let cancelRequested = cancels.ticket() != ticket
            ticket = cancels.ticket()
            let held = state.withLock { Array($0.held.values) }
            if held.isEmpty || (!cancelRequested && ContinuousClock.now - lastBeat < .milliseconds(every)) { continue }
            lastBeat = ContinuousClock.now
            do {
                let answer = try await queue.heartbeat(jobIds: held.map(\.id), worker: options.name, leaseMs: options.leaseMs)
                for job in held {
                    switch answer[job.id] {
                    case .none:
                        // Rescued (we were too slow) or gone: the attempt's report will be refused.
                        if state.withLock({ $0.held[job.id] != nil }) { log("job \(job.id): lease lost during attempt \(job.attempt)") }
                    case .some(true): handlers[job.kind]?.requestCancel(job)
                    case .some(false): break
                    }
                }
            } catch {
                log("job queue: heartbeat of \(held.count) job(s) failed: \(error)")
            }
        }
    }
}
