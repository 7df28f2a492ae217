import Dispatch
import JSON
import Synchronization
import Episodes
import HostSupport
import Plans

/// One run to start: a parsed plan with its bound inputs, who asks, and how.
public struct RunRequest: Sendable {
    /// The plan (already parsed and validated against the drivers).
    public var plan: Plan
    /// The inputs, already bound (`PlanRunner.bindInputs`).
    public var inputs: [String: JSONValue]
    /// The authenticated principal: the policy decides for this name.
    public var principal: String
    /// The role the caller authenticated with; nil means the policy profile's mapping of the
    /// principal. Bound to the run with `PolicyEngine.bindRole` before it starts.
    public var role: String?
    /// Parallelism and other run options.
    public var options: RunOptions
    /// Where the run came from (`rest`, `tool`, `mcp`, …), for observers and logs.
    public var origin: String
    /// The template the plan was rendered from, recorded with the run.
    public var template: TemplateProvenance?

    /// A request to run `plan` for `principal`.
    public init(plan: Plan, inputs: [String: JSONValue], principal: String, role: String? = nil,
                options: RunOptions = RunOptions(), origin: String = "api") {
        self.plan = plan
        self.inputs = inputs
        self.principal = principal
        self.role = role
        self.options = options
        self.origin = origin
    }
}

/// What the manager knows about one run: in flight, or finished (with its record and episode).
public struct RunSnapshot: Sendable {
    /// The run id.
    public var runId: String
    /// The plan's name.
    public var planName: String
    /// Who runs it.
    public var principal: String
    /// `running` while in flight, then the final status.
    public var status: RunStatus
    /// RFC 3339 time the run was accepted.
    public var submittedAt: String
    /// Where the run came from (`rest`, `tool`, `mcp`, …).
    public var origin: String
    /// Whether someone asked to cancel it.
    public var cancelRequested: Bool
    /// The finished run's record (nil while in flight).
    public var record: RunRecord?
    /// The durable episode, once written.
    public var episode: EpisodeRef?
    /// Why the episode could not be written (or indexed), if so.
    public var episodeError: String?
    /// A queued run stopped by shutdown: nothing was recorded and its job goes back to the
    /// queue for another attempt.
    public var released = false
}

/// What `RunManager.execute` refuses.
public enum RunSubmitError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The manager is shutting down and takes no new runs.
    case notAccepting
    /// The caller's role is not in the policy profile.
    case unknownRole(String)

    public var description: String {
        switch self {
        case .notAccepting: return "the server is shutting down and accepts no new runs"
        case .unknownRole(let message): return message
        }
    }
}

/// What `RunManager.cancel` did.
public enum CancelOutcome: Sendable, Equatable {
    /// The run was in flight; it has been asked to stop (in-flight calls are cancelled).
    case cancelling
    /// The run had already finished with this status.
    case alreadyFinished(RunStatus)
    /// The manager does not know the run (it may still have an episode).
    case unknown
}

/// Watches runs end, for metrics and logs. Called once per run, after its episode is written.
public protocol RunObserver: Sendable {
    /// A run finished: its record (final status), episode, and how long the end of the run
    /// (policy-state flush, episode write and index) took, in seconds.
    func runFinished(_ record: RunRecord, origin: String, episode: EpisodeRef?, episodeError: String?, finishSeconds: Double)
}

/// Runs plans for a long-lived host (the server, a worker): runs in flight with their status,
/// cancel by id, and a graceful shutdown that lets runs finish or stops them.
///
/// Every run is `execute`d in its caller's task: a one-call route's request task, or the job
/// worker's task for a queued run. A run is `RunPipeline.run` then `RunPipeline.record`, with a
/// cancel request racing it. At shutdown a direct run is recorded `interrupted`; a queued run
/// records nothing and is released back to the queue for its next attempt (`released`).
public final class RunManager: Sendable {
    /// The host the runs use.
    public let host: NovaHost
    private let observer: (any RunObserver)?
    private let finishedCapacity: Int

    private struct Entry {
        var snapshot: RunSnapshot
        /// The run's task, once started: `cancel(runId)` and shutdown cancel it (before it
        /// starts, they leave their flag for `execute`).
        var task: Task<RunRecord, Never>?
        var interrupt = false
    }

    private struct State {
        var accepting = true
        var inFlight: [String: Entry] = [:]
        /// Runs asked to stop before they started here (a queued run's cancel can reach its
        /// worker between the dequeue and `execute`): they are cancelled as they start.
        var cancelBeforeStart: Set<String> = []
        var finished: [String: RunSnapshot] = [:]
        /// The ids in `finished`, a ring of `finishedCapacity` whose oldest entry is at
        /// `finishedOldest` once full (removing the first of an array moved all the others).
        var finishedOrder: [String] = []
        var finishedOldest = 0
    }

    private let state = Mutex(State())

    /// - Parameters:
    ///   - host: the host whose runner, policy and episodes the runs use.
    ///   - observer: told about every finished run (metrics).
    ///   - finishedCapacity: how many finished runs to keep in memory (older ones are read
    ///     back from their episodes).
    public init(host: NovaHost, observer: (any RunObserver)? = nil, finishedCapacity: Int = 1024) {
        self.host = host
        self.observer = observer
        self.finishedCapacity = max(0, finishedCapacity)
    }

    // MARK: Running

    /// Runs a plan in the caller's task and returns when its episode is written. Tracked while
    /// in flight: it can be listed and cancelled, and shutdown waits for it. `job` names the
    /// queued job attempt that runs it (recorded in the episode; at shutdown such a run is
    /// released, not recorded).
    public func execute(_ request: RunRequest, runId: String = RunId.make(), job: RunJobAttempt? = nil,
                        submittedAt: String? = nil) async throws(RunSubmitError) -> RunSnapshot {
        if let role = request.role, !host.policy.profile.roles.contains(role) {
            throw .unknownRole("unknown role '\(role)' (the policy has: \(host.policy.profile.roles.joined(separator: ", ")))")
        }
        let pipeline = host.pipeline
        // Registered first, then started in a task of its own (it inherits this task's priority
        // and task-locals) so that `cancel(runId)` and shutdown can cancel it. The task is made
        // outside the lock: making one enqueues it, which may wake a thread (a system call),
        // and every run in the process takes this lock twice.
        var snapshot = RunSnapshot(runId: runId, planName: request.plan.name, principal: request.principal, status: .running,
                                   submittedAt: submittedAt ?? Timestamps.now(), origin: request.origin, cancelRequested: false)
        let registered = state.withLock { s in
            guard s.accepting else { return false }
            snapshot.cancelRequested = s.cancelBeforeStart.remove(runId) != nil
            s.inFlight[runId] = Entry(snapshot: snapshot)
            return true
        }
        guard registered else { throw .notAccepting }
        let run = Task { await pipeline.run(request, runId: runId) }
        // A cancel or a shutdown that came in between found no task to cancel: it is cancelled here.
        let stop = state.withLock { s in
            s.inFlight[runId]?.task = run
            return s.inFlight[runId].map { $0.snapshot.cancelRequested || $0.interrupt } ?? false
        }
        if stop { run.cancel() }
        return await perform(request, runId: runId, job: job, run: run)
    }

    private func perform(_ request: RunRequest, runId: String, job: RunJobAttempt?, run: Task<RunRecord, Never>) async -> RunSnapshot {
        let pipeline = host.pipeline
        // This task's cancellation (a client that left) reaches the run too.
        var record = await withTaskCancellationHandler { await run.value } onCancel: { run.cancel() }
        record.job = job
        let (interrupt, cancelRequested) = state.withLock { s in (s.inFlight[runId]?.interrupt ?? false, s.inFlight[runId]?.snapshot.cancelRequested ?? false) }
        if record.status == .cancelled {
            // Say who stopped it: shutdown (interrupted), a cancel request, or the caller.
            if job != nil && (interrupt || (Task.isCancelled && !cancelRequested)) {
                // A queued run stopped by shutdown goes back to the queue: its next attempt
                // makes the record.
                return state.withLock { s in
                    var snap = s.inFlight.removeValue(forKey: runId)!.snapshot
                    snap.status = .interrupted
                    snap.released = true
                    return snap
                }
            }
            if interrupt {
                record.status = .interrupted
                record.error = "interrupted: the server shut down before the run finished"
            } else if !cancelRequested && Task.isCancelled {
                record.error = record.error ?? "cancelled by the client (it cancelled the request or disconnected)"
            }
        }
        let start = ContinuousClock.now
        // Redact and record: fsyncs and SQLite commits block, so the pipeline does it on a
        // thread of its own, not the cooperative pool nor Dispatch's few global threads.
        let result = await pipeline.record(record)
        let (finalRecord, episode, episodeError) = (result.record, result.episode, result.episodeError)
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        observer?.runFinished(finalRecord, origin: request.origin, episode: episode, episodeError: episodeError, finishSeconds: seconds)
        return state.withLock { s in
            var snap = s.inFlight.removeValue(forKey: runId)?.snapshot
                ?? RunSnapshot(runId: runId, planName: request.plan.name, principal: request.principal, status: finalRecord.status,
                               submittedAt: finalRecord.startedAt, origin: request.origin, cancelRequested: false)
            snap.status = finalRecord.status
            snap.record = finalRecord
            snap.episode = episode
            snap.episodeError = episodeError
            if finishedCapacity > 0, s.finished.updateValue(snap, forKey: runId) == nil {
                if s.finishedOrder.count < finishedCapacity {
                    s.finishedOrder.append(runId)
                } else {
                    s.finished.removeValue(forKey: s.finishedOrder[s.finishedOldest])
                    s.finishedOrder[s.finishedOldest] = runId
                    s.finishedOldest = (s.finishedOldest + 1) % finishedCapacity
                }
            }
            return snap
        }
    }

    // MARK: Queries

    /// The run if in flight or finished recently (older runs: read their episode).
    public func snapshot(runId: String) -> RunSnapshot? {
        state.withLock { $0.inFlight[runId]?.snapshot ?? $0.finished[runId] }
    }

    /// Runs in flight, newest first, optionally only those of `principal`.
    public func inFlight(principal: String? = nil) -> [RunSnapshot] {
        state.withLock { s in
            s.inFlight.values.map(\.snapshot).filter { principal == nil || $0.principal == principal }
        }.sorted { ($0.submittedAt, $0.runId) > ($1.submittedAt, $1.runId) }
    }

    /// How many runs are in flight.
    public var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    /// Whether new runs are accepted (false once shutdown began).
    public var isAccepting: Bool { state.withLock { $0.accepting } }

    // MARK: Cancel and shutdown

    /// Asks an in-flight run to stop: its in-flight calls are cancelled and it ends `cancelled`.
    /// With `beforeStart`, a run not started yet is cancelled as soon as it starts here (for a
    /// queued run whose worker has taken it).
    public func cancel(runId: String, beforeStart: Bool = false) -> CancelOutcome {
        state.withLock { s in
            if var e = s.inFlight[runId] {
                e.snapshot.cancelRequested = true
                s.inFlight[runId] = e
                e.task?.cancel()
                return .cancelling
            }
            if let f = s.finished[runId] { return .alreadyFinished(f.status) }
            if beforeStart {
                s.cancelBeforeStart.insert(runId)
                return .cancelling
            }
            return .unknown
        }
    }

    /// Forgets a cancel request for a run that will not start here after all.
    public func forgetCancel(runId: String) {
        _ = state.withLock { $0.cancelBeforeStart.remove(runId) }
    }

    /// What `shutdown` did.
    public struct ShutdownReport: Sendable, Equatable {
        /// Runs that were in flight when shutdown began.
        public var inFlightAtStart: Int
        /// Runs cancelled after the grace period (they end `interrupted`).
        public var interrupted: Int
        /// Runs still in flight when `shutdown` gave up waiting for them (their drivers ignored
        /// cancellation); their episodes may be missing.
        public var abandoned: [String]
    }

    /// Stops accepting runs, lets in-flight runs finish for up to `grace`, then cancels the
    /// rest: direct runs end `interrupted` and write their episodes, queued runs are released
    /// (waiting up to `cancelGrace` for that).
    @discardableResult
    public func shutdown(grace: Duration, cancelGrace: Duration = .seconds(10)) async -> ShutdownReport {
        let atStart = state.withLock { s in
            s.accepting = false
            return s.inFlight.count
        }
        let clock = ContinuousClock()
        let deadline = clock.now + grace
        while inFlightCount > 0 && clock.now < deadline {
            try? await clock.sleep(for: .milliseconds(10))
        }
        let interrupted = state.withLock { s in
            for (id, var e) in s.inFlight {
                e.interrupt = true
                s.inFlight[id] = e
                e.task?.cancel()
            }
            return s.inFlight.count
        }
        let hardDeadline = clock.now + cancelGrace
        while inFlightCount > 0 && clock.now < hardDeadline {
            try? await clock.sleep(for: .milliseconds(10))
        }
        let abandoned = state.withLock { Array($0.inFlight.keys).sorted() }
        // The last runs' index entries, written after their answers, before the process goes.
        await host.episodes?.settleIndex()
        return ShutdownReport(inFlightAtStart: atStart, interrupted: interrupted, abandoned: abandoned)
    }
}

