import Foundation
import Host
import HTTPTypes
import Hummingbird
import JSON

extension NovaServer {
    /// `/v1/agents…`: agents (lifecycle, versions with `If-Match`), their goals (queued runs as
    /// the agent's principal) and their memory (full-text recall). Admin roles see and manage
    /// every agent; other callers the agents whose principal is their own (they may create only
    /// such agents). `{id}` is the agent's id, or its name (`namespace/name` outside `default`).
    func addAgentRoutes(_ router: Router<ServerContext>) {
        on(router, .post, "/v1/agents") { [self] request, context in
            let caller = try context.requireCaller()
            let service = try requireAgents()
            var body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            if case .object(var o) = body, o["principal"] == nil { o["principal"] = .string(caller.principal); body = .object(o) }
            guard caller.isAdmin || body["principal"]?.stringValue == caller.principal else {
                throw APIError(.forbidden, "forbidden", "only an admin role may create an agent for another principal")
            }
            let agent = try await agentCall { try await service.create(body) }
            context.logger.info("agent created", metadata: ["agent_id": .string(agent.id), "name": .string(agent.name)])
            return Self.agentResponse(agent, status: .created, location: "/v1/agents/\(agent.id)")
        }

        on(router, .get, "/v1/agents") { [self] request, context in
            let caller = try context.requireCaller()
            let service = try requireAgents()
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let filter = try Self.agentFilter({ q.get($0) }, limit: limit, offset: offset)
            let (agents, total) = try await agentPage(service, filter, caller: caller)
            return JSONIO.response(Self.page(agents.map(\.json), limit, offset, total, key: "items"))
        }

        on(router, .get, "/v1/agents/{id}") { [self] _, context in
            let (_, agent) = try await visibleAgent(context)
            return Self.agentResponse(agent)
        }

        on(router, .patch, "/v1/agents/{id}") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            if let p = body["principal"]?.stringValue, p != agent.principal, !(try context.requireCaller().isAdmin) {
                throw APIError(.forbidden, "forbidden", "only an admin role may give an agent another principal")
            }
            let ifVersion = try Self.ifMatch(request)
            let next = try await agentCall { try await service.update(agent.id, patch: body, ifVersion: ifVersion) }
            return Self.agentResponse(next)
        }

        on(router, .delete, "/v1/agents/{id}") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let next = try await agentCall { try await service.act(agent.id, .delete, ifVersion: try Self.ifMatch(request)) }
            context.logger.info("agent deleted", metadata: ["agent_id": .string(agent.id)])
            return Self.agentResponse(next)
        }

        for action in [AgentAction.pause, .resume, .stop] {
            on(router, .post, "/v1/agents/{id}/\(action.rawValue)") { [self] request, context in
                let (service, agent) = try await visibleAgent(context)
                let next = try await agentCall { try await service.act(agent.id, action, ifVersion: try Self.ifMatch(request)) }
                context.logger.info("agent \(action.rawValue)", metadata: ["agent_id": .string(agent.id), "status": .string(next.status.rawValue)])
                return Self.agentResponse(next)
            }
        }

        on(router, .get, "/v1/agents/{id}/versions") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let versions = try await agentCall { try await service.versions(agent.id) }
            return JSONIO.response(["items": .array(versions.map(\.json)), "total": .int(versions.count)])
        }

        on(router, .post, "/v1/agents/{id}/goals") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let (view, duplicate) = try await submitGoal(service, agent, body, idempotencyKey: request.headers[.idempotencyKey])
            var headers = HTTPFields()
            headers[.location] = "/v1/agents/\(agent.id)/runs/\(view.goal.id)"
            if duplicate { headers[.idempotentReplayed] = "true" }
            return JSONIO.response(view.json, status: .accepted, headers: headers)
        }

        on(router, .get, "/v1/agents/{id}/runs") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let goals = RouteHelpers.page(try await agentCall { try await service.goals(agent.id, limit: limit + 1, offset: offset) }, limit: limit, offset: offset)
            return JSONIO.response(["items": .array(goals.items.map(\.json)), "limit": .int(limit), "offset": .int(offset), "next_offset": goals.nextOffset])
        }

        on(router, .get, "/v1/agents/{id}/runs/{run_id}") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let view = try await agentGoal(service, agent, context)
            var o = view.json.objectValue ?? [:]
            if let run = try? await findRun(view.goal.id) { o["run"] = run.view }
            return JSONIO.response(.object(o))
        }

        on(router, .post, "/v1/agents/{id}/runs/{run_id}/cancel") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let view = try await agentGoal(service, agent, context)
            _ = runs.cancel(runId: view.goal.id)
            let (after, outcome) = try await agentCall { try await service.cancelGoal(view.goal.id) }
            switch outcome {
            case .cancelled, .cancelling:
                return JSONIO.response(after.json, status: .accepted)
            case .alreadyFinished, .notFound:
                throw APIError(.conflict, "already_finished", "goal \(view.goal.id) already finished (\(after.status))",
                               extra: ["run_id": .string(view.goal.id), "status": .string(after.status)])
            }
        }

        on(router, .get, "/v1/agents/{id}/provenance") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let items = RouteHelpers.page(try await agentCall { try await service.provenanceList(agent.id, limit: limit + 1, offset: offset) }, limit: limit, offset: offset)
            return JSONIO.response(["items": .array(items.items), "limit": .int(limit), "offset": .int(offset), "next_offset": items.nextOffset])
        }

        on(router, .get, "/v1/agents/{id}/provenance/{run_id}") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let id = context.parameters.get("run_id") ?? ""
            return JSONIO.response(try await agentCall { try await service.provenance(agent.id, goalId: id) })
        }

        on(router, .get, "/v1/agents/{id}/state") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 100, range: 1...10_000)
            let entries = try await agentCall { try await service.stateList(agent.id, prefix: q.get("prefix") ?? "", limit: limit) }
            return JSONIO.response(["items": .array(entries.map(\.json)), "limit": .int(limit)])
        }

        on(router, .get, "/v1/agents/{id}/state/{key}") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let e = try await agentCall { try await service.stateGet(agent.id, key: context.parameters.get("key") ?? "") }
            var headers = HTTPFields()
            headers[.eTag] = "\"\(e.version)\""
            return JSONIO.response(e.json, headers: headers)
        }

        on(router, .put, "/v1/agents/{id}/state/{key}") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            guard let o = body.objectValue, let value = o["value"], o.count == 1 else {
                throw APIError(.unprocessableContent, "invalid_request", "the body must be {\"value\": …}", extra: ["field": "value"])
            }
            // If-Match: "n" writes only at version n; If-None-Match: * only if the key is absent.
            var ifVersion = try Self.ifMatch(request)
            if request.headers[.ifNoneMatch] == "*" { ifVersion = 0 }
            let e = try await agentCall { try await service.statePut(agent.id, key: context.parameters.get("key") ?? "", value: value, ifVersion: ifVersion) }
            var headers = HTTPFields()
            headers[.eTag] = "\"\(e.version)\""
            return JSONIO.response(e.json, headers: headers)
        }

        on(router, .delete, "/v1/agents/{id}/state/{key}") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            try await agentCall { try await service.stateDelete(agent.id, key: context.parameters.get("key") ?? "", ifVersion: try Self.ifMatch(request)) }
            return Response(status: .noContent)
        }

        // Server-sent events: every change after `from` (or `Last-Event-ID`), in order, then live
        // ones; `compacted` then `snapshot` when changes it has not seen are gone.
        on(router, .get, "/v1/agents/{id}/watch") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let raw = request.uri.queryParameters.get("from") ?? request.headers[HTTPField.Name("Last-Event-ID")!] ?? "0"
            guard let from = Int64(raw), from >= 0 else { throw APIError.badRequest("invalid_parameter", "from must be a revision (an integer ≥ 0)") }
            _ = try await agentCall { try await service.watchStep(agentId: agent.id, after: from) }
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            let agentId = agent.id
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                var revision = from
                var idle = 0
                while !Task.isCancelled {
                    let step: AgentService.WatchStep
                    do { step = try await service.watchStep(agentId: agentId, after: revision) } catch { break }
                    var text = ""
                    switch step {
                    case .changes(let changes, _):
                        for c in changes { text += "id: \(c.revision)\nevent: change\ndata: \(c.json.serialized())\n\n" }
                        revision = changes.last?.revision ?? revision
                    case .snapshot(let entries, let at):
                        text += "event: compacted\ndata: {\"revision\": \(at)}\n\n"
                        text += "id: \(at)\nevent: snapshot\ndata: \(JSONValue.object(["revision": .int(Int(at)), "entries": .array(entries.map(\.json))]).serialized())\n\n"
                        revision = at
                    }
                    if text.isEmpty {
                        idle += 1
                        if idle % 150 == 0 { text = ": keep-alive\n\n" }  // every ~15 s
                    } else { idle = 0 }
                    if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
                    try await Task.sleep(nanoseconds: 100_000_000)
                }
                try await writer.finish(nil)
            })
        }

        on(router, .post, "/v1/agents/{id}/memory") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
            for key in o.keys.sorted() where !["memory_type", "text", "meta", "tags", "ttl_seconds"].contains(key) {
                throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(key)' (a memory item has memory_type, text, meta, tags, ttl_seconds)")
            }
            guard let text = o["text"]?.stringValue else { throw APIError(.unprocessableContent, "invalid_request", "text must be a string") }
            guard let tags = (o["tags"] ?? .array([])).arrayValue, tags.allSatisfy({ $0.stringValue != nil }) else {
                throw APIError(.unprocessableContent, "invalid_request", "tags must be an array of strings")
            }
            var ttl: Int?
            if let t = o["ttl_seconds"] {
                guard let n = t.intValue, t.isNumber else { throw APIError(.unprocessableContent, "invalid_request", "ttl_seconds must be an integer") }
                ttl = n
            }
            let item = try await agentCall {
                try await service.remember(agent.id, type: o["memory_type"]?.stringValue ?? "context", text: text, meta: o["meta"] ?? .object([:]),
                                           tags: tags.compactMap(\.stringValue), ttlSeconds: ttl)
            }
            var headers = HTTPFields()
            headers[.location] = "/v1/agents/\(agent.id)/memory/\(item.id)"
            return JSONIO.response(item.json, status: .created, headers: headers)
        }

        on(router, .get, "/v1/agents/{id}/recall") { [self] request, context in
            let (service, agent) = try await visibleAgent(context)
            let (hits, limit, offset, next) = try await recallMemory(service, agent, request.uri.queryParameters)
            let items: [JSONValue] = hits.map { hit in
                var o = hit.json.objectValue ?? [:]
                if let run = hit.item.sourceRunId, case .object(var source)? = o["source"] {
                    source["provenance"] = .string("/v1/agents/\(agent.id)/provenance/\(run)")
                    o["source"] = .object(source)
                }
                return .object(o)
            }
            return JSONIO.response(["items": .array(items), "limit": .int(limit), "offset": .int(offset), "next_offset": next])
        }

        on(router, .delete, "/v1/agents/{id}/memory/{memory_id}") { [self] _, context in
            let (service, agent) = try await visibleAgent(context)
            let memoryId = context.parameters.get("memory_id") ?? ""
            try await agentCall { try await service.forget(agent.id, memoryId: memoryId) }
            return Response(status: .noContent)
        }
    }

    func requireAgents() throws -> AgentService {
        guard let agents else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store for agents (it was started without a data directory)")
        }
        return agents
    }

    /// One page of agents as `GET /v1/agents` lists them for `caller` (every client: REST, the
    /// dashboard): admin roles see every agent, other callers the agents of their own principal
    /// (a filter in the store's query, so the page and its total are the caller's).
    func agentPage(_ service: AgentService, _ filter: AgentFilter, caller: Caller) async throws -> (agents: [Agent], total: Int) {
        var filter = filter
        if !caller.isAdmin { filter.principal = caller.principal }
        return try await agentCall { try await service.list(filter) }
    }

    /// `GET /v1/agents`'s filters (`status`, `label`, `namespace`, `q`) from the query
    /// parameter `value` names, 400 on a bad one (the dashboard's agents list reads them too).
    static func agentFilter(_ value: (String) -> String?, limit: Int, offset: Int) throws -> AgentFilter {
        var filter = AgentFilter(namespace: value("namespace"), limit: limit, offset: offset)
        if let s = value("status") {
            guard let status = AgentStatus(rawValue: s) else {
                throw APIError.badRequest("invalid_parameter", "status must be one of \(AgentStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.status = status
        }
        if let l = value("label") {
            let parts = l.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw APIError.badRequest("invalid_parameter", "label must be key:value") }
            filter.label = (parts[0], parts[1])
        }
        if let text = value("q") {
            guard text.count <= 200 else { throw APIError.badRequest("invalid_parameter", "q must be at most 200 characters") }
            filter.search = text
        }
        return filter
    }

    /// Submits a goal (`POST /v1/agents/{id}/goals`'s body) to `agent`, already authorized by
    /// `visibleAgent`, for every client (REST, the dashboard's goal form).
    func submitGoal(_ service: AgentService, _ agent: Agent, _ body: JSONValue, idempotencyKey: String?) async throws -> (GoalView, duplicate: Bool) {
        let goal = try Self.goalRequest(body, idempotencyKey: idempotencyKey)
        guard runs.isAccepting else { throw APIError(.serviceUnavailable, "shutting_down", RunSubmitError.notAccepting.description) }
        let (view, duplicate) = try await agentCall { try await service.submit(agent.id, goal) }
        return (view, duplicate)
    }

    /// The full-text recall of `GET /v1/agents/{id}/recall` over `agent`'s memory (already
    /// authorized by `visibleAgent`), from the query's `q`, `type`, `tag`, `since`, `until`,
    /// `limit` and `offset`, for every client (REST, the dashboard's recall box).
    func recallMemory(_ service: AgentService, _ agent: Agent, _ q: Parameters) async throws -> (hits: [RecallHit], limit: Int, offset: Int, nextOffset: JSONValue) {
        let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 20, range: 1...500)
        let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...1_000_000)
        var query = RecallQuery(owner: agent.id, text: q.get("q"), limit: limit + 1, offset: offset)
        query.types = q.getAll("type").flatMap { $0.split(separator: ",").map(String.init) }
        query.tags = q.getAll("tag").flatMap { $0.split(separator: ",").map(String.init) }
        for (name, keyPath) in [("since", \RecallQuery.sinceMs), ("until", \RecallQuery.untilMs)] {
            guard let raw = q.get(name) else { continue }
            guard let ms = Int64(raw) else { throw APIError.badRequest("invalid_parameter", "\(name) must be epoch milliseconds") }
            query[keyPath: keyPath] = ms
        }
        let page = RouteHelpers.page(try await agentCall { try await service.recall(agent.id, query: query) }, limit: limit, offset: offset)
        return (page.items, limit, offset, page.nextOffset)
    }

    /// The agent of the path, if the caller may see it (404 otherwise).
    func visibleAgent(_ context: ServerContext) async throws -> (AgentService, Agent) {
        let caller = try context.requireCaller()
        let service = try requireAgents()
        // The router hands path parameters over as sent: `team%2Fscout` (the documented way to
        // write `namespace/name` in a path) is decoded here.
        let raw = context.parameters.get("id") ?? ""
        let ref = raw.removingPercentEncoding ?? raw
        let agent = try await agentCall { try await service.agent(ref) }
        guard caller.isAdmin || agent.principal == caller.principal else { throw APIError.notFound("no agent \(ref)") }
        return (service, agent)
    }

    func agentGoal(_ service: AgentService, _ agent: Agent, _ context: ServerContext) async throws -> GoalView {
        let id = context.parameters.get("run_id") ?? ""
        let view = try await agentCall { try await service.goal(id) }
        guard view.goal.agentId == agent.id else { throw APIError.notFound("agent \(agent.name) has no goal \(id)") }
        return view
    }

    /// Runs an agent operation, answering its errors in the API's error shape.
    @discardableResult
    func agentCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as AgentError {
            var extra: [String: JSONValue] = [:]
            var headers = HTTPFields()
            switch e {
            case .invalid(let field, _): extra["field"] = .string(field)
            case .illegalTransition(_, let status, let allowed):
                extra["status"] = .string(status.rawValue)
                extra["allowed"] = .array(allowed.map { .string($0.rawValue) })
            case .staleVersion(let current):
                extra["version"] = .int(current)
                headers[.eTag] = "\"\(current)\""
            default: break
            }
            throw APIError(HTTPResponse.Status(code: e.httpStatus), e.code, e.description, extra: extra, headers: headers)
        } catch let e as APIError {
            throw e
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the agent store cannot be reached: \(error)")
        }
    }

    /// `If-Match: "3"` (or `3`, or `W/"3"`): the version the change is based on.
    static func ifMatch(_ request: Request) throws -> Int? {
        guard let raw = request.headers[.ifMatch] else { return nil }
        let digits = raw.replacingOccurrences(of: "W/", with: "").trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        guard let v = Int(digits), v > 0 else { throw APIError.badRequest("invalid_parameter", "If-Match must be the agent's version, e.g. \"3\"") }
        return v
    }

    static func agentResponse(_ agent: Agent, status: HTTPResponse.Status = .ok, location: String? = nil) -> Response {
        var headers = HTTPFields()
        headers[.eTag] = "\"\(agent.version)\""
        if let location { headers[.location] = location }
        return JSONIO.response(agent.json, status: status, headers: headers)
    }

    static func goalRequest(_ body: JSONValue, idempotencyKey: String?) throws -> GoalRequest {
        guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object {\"goal\": \"…\", \"plan\": {…}}") }
        let known = ["goal", "plan", "template", "params", "inputs", "priority", "deadline", "deadline_ms"]
        for key in o.keys.sorted() where !known.contains(key) {
            throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(key)' (a goal has \(known.joined(separator: ", ")))")
        }
        guard let text = o["goal"]?.stringValue else { throw APIError(.unprocessableContent, "invalid_request", "goal must be a string", extra: ["field": "goal"]) }
        var inputs: [String: JSONValue] = [:]
        if let i = o["inputs"] {
            guard let obj = i.objectValue else { throw APIError(.unprocessableContent, "invalid_inputs", "inputs must be an object") }
            inputs = obj
        }
        var priority = 0
        if let p = o["priority"] {
            guard let n = p.intValue, p.isNumber, (-1_000_000...1_000_000).contains(n) else {
                throw APIError(.unprocessableContent, "invalid_request", "priority must be an integer from -1000000 to 1000000")
            }
            priority = n
        }
        var deadlineMs: Int64?
        if let d = o["deadline_ms"] {
            guard let n = d.intValue, d.isNumber, n > 0 else { throw APIError(.unprocessableContent, "invalid_request", "deadline_ms must be epoch milliseconds") }
            deadlineMs = Int64(n)
        } else if let d = o["deadline"] {
            guard let text = d.stringValue, let ms = Timestamps.parseMs(text) else {
                throw APIError(.unprocessableContent, "invalid_request", "deadline must be an RFC 3339 time such as 2026-12-05T20:00:00Z")
            }
            deadlineMs = ms
        }
        var request = GoalRequest(goal: text, plan: o["plan"], inputs: inputs, priority: priority, deadlineMs: deadlineMs,
                                  idempotencyKey: try RouteHelpers.idempotencyKey(idempotencyKey))
        if let t = o["template"] {
            guard let ref = t.stringValue else { throw APIError(.unprocessableContent, "invalid_request", "template must be a string like \"restock@1\"") }
            request.template = ref
        }
        if let p = o["params"] {
            guard p.objectValue != nil else { throw APIError(.unprocessableContent, "invalid_request", "params must be an object") }
            request.params = p
        }
        return request
    }
}
