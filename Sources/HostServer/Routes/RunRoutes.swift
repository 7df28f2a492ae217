import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `POST /v1/runs`, `GET /v1/runs`, `GET /v1/runs/{id}`, `POST /v1/runs/{id}/cancel`,
    /// `GET /v1/episodes/{id}`. Callers see their own runs; admin roles see everyone's.
    func addRunRoutes(_ router: Router<ServerContext>) {
        on(router, .post, "/v1/runs") { [self] request, context in
            let caller = try context.requireCaller()
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            return try await submitRun(body: body, request: request, caller: caller)
        }

        on(router, .get, "/v1/runs") { [self] request, context in
            let caller = try context.requireCaller()
            return try await listRuns(request: request, caller: caller)
        }

        on(router, .get, "/v1/runs/{id}") { [self] _, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            if let snap = runs.snapshot(runId: id) {
                guard caller.isAdmin || snap.principal == caller.principal else { throw APIError.notFound("no run \(id)") }
                return JSONIO.response(RunViews.run(snap))
            }
            let episode = try await episode(id, for: caller)
            return JSONIO.response(RunViews.run(episode: episode))
        }

        on(router, .post, "/v1/runs/{id}/cancel") { [self] _, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            if let snap = runs.snapshot(runId: id), !(caller.isAdmin || snap.principal == caller.principal) {
                throw APIError.notFound("no run \(id)")
            }
            switch runs.cancel(runId: id) {
            case .cancelling:
                context.logger.info("run cancel requested", metadata: ["run_id": .string(id)])
                return JSONIO.response(["run_id": .string(id), "status": "cancelling"], status: .accepted)
            case .alreadyFinished(let status):
                throw APIError(.conflict, "already_finished", "run \(id) already finished (\(status.rawValue))",
                               extra: ["run_id": .string(id), "status": .string(status.rawValue)])
            case .unknown:
                let e = try await episode(id, for: caller)
                let status = e.document["status"]?.stringValue ?? "finished"
                throw APIError(.conflict, "already_finished", "run \(id) already finished (\(status))",
                               extra: ["run_id": .string(id), "status": .string(status)])
            }
        }

        on(router, .get, "/v1/episodes/{id}") { [self] _, context in
            let caller = try context.requireCaller()
            let e = try await episode(context.parameters.get("id") ?? "", for: caller)
            var o: [String: JSONValue] = ["run_id": .string(e.ref.runId), "seq": .int(e.ref.seq), "hash": .string(e.ref.hash),
                                          "prev_hash": .string(e.prevHash), "intact": .bool(e.problem == nil), "document": e.document]
            if let p = e.problem { o["problem"] = .string(p) }
            return JSONIO.response(.object(o))
        }
    }

    /// The stored episode of `runId`, if `caller` may see it (404 otherwise: a run of someone
    /// else is not acknowledged).
    func episode(_ runId: String, for caller: Caller) async throws -> Episode {
        guard EpisodeFormat.isValidRunId(runId), let log = host.episodes else { throw APIError.notFound("no run \(runId)") }
        let e: Episode
        do { e = try await log.show(runId: runId) } catch { throw APIError.notFound("no run \(runId)") }
        guard caller.isAdmin || e.document["principal"]?.stringValue == caller.principal else { throw APIError.notFound("no run \(runId)") }
        return e
    }

    func submitRun(body: JSONValue, request: Request, caller: Caller) async throws -> Response {
        guard let o = body.objectValue else { throw APIError.badRequest("invalid_request", "the body must be a JSON object {\"plan\": {...}, \"inputs\": {...}}") }
        for key in o.keys.sorted() where !["plan", "inputs", "parallelism"].contains(key) {
            throw APIError.badRequest("invalid_request", "unknown field '\(key)' (a run request has plan, inputs, parallelism)")
        }
        guard let planJSON = o["plan"] else { throw APIError(.unprocessableContent, "invalid_plan", "plan is missing") }
        let plan: Plan
        do { plan = try Plan.parse(planJSON) } catch {
            throw APIError(.unprocessableContent, "invalid_plan", error.description, extra: ["details": RunViews.details(error.errors)])
        }
        var given: [String: JSONValue] = [:]
        if let i = o["inputs"] {
            guard let obj = i.objectValue else { throw APIError(.unprocessableContent, "invalid_inputs", "inputs must be an object") }
            given = obj
        }
        var parallelism: Int?
        if let p = o["parallelism"] {
            guard let n = p.intValue, p.isNumber else {
                throw APIError(.unprocessableContent, "invalid_request", "parallelism must be an integer")
            }
            parallelism = n
        }
        var key: String?
        if let k = request.headers[.idempotencyKey] {
            guard !k.isEmpty, k.utf8.count <= 255, k.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                throw APIError.badRequest("invalid_parameter", "Idempotency-Key must be 1 to 255 visible ASCII characters")
            }
            key = k
        }
        let runRequest: RunRequest
        do {
            runRequest = try await host.pipeline.prepare(RunSubmission(plan: plan, inputs: given, principal: caller.principal, role: caller.role,
                                                                       parallelism: parallelism, origin: "rest"))
        } catch {
            switch error {
            case .invalidInputs(let e):
                throw APIError(.unprocessableContent, "invalid_inputs", error.description, extra: ["details": RunViews.details(e)])
            case .invalidOptions(let m): throw APIError(.unprocessableContent, "invalid_request", m)
            case .invalidPlan(let e):
                throw APIError(.unprocessableContent, "invalid_plan", error.description, extra: ["details": RunViews.details(e)])
            case .unknownRole(let m): throw APIError(.forbidden, "forbidden", m)
            }
        }
        let (snap, replayed): (RunSnapshot, Bool)
        do {
            (snap, replayed) = try await runs.submit(runRequest, idempotencyKey: key, fingerprint: SHA256.hex(body.canonicalBytes()))
        } catch {
            switch error {
            case .notAccepting: throw APIError(.serviceUnavailable, "shutting_down", error.description)
            case .idempotencyConflict(let id):
                throw APIError(.conflict, "idempotency_conflict", error.description, extra: ["run_id": .string(id)])
            case .unknownRole(let m): throw APIError(.forbidden, "forbidden", m)
            }
        }
        var headers = HTTPFields()
        headers[.location] = "/v1/runs/\(snap.runId)"
        if replayed { headers[.idempotentReplayed] = "true" }
        return JSONIO.response(RunViews.run(snap), status: .accepted, headers: headers)
    }

    func listRuns(request: Request, caller: Caller) async throws -> Response {
        let q = request.uri.queryParameters
        let limit = try RunViews.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
        let offset = try RunViews.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
        var status: String?
        if let s = q.get("status") {
            guard RunViews.listableStatuses.contains(s) else {
                throw APIError.badRequest("invalid_parameter", "status must be one of \(RunViews.listableStatuses.joined(separator: ", "))")
            }
            status = s
        }
        var principal = q.get("principal")
        if let p = principal, p.isEmpty { throw APIError.badRequest("invalid_parameter", "principal must not be empty") }
        if !caller.isAdmin {
            if let p = principal, p != caller.principal {
                throw APIError(.forbidden, "forbidden", "you may list only your own runs (principal \(caller.principal))")
            }
            principal = caller.principal
        }
        // Runs in flight first (newest first), then the episode index (newest first).
        let live = status == nil || status == "running" ? runs.inFlight(principal: principal) : []
        var items: [JSONValue] = []
        var seen = Set<String>()
        if offset < live.count {
            for s in live[offset..<min(live.count, offset + limit)] { items.append(RunViews.run(s)); seen.insert(s.runId) }
        }
        var total = live.count
        if status != "running", let log = host.episodes {
            do {
                total += try await log.store.countEpisodes(status: status, principal: principal)
                let remaining = limit - items.count
                if remaining > 0 {
                    let indexOffset = max(0, offset - live.count)
                    for e in try await log.list(status: status, principal: principal, limit: remaining, offset: indexOffset)
                    where !seen.contains(e.runId) {
                        items.append(RunViews.run(summary: e))
                    }
                }
            } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the run index cannot be read: \(error)")
            }
        }
        let next: JSONValue = offset + limit < total ? .int(offset + limit) : .null
        return JSONIO.response(["runs": .array(items), "limit": .int(limit), "offset": .int(offset), "total": .int(total), "next_offset": next])
    }
}

/// JSON views of runs, in flight or finished.
enum RunViews {
    /// Statuses `GET /v1/runs?status=` accepts.
    static let listableStatuses = ["running", "succeeded", "failed", "denied", "cancelled", "interrupted"]

    static func run(_ s: RunSnapshot) -> JSONValue {
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
        }
        if let e = s.episode { o["episode"] = ["seq": .int(e.seq), "hash": .string(e.hash)] }
        if let e = s.episodeError { o["episode_error"] = .string(e) }
        return .object(o)
    }

    static func run(episode e: Episode) -> JSONValue {
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

    static func run(summary e: EpisodeSummary) -> JSONValue {
        ["run_id": .string(e.runId), "status": .string(e.status), "plan_name": .string(e.planName), "principal": .string(e.principal),
         "started_at": .string(e.startedAt), "finished_at": .string(e.finishedAt), "duration_ms": .double(e.durationMs),
         "cancel_requested": false, "episode": ["seq": .int(e.seq), "hash": .string(e.hash)]]
    }

    static func step(_ s: StepRecord) -> JSONValue {
        var r: [String: JSONValue] = ["id": .string(s.id), "call": .string(s.call), "status": .string(s.status.rawValue),
                                      "attempts": .int(s.attempts.count)]
        if let reason = s.reason { r["reason"] = .string(reason) }
        return .object(r)
    }

    static func details(_ errors: [PlanError]) -> JSONValue {
        .array(errors.map { e in
            var o: [String: JSONValue] = ["message": .string(e.message)]
            if let s = e.step { o["step"] = .string(s) }
            if let f = e.field { o["field"] = .string(f) }
            return .object(o)
        })
    }

    static func intParameter(_ raw: String?, name: String, default def: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw else { return def }
        guard let v = Int(raw), range.contains(v) else {
            throw APIError.badRequest("invalid_parameter", "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }
}
