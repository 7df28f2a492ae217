import JSON
import Episodes
import HostSupport
import Store

/// JSON views of runs — in flight here, finished (their episode), or waiting or running in the
/// queue on any host (their job) — shared by `GET /v1/runs…` and `nova-host runs`.
public enum RunViews {
    /// Statuses `GET /v1/runs?status=` accepts.
    public static let listableStatuses = ["queued", "running", "succeeded", "failed", "denied", "cancelled", "interrupted"]

    public static func run(_ s: RunSnapshot) -> JSONValue {
        var o: [String: JSONValue] = ["run_id": .string(s.runId), "status": .string(s.status.rawValue), "plan_name": .string(s.planName),
                                      "principal": .string(s.principal), "started_at": .string(s.submittedAt),
                                      "cancel_requested": .bool(s.cancelRequested), "episode": .null]
        if let r = s.record {
            o["started_at"] = .string(r.startedAt)
            o["finished_at"] = .string(r.finishedAt)
            o["duration_ms"] = .double(r.durationMs)
            if let out = r.output { o["output"] = out }
            if let e = r.error { o["error"] = .string(e) }
            o["steps"] = .array(r.steps.map(step))
            if let j = r.job { o["recorded_by"] = ["id": .string(j.jobId), "attempt": .int(j.attempt), "worker": .string(j.worker)] }
        }
        if let e = s.episode { o["episode"] = ["seq": .int(e.seq), "hash": .string(e.hash)] }
        if let e = s.episodeError { o["episode_error"] = .string(e) }
        return .object(o)
    }

    public static func run(episode e: Episode) -> JSONValue {
        let d = e.document
        var o: [String: JSONValue] = ["run_id": .string(e.ref.runId), "status": d["status"] ?? "unknown", "plan_name": d["plan_name"] ?? "",
                                      "principal": d["principal"] ?? "", "started_at": d["started_at"] ?? "",
                                      "cancel_requested": false, "episode": ["seq": .int(e.ref.seq), "hash": .string(e.ref.hash)]]
        if let v = d["finished_at"] { o["finished_at"] = v }
        if let v = d["duration_ms"] { o["duration_ms"] = v }
        if let v = d["output"] { o["output"] = v }
        if let v = d["error"] { o["error"] = v }
        if let steps = d["steps"]?.arrayValue {
            o["steps"] = .array(steps.map { s in
                var r: [String: JSONValue] = ["id": s["id"] ?? "", "call": s["call"] ?? "", "status": s["status"] ?? "",
                                              "attempts": .int(s["attempts"]?.arrayValue?.count ?? 0)]
                if let reason = s["reason"] { r["reason"] = reason }
                return .object(r)
            })
        }
        if let p = e.problem { o["episode_error"] = .string(p) }
        return .object(o)
    }

    public static func run(summary e: EpisodeSummary) -> JSONValue {
        ["run_id": .string(e.runId), "status": .string(e.status), "plan_name": .string(e.planName), "principal": .string(e.principal),
         "started_at": .string(e.startedAt), "finished_at": .string(e.finishedAt), "duration_ms": .double(e.durationMs),
         "cancel_requested": false, "episode": ["seq": .int(e.seq), "hash": .string(e.hash)]]
    }

    public static func step(_ s: StepRecord) -> JSONValue {
        var r: [String: JSONValue] = ["id": .string(s.id), "call": .string(s.call), "status": .string(s.status.rawValue),
                                      "attempts": .int(s.attempts.count)]
        if let reason = s.reason { r["reason"] = .string(reason) }
        return .object(r)
    }

    /// A run known only by its job: queued, running on some host, cancelled before it
    /// started, or dead without a record.
    public static func run(job: Job) -> JSONValue {
        let status: String
        switch job.state {
        case .available, .retryable: status = "queued"
        case .running: status = "running"
        case .cancelled: status = "cancelled"
        case .dead: status = "failed"
        case .succeeded: status = job.result?["status"]?.stringValue ?? "succeeded"
        }
        var o: [String: JSONValue] = ["run_id": .string(job.id), "status": .string(status),
                                      "plan_name": job.payload["plan"]?["name"] ?? "", "principal": job.payload["principal"] ?? "",
                                      "started_at": job.payload["submitted_at"] ?? .string(Timestamps.format(nanosSinceEpoch: job.createdAtMs * 1_000_000)),
                                      "cancel_requested": .bool(job.cancelRequested), "episode": .null, "job": jobSummary(job)]
        if job.state == .dead || job.state == .cancelled, let e = job.lastError { o["error"] = .string(e) }
        return .object(o)
    }

    /// What a run view says about its job: state, attempts and their outcomes.
    public static func jobSummary(_ job: Job) -> JSONValue {
        ["id": .string(job.id), "queue": .string(job.queue), "state": .string(job.state.rawValue), "attempt": .int(job.attempt),
         "max_attempts": .int(job.maxAttempts), "worker": job.worker.map(JSONValue.string) ?? .null,
         "attempts": .array(job.attempts.map(\.json))]
    }
}

/// Finds a run wherever it is: in flight in this process, recorded (its episode), or in the
/// queue (its job, on any host sharing the store).
public struct RunLookup: Sendable {
    public let runs: RunManager?
    public let episodes: EpisodeLog?
    public let queue: (any JobQueueStore)?

    public init(runs: RunManager?, episodes: EpisodeLog?, queue: (any JobQueueStore)?) {
        self.runs = runs
        self.episodes = episodes
        self.queue = queue
    }

    /// A run as the API shows it, with who ran it (for access checks).
    public struct Found: Sendable {
        public var view: JSONValue
        public var principal: String
        public var status: String
        /// Whether it has ended (a record exists, or its job ended without one).
        public var finished: Bool
    }

    /// Runs not yet recorded, as their jobs, newest first: queued (`status` "queued"), running
    /// ("running") or both (nil), of `principal` if given. `limit` bounds the jobs read.
    public func pendingRuns(status: String?, principal: String?, limit: Int) async throws -> [Job] {
        guard let queue else { return [] }
        let states: [JobState] = status == "running" ? [.running] : status == "queued" ? [.available, .retryable] : [.available, .retryable, .running]
        return try await queue.listJobs(JobFilter(states: states, kind: RunJob.kind), limit: limit, offset: 0)
            .filter { principal == nil || $0.payload["principal"]?.stringValue == principal }
    }

    /// The run `runId`, or nil when nothing knows it. Throws when the store cannot be read.
    public func find(runId: String) async throws -> Found? {
        let job = try await queue?.job(id: runId)
        func withJob(_ view: JSONValue) -> JSONValue {
            guard let job, case .object(var o) = view else { return view }
            o["job"] = RunViews.jobSummary(job)
            return .object(o)
        }
        if let snap = runs?.snapshot(runId: runId), !snap.released {
            return Found(view: withJob(RunViews.run(snap)), principal: snap.principal, status: snap.status.rawValue,
                         finished: snap.status != .running)
        }
        if EpisodeFormat.isValidRunId(runId), let episodes, let e = try? await episodes.show(runId: runId) {
            var view = RunViews.run(episode: e)
            if case .object(var o) = view, let attempt = e.document["job"] { o["recorded_by"] = attempt; view = .object(o) }
            return Found(view: withJob(view), principal: e.document["principal"]?.stringValue ?? "",
                         status: e.document["status"]?.stringValue ?? "unknown", finished: true)
        }
        if let job, job.kind == RunJob.kind {
            let view = RunViews.run(job: job)
            return Found(view: view, principal: job.payload["principal"]?.stringValue ?? "", status: view["status"]?.stringValue ?? "",
                         finished: job.state.isFinal)
        }
        return nil
    }
}
