import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/agents` (the agents the caller may see, as `GET /v1/agents` lists them),
    /// `GET /ui/agents/{id}` (one agent, its recent goals, and the lifecycle buttons its status
    /// allows), `POST /ui/agents/{id}/pause|resume|stop` (first a confirmation page, then, with
    /// `confirm=yes`, the action through `AgentService.act` at the version the page showed —
    /// the same authorization as `POST /v1/agents/{id}/pause`: another principal's agent is 404
    /// to a caller who is not an admin).
    func addDashboardAgentRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/agents") { [self] request, ui in
            let service = try requireAgents()
            let q = request.uri.queryParameters
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            var filter = AgentFilter(limit: Self.dashboardPageSize, offset: offset)
            if let s = q.get("status"), !s.isEmpty {
                guard let status = AgentStatus(rawValue: s) else {
                    throw APIError.badRequest("invalid_parameter", "status must be one of \(AgentStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                filter.status = status
            }
            if let text = q.get("q"), !text.isEmpty {
                guard text.count <= 200 else { throw APIError.badRequest("invalid_parameter", "the search text must be at most 200 characters") }
                filter.search = text
            }
            let (agents, total) = try await agentPage(service, filter, caller: ui.caller)
            return UIHTML.response(UIHTML.page(title: "Agents", section: "/ui/agents", viewer: ui.viewer,
                                               body: Self.agentsBody(agents, total: total, filter: filter)))
        }

        onUI(router, .get, "/ui/agents/{id}") { [self] request, ui in
            let (service, agent) = try await visibleAgent(ui.context)
            let q = request.uri.queryParameters
            let goals = try await agentCall { try await service.goals(agent.id, limit: 20, offset: 0) }
            var h = Self.agentBody(agent, goals: goals, csrf: ui.csrfToken)
            h += try await agentMemorySection(service, agent, q)
            h += try await agentHistorySection(service, agent)
            let notice = q.get("notice").flatMap(Self.dashboardPageNotice)
            return UIHTML.response(UIHTML.page(title: "Agent \(agent.name)", section: "/ui/agents", viewer: ui.viewer, notice: notice, body: h))
        }

        // A goal from the agent page's form, through `submitGoal` (the code of
        // `POST /v1/agents/{id}/goals`); the form's idempotency key makes a resubmitted form
        // return the goal it already created.
        onUI(router, .post, "/ui/agents/{id}/goals") { [self] _, ui in
            let (service, agent) = try await visibleAgent(ui.context)
            var body: [String: JSONValue] = ["goal": .string(ui.form["goal"] ?? "")]
            if let plan = ui.form["plan"]?.trimmingCharacters(in: .whitespacesAndNewlines), !plan.isEmpty {
                do { body["plan"] = try JSONValue.parse(plan) } catch {
                    throw APIError(.unprocessableContent, "invalid_plan", "the plan is not valid JSON: \(error)")
                }
            }
            let key = ui.form["idempotency_key"].flatMap { $0.isEmpty ? nil : $0 }
            let (view, _) = try await submitGoal(service, agent, .object(body), idempotencyKey: key)
            ui.context.logger.info("goal submitted", metadata: ["agent_id": .string(agent.id), "run_id": .string(view.goal.id), "via": "dashboard"])
            return UIHTML.redirect("/ui/agents/\(UIHTML.urlComponent(agent.id))?notice=goal_submitted")
        }

        for action in [AgentAction.pause, .resume, .stop] {
            onUI(router, .post, "/ui/agents/{id}/\(action.rawValue)") { [self] _, ui in
                let (service, agent) = try await visibleAgent(ui.context)
                guard ui.form["confirm"] == "yes" else {
                    return UIHTML.response(UIHTML.page(title: "Confirm", section: "/ui/agents", viewer: ui.viewer,
                                                       body: Self.confirmBody(agent, action, version: ui.form["version"], csrf: ui.csrfToken)))
                }
                var version: Int?
                if let v = ui.form["version"], !v.isEmpty {
                    guard let n = Int(v) else { throw APIError.badRequest("invalid_parameter", "version must be an integer") }
                    version = n
                }
                let next = try await agentCall { try await service.act(agent.id, action, ifVersion: version) }
                ui.context.logger.info("agent \(action.rawValue)", metadata: ["agent_id": .string(agent.id), "status": .string(next.status.rawValue), "via": "dashboard"])
                let notice = action == .pause ? "paused" : action == .resume ? "resumed" : "stopped"
                return UIHTML.redirect("/ui/agents/\(UIHTML.urlComponent(agent.id))?notice=\(notice)")
            }
        }
    }

    /// The agents list: status filter, search box, one page of agents, pager keeping the filters.
    static func agentsBody(_ agents: [Agent], total: Int, filter: AgentFilter) -> String {
        var h = "<h1>Agents</h1>\n<form class=\"filters\" method=\"get\" action=\"/ui/agents\" role=\"search\">\n"
        h += "<div><label for=\"agent-status\">Status</label>\n<select id=\"agent-status\" name=\"status\">"
        h += "<option value=\"\"\(filter.status == nil ? " selected" : "")>all but deleted</option>"
        for s in AgentStatus.allCases { h += "<option value=\"\(s.rawValue)\"\(filter.status == s ? " selected" : "")>\(s.rawValue)</option>" }
        h += "</select></div>\n"
        h += "<div><label for=\"agent-search\">Name, id or label</label>\n"
        h += "<input type=\"search\" id=\"agent-search\" name=\"q\" maxlength=\"200\" value=\"\(UIHTML.escape(filter.search ?? ""))\"></div>\n"
        h += "<button type=\"submit\">Search</button>\n</form>\n"
        h += "<p id=\"agents-total\">\(total) agent(s)\(filter.search.map { " matching \u{201C}\(UIHTML.escape($0))\u{201D}" } ?? "")\(filter.status.map { " with status \($0.rawValue)" } ?? "").</p>\n"
        h += UIHTML.table(caption: "Agents", headers: ["Agent", "Status", "Principal", "Labels", "Version", "Updated"], rows: agents.map { a in
            ["<a href=\"/ui/agents/\(UIHTML.urlComponent(a.id))\">\(UIHTML.escape(a.namespace == "default" ? a.name : "\(a.namespace)/\(a.name)"))</a>",
             UIHTML.badge(a.status.rawValue), UIHTML.escape(a.principal),
             UIHTML.escape(a.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")),
             String(a.version), UIHTML.escape(a.updatedAt)]
        }, id: "agents")
        if agents.isEmpty { h += "<p class=\"empty\">No agents\(filter.search != nil || filter.status != nil ? " match" : "").</p>" }
        let query = [filter.status.map { "status=\($0.rawValue)" }, filter.search.map { "q=\(UIHTML.urlComponent($0))" }].compactMap { $0 }
        let prefix = query.isEmpty ? "" : UIHTML.escape(query.joined(separator: "&")) + "&amp;"
        var pager: [String] = []
        if filter.offset > 0 {
            pager.append("<a rel=\"prev\" href=\"/ui/agents?\(prefix)offset=\(max(0, filter.offset - dashboardPageSize))\">Previous</a>")
        }
        if filter.offset + agents.count < total {
            pager.append("<a rel=\"next\" href=\"/ui/agents?\(prefix)offset=\(filter.offset + dashboardPageSize)\">More</a>")
        }
        if !pager.isEmpty { h += "<nav class=\"pager\" aria-label=\"Pages\">\(pager.joined(separator: " "))</nav>" }
        return h
    }

    /// The lifecycle actions a status allows, as the buttons offer them.
    static func dashboardActions(_ status: AgentStatus) -> [AgentAction] {
        [AgentAction.pause, .resume, .stop].filter { $0.target(from: status) != nil }
    }

    static func agentBody(_ agent: Agent, goals: [GoalView], csrf: String) -> String {
        func fact(_ label: String, _ value: String) -> String { "<dt>\(UIHTML.escape(label))</dt><dd>\(value)</dd>" }
        var h = "<h1>Agent <span id=\"agent-name\">\(UIHTML.escape(agent.name))</span></h1>\n<dl class=\"facts\">"
        h += fact("Status", "<span id=\"agent-status\">\(UIHTML.badge(agent.status.rawValue))</span>")
        h += fact("Id", "<code>\(UIHTML.escape(agent.id))</code>")
        h += fact("Namespace", UIHTML.escape(agent.namespace))
        h += fact("Principal", UIHTML.escape(agent.principal))
        h += fact("Version", String(agent.version))
        if !agent.description.isEmpty { h += fact("Description", UIHTML.escape(agent.description)) }
        h += fact("Updated", UIHTML.escape(agent.updatedAt))
        h += "</dl>\n"
        let actions = dashboardActions(agent.status)
        if !actions.isEmpty {
            h += "<div class=\"actions\">"
            for a in actions {
                h += "<form method=\"post\" action=\"/ui/agents/\(UIHTML.urlComponent(agent.id))/\(a.rawValue)\" class=\"inline\">"
                h += UIHTML.csrfField(csrf) + "<input type=\"hidden\" name=\"version\" value=\"\(agent.version)\">"
                h += "<button type=\"submit\" id=\"agent-\(a.rawValue)\"\(a == .stop ? " class=\"danger\"" : "")>\(a.rawValue.capitalized)…</button></form>"
            }
            h += "</div>\n"
        }
        if agent.status != .deleted {
            h += """
            <h2>Submit a goal</h2>
            <form method="post" action="/ui/agents/\(UIHTML.urlComponent(agent.id))/goals" class="goal-form">
            \(UIHTML.csrfField(csrf))
            <input type="hidden" name="idempotency_key" value="dashboard-\(UISessionStore.randomToken())">
            <div><label for="goal">Goal</label>
            <input type="text" id="goal" name="goal" required maxlength="10000"></div>
            <div><label for="goal-plan">Plan (JSON, optional: else the agent's plan)</label>
            <textarea id="goal-plan" name="plan" rows="4"></textarea></div>
            <button type="submit" id="submit-goal">Submit goal</button>
            </form>

            """
        }
        h += "<h2>Recent goals</h2>\n<p><a href=\"/ui/runs?agent=\(UIHTML.urlComponent(agent.id))\" id=\"agent-runs\">Every run of this agent</a> (the runs list, filtered by agent).</p>\n"
        h += UIHTML.table(caption: "The agent's 20 most recent goals", headers: ["Goal", "Run", "Status", "Created"], rows: goals.map { g in
            [UIHTML.escape(g.goal.text), "<a href=\"/ui/runs/\(UIHTML.urlComponent(g.goal.id))\">\(UIHTML.escape(g.goal.id))</a>",
             UIHTML.badge(g.status), UIHTML.escape(g.goal.createdAt)]
        }, empty: "No goals yet.")
        return h
    }

    static func confirmBody(_ agent: Agent, _ action: AgentAction, version: String?, csrf: String) -> String {
        let what: String
        switch action {
        case .pause: what = "Pausing stops the agent from starting new goals until it is resumed."
        case .resume: what = "Resuming lets the agent start goals again."
        default: what = "Stopping ends the agent's work: it starts no goals until it is resumed."
        }
        return """
        <h1>\(UIHTML.escape(action.rawValue.capitalized)) agent \(UIHTML.escape(agent.name))?</h1>
        <p>\(UIHTML.escape(what))</p>
        <form method="post" action="/ui/agents/\(UIHTML.urlComponent(agent.id))/\(action.rawValue)" class="actions">
        \(UIHTML.csrfField(csrf))
        <input type="hidden" name="version" value="\(UIHTML.escape(version ?? String(agent.version)))">
        <input type="hidden" name="confirm" value="yes">
        <button type="submit" id="confirm" autofocus\(action == .stop ? " class=\"danger\"" : "")>Yes, \(UIHTML.escape(action.rawValue))</button>
        <a href="/ui/agents/\(UIHTML.urlComponent(agent.id))">Cancel</a>
        </form>
        """
    }
}
