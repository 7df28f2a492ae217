import Host
import Hummingbird
import JSON
import Logging
import NIOCore

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

        // Server-Sent Events: the runs `GET /v1/runs` would list with the same filters, then
        // each one that appears or changes (polled once a second), as `run` events.
        on(router, .get, "/v1/runs/stream") { [self] request, context in
            let caller = try context.requireCaller()
            let filter = try await runListFilter(request, caller: caller)
            _ = try await runPage(filter, limit: 1, offset: 0, caller: caller)  // errors before the stream starts
            return runEvents(filter, caller: caller, event: { $0 }, headers: [:], endReason: "credential no longer valid", alive: { true })
        }

        on(router, .get, "/v1/runs/{id}") { [self] _, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            guard let found = try await findRun(id), caller.isAdmin || found.principal == caller.principal else {
                throw APIError.notFound("no run \(id)")
            }
            return JSONIO.response(found.view)
        }

        on(router, .post, "/v1/runs/{id}/cancel") { [self] _, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            let status = try await cancelRun(id, caller: caller, logger: context.logger)
            return JSONIO.response(["run_id": .string(id), "status": .string(status)], status: .accepted)
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

    /// Cancels run `id` for `caller` (every client: REST, the dashboard): `cancelled` (it was
    /// still queued: it never runs) or `cancelling` (running here or on another host); 409
    /// `already_finished`; 404 for a run the caller may not see.
    func cancelRun(_ id: String, caller: Caller, logger: Logger) async throws -> String {
        guard let found = try await findRun(id), caller.isAdmin || found.principal == caller.principal else {
            throw APIError.notFound("no run \(id)")
        }
        func finished(_ status: String) -> APIError {
            APIError(.conflict, "already_finished", "run \(id) already finished (\(status))",
                     extra: ["run_id": .string(id), "status": .string(status)])
        }
        // In flight here: cancel it directly. Otherwise through its job, on whichever host runs it.
        switch runs.cancel(runId: id) {
        case .cancelling:
            logger.info("run cancel requested", metadata: ["run_id": .string(id)])
            if let queue { _ = try? await queue.cancelJob(id: id) }
            return "cancelling"
        case .alreadyFinished(let status):
            throw finished(status.rawValue)
        case .unknown:
            guard !found.finished, let queue else { throw finished(found.status) }
            let outcome: JobCancelOutcome
            do { outcome = try await queue.cancelJob(id: id) } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be reached: \(error)")
            }
            switch outcome {
            case .cancelled:
                logger.info("queued run cancelled", metadata: ["run_id": .string(id)])
                return "cancelled"
            case .cancelling:
                logger.info("run cancel requested", metadata: ["run_id": .string(id)])
                return "cancelling"
            case .alreadyFinished, .notFound:
                throw finished(found.status)
            }
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
        for key in o.keys.sorted() where !["plan", "template", "params", "inputs", "parallelism", "queue", "priority"].contains(key) {
            throw APIError.badRequest("invalid_request", "unknown field '\(key)' (a run request has plan or template and params, inputs, parallelism, queue, priority)")
        }
        var queueName = config.runQueues.first ?? JobQueueLimits.defaultQueue
        if let q = o["queue"] {
            guard let name = q.stringValue, config.runQueues.contains(name) else {
                throw APIError(.unprocessableContent, "unknown_queue",
                               "unknown queue \(q.serialized()) (runs may go to: \(config.runQueues.joined(separator: ", ")))")
            }
            queueName = name
        }
        var priority = 0
        if let p = o["priority"] {
            guard let n = p.intValue, p.isNumber, (-1_000_000...1_000_000).contains(n) else {
                throw APIError(.unprocessableContent, "invalid_request", "priority must be an integer from -1000000 to 1000000 (higher runs first)")
            }
            priority = n
        }
        let plan: Plan
        var template: TemplateProvenance?
        if let ref = o["template"] {
            guard o["plan"] == nil else { throw APIError(.unprocessableContent, "invalid_request", "give plan or template, not both") }
            (plan, template) = try await renderTemplate(ref, params: o["params"])
        } else {
            guard o["params"] == nil else { throw APIError(.unprocessableContent, "invalid_request", "params are for a template run (give template)") }
            guard let planJSON = o["plan"] else { throw APIError(.unprocessableContent, "invalid_plan", "plan is missing (or give template and params)") }
            do { plan = try Plan.parse(planJSON) } catch {
                throw APIError(.unprocessableContent, "invalid_plan", error.description, extra: ["details": RouteHelpers.details(error.errors)])
            }
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
        let key = try RouteHelpers.idempotencyKey(request.headers[.idempotencyKey])
        let runRequest: RunRequest
        do {
            var s = RunSubmission(plan: plan, inputs: given, principal: caller.principal, role: caller.role, parallelism: parallelism, origin: "rest")
            s.template = template
            runRequest = try await host.pipeline.prepare(s)
        } catch {
            switch error {
            case .invalidInputs(let e):
                throw APIError(.unprocessableContent, "invalid_inputs", error.description, extra: ["details": RouteHelpers.details(e)])
            case .invalidOptions(let m): throw APIError(.unprocessableContent, "invalid_request", m)
            case .invalidPlan(let e):
                throw APIError(.unprocessableContent, "invalid_plan", error.description, extra: ["details": RouteHelpers.details(e)])
            case .unknownRole(let m): throw APIError(.forbidden, "forbidden", m)
            }
        }
        guard let queue else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no job queue (it was started without a data directory)")
        }
        guard runs.isAccepting else { throw APIError(.serviceUnavailable, "shutting_down", RunSubmitError.notAccepting.description) }
        let fingerprint = SHA256.hex(body.canonicalBytes())
        let uniqueKey = key.map { RunJob.uniqueKey(principal: caller.principal, idempotencyKey: $0) }
        var submission = RunSubmission(plan: plan, inputs: runRequest.inputs, principal: caller.principal, role: caller.role,
                                       parallelism: runRequest.options.parallelism, origin: "rest")
        submission.template = template
        let runId = RunId.make()
        let spec = JobSpec(id: runId, kind: RunJob.kind, payload: RunJob.payload(submission, fingerprint: fingerprint, submittedAt: Timestamps.now()),
                           queue: queueName, priority: priority, uniqueKey: uniqueKey, maxAttempts: config.runMaxAttempts)
        var job: Job
        var replayed = false
        do {
            if let uniqueKey, let earlier = try await queue.listJobs(JobFilter(uniqueKey: uniqueKey), limit: 1, offset: 0).first,
               Timestamps.wallNanos() / 1_000_000 - earlier.createdAtMs < Int64(config.idempotencyTTLSeconds) * 1000 {
                (job, replayed) = (earlier, true)
            } else {
                let result = try await queue.enqueue(spec)
                (job, replayed) = (result.job, result.duplicate)
            }
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the run could not be queued: \(error)")
        }
        if replayed && job.payload["fingerprint"]?.stringValue != fingerprint {
            throw APIError(.conflict, "idempotency_conflict",
                           "this Idempotency-Key was already used for a different request (run \(job.id)); use a new key",
                           extra: ["run_id": .string(job.id)])
        }
        var headers = HTTPFields()
        headers[.location] = "/v1/runs/\(job.id)"
        if replayed { headers[.idempotentReplayed] = "true" }
        let view = replayed ? (try? await findRun(job.id))?.view ?? RunViews.run(job: job) : RunViews.run(job: job)
        return JSONIO.response(view, status: .accepted, headers: headers)
    }

    /// The run `id` wherever it is (503 when the store cannot be read).
    func findRun(_ id: String) async throws -> RunLookup.Found? {
        do { return try await lookup.find(runId: id) } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the run cannot be looked up: \(error)")
        }
    }

    func listRuns(request: Request, caller: Caller) async throws -> Response {
        let q = request.uri.queryParameters
        let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
        let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
        var filter = try await runListFilter(request, caller: caller)
        if let raw = q.get("before_seq") {
            guard q.get("offset") == nil else {
                throw APIError.badRequest("invalid_parameter", "give offset or before_seq, not both (before_seq pages through recorded runs by their seq)")
            }
            filter.beforeSeq = try RouteHelpers.intParameter(raw, name: "before_seq", default: 1, range: 1...Int.max)
        }
        return JSONIO.response(try await runPage(filter, limit: limit, offset: offset, caller: caller))
    }

    /// The filters of `GET /v1/runs` and its stream from the query: `status`, `principal`,
    /// `plan`, `agent` (an id or name the caller may see; 404 otherwise). 400 for a bad value.
    func runListFilter(_ request: Request, caller: Caller) async throws -> RunListFilter {
        let q = request.uri.queryParameters
        var status: String?
        if let s = q.get("status") {
            guard RunViews.listableStatuses.contains(s) else {
                throw APIError.badRequest("invalid_parameter", "status must be one of \(RunViews.listableStatuses.joined(separator: ", "))")
            }
            status = s
        }
        var filter = RunListFilter(status: status, principal: q.get("principal"), plan: q.get("plan"))
        for (name, value) in [("principal", filter.principal), ("plan", filter.plan), ("agent", q.get("agent"))] where value?.isEmpty == true {
            throw APIError.badRequest("invalid_parameter", "\(name) must not be empty")
        }
        if let ref = q.get("agent") { filter.agentId = try await runAgentId(ref, caller: caller) }
        return filter
    }

    /// A Server-Sent Events response: every run of the first page `filter` lists, then each run
    /// that appears or changes, polled once a second, as `event: run` with `event(view)` as data.
    /// Ends with an `end` event (`endReason`) once `alive` says no or the caller's credential no
    /// longer stands for the same caller under the current configuration and policy.
    func runEvents(_ filter: RunListFilter, caller: Caller, event: @escaping @Sendable (JSONValue) -> JSONValue, headers extra: HTTPFields,
                   endReason: String, alive: @escaping @Sendable () -> Bool) -> Response {
        var headers = extra
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            var sent: [String: String] = [:]
            var idle = 0
            try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
            while !Task.isCancelled {
                guard alive(), (try? authenticator.revalidate(caller)) == caller else {
                    try await writer.write(ByteBuffer(string: "event: end\ndata: \(JSONValue.object(["reason": .string(endReason)]).serialized())\n\n"))
                    break
                }
                var text = ""
                if let page = try? await runPage(filter, limit: 50, offset: 0, caller: caller) {
                    // Oldest first: a list inserts each new run at the top.
                    for run in (page["runs"]?.arrayValue ?? []).reversed() {
                        guard let id = run["run_id"]?.stringValue else { continue }
                        let signature = run.serialized(sortedKeys: true)
                        if sent[id] != signature {
                            sent[id] = signature
                            text += "event: run\ndata: \(event(run).serialized())\n\n"
                        }
                    }
                    if sent.count > 1000 { sent = [:] }  // bounded; a resend only repeats a run's latest state
                }
                if text.isEmpty {
                    idle += 1
                    if idle % 15 == 0 { text = ": keep-alive\n\n" }
                } else { idle = 0 }
                if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        })
    }

    /// The id of the agent `ref` (an id or name) for a runs filter, if `caller` may see it: the
    /// agent's page's check (404 for another principal's agent unless admin, or an unknown one).
    func runAgentId(_ ref: String, caller: Caller) async throws -> String {
        let service = try requireAgents()
        let agent = try await agentCall { try await service.agent(ref) }
        guard caller.isAdmin || agent.principal == caller.principal else { throw APIError.notFound("no agent \(ref)") }
        return agent.id
    }

    /// One page of runs as `GET /v1/runs` answers it (`{runs, limit, offset, total,
    /// next_offset}`), authorized the same way for every client (REST, dashboard): a caller that
    /// is not an admin sees only its own principal's runs, and asking for another's is 403.
    /// Recorded runs are filtered in the store's query; runs not yet recorded (jobs, runs in
    /// flight here) by their job's payload or snapshot.
    func runPage(status: String?, principal: String?, limit: Int, offset: Int, caller: Caller) async throws -> JSONValue {
        try await runPage(RunListFilter(status: status, principal: principal), limit: limit, offset: offset, caller: caller)
    }

    /// `runPage` with every filter of `GET /v1/runs`.
    func runPage(_ filter: RunListFilter, limit: Int, offset: Int, caller: Caller) async throws -> JSONValue {
        let status = filter.status
        var principal = filter.principal
        if !caller.isAdmin {
            if let p = principal, p != caller.principal {
                throw APIError(.forbidden, "forbidden", "you may list only your own runs (principal \(caller.principal))")
            }
            principal = caller.principal
        }
        // Runs not yet recorded first — queued or running on any host, and direct calls in
        // flight here — newest first; then the episode index (newest first).
        var live: [(key: String, view: JSONValue)] = []
        // A cursor (`before_seq`) pages through recorded runs only.
        if filter.beforeSeq == nil && (status == nil || status == "running" || status == "queued") {
            var ids = Set<String>()
            let pending: [Job]
            do { pending = try await lookup.pendingRuns(status: status, principal: principal, limit: 10_000) } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be read: \(error)")
            }
            for job in pending {
                if let agent = filter.agentId, job.payload["agent_id"]?.stringValue != agent { continue }
                if let plan = filter.plan, RunViews.run(job: job)["plan_name"]?.stringValue != plan { continue }
                // A run is recorded a moment before its job is marked done: count it once.
                if job.state == .running, (try? await host.episodes?.store.episode(runId: job.id)) != nil { continue }
                ids.insert(job.id)
                let view = RunViews.run(job: job)
                live.append((view["started_at"]?.stringValue ?? "", view))
            }
            if status != "queued" {
                for snap in runs.inFlight(principal: principal) where !ids.contains(snap.runId) {
                    if let plan = filter.plan, snap.planName != plan { continue }
                    if let agent = filter.agentId, (try? await host.episodes?.store.agentStore?.goal(id: snap.runId))??.agentId != agent { continue }
                    live.append((snap.submittedAt, RunViews.run(snap)))
                }
            }
            live.sort { $0.key > $1.key }
        }
        var items: [JSONValue] = []
        var seen = Set<String>()
        if offset < live.count {
            for s in live[offset..<min(live.count, offset + limit)] {
                items.append(s.view)
                seen.insert(s.view["run_id"]?.stringValue ?? "")
            }
        }
        var total = live.count
        var lastSeq: Int?
        if status != "running" && status != "queued", let log = host.episodes {
            do {
                let indexed = EpisodeFilter(status: status, principal: principal, planName: filter.plan, agentId: filter.agentId,
                                            beforeSeq: filter.beforeSeq)
                total += try await log.store.countEpisodes(indexed)
                let remaining = limit - items.count
                if remaining > 0 {
                    let indexOffset = max(0, offset - live.count)
                    for e in try await log.list(indexed, limit: remaining, offset: indexOffset)
                    where !seen.contains(e.runId) {
                        items.append(RunViews.run(summary: e))
                        lastSeq = e.seq
                    }
                }
            } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the run index cannot be read: \(error)")
            }
        }
        guard case .object(var page) = Self.page(items, limit, offset, total, key: "runs") else { preconditionFailure("a page is an object") }
        // The cursor of the next page: older recorded runs than the last one listed here (runs
        // recorded meanwhile do not shift it, as they shift offsets).
        page["next_before_seq"] = offset + items.count < total ? lastSeq.map { .int($0) } ?? .null : .null
        return .object(page)
    }
}

/// What a runs list (`GET /v1/runs`, the dashboard's runs page) filters on; nil matches all.
struct RunListFilter: Sendable, Equatable {
    /// One of `RunViews.listableStatuses`.
    var status: String?
    /// Who ran it (a caller who is not an admin may give only its own).
    var principal: String?
    /// The plan's name, exactly.
    var plan: String?
    /// Only goals of this agent (its id, already authorized by `runAgentId`).
    var agentId: String?
    /// Only recorded runs whose episode comes before this chain position (`before_seq`).
    var beforeSeq: Int?
}

/// Request parsing and error details shared by the routes.
enum RouteHelpers {
    /// One page of a list read with one item more than `limit`: the page, and `next_offset`
    /// (null on the last page), so clients page without a count query.
    static func page<T>(_ fetched: [T], limit: Int, offset: Int) -> (items: [T], nextOffset: JSONValue) {
        fetched.count > limit ? (Array(fetched.prefix(limit)), .int(offset + limit)) : (fetched, .null)
    }

    /// The `Idempotency-Key` header, checked: 1 to 255 visible ASCII characters (400 otherwise).
    static func idempotencyKey(_ raw: String?) throws -> String? {
        guard let k = raw else { return nil }
        guard !k.isEmpty, k.utf8.count <= 255, k.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw APIError.badRequest("invalid_parameter", "Idempotency-Key must be 1 to 255 visible ASCII characters")
        }
        return k
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
