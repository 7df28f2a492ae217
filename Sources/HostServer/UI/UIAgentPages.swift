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
            let (agents, total) = try await agentPage(service, AgentFilter(limit: Self.dashboardPageSize, offset: offset), caller: ui.caller)
            var h = "<h1>Agents</h1>\n<p>\(total) agent(s).</p>\n"
            h += UIHTML.table(caption: "Agents", headers: ["Agent", "Status", "Principal", "Version", "Updated"], rows: agents.map { a in
                ["<a href=\"/ui/agents/\(UIHTML.urlComponent(a.id))\">\(UIHTML.escape(a.namespace == "default" ? a.name : "\(a.namespace)/\(a.name)"))</a>",
                 UIHTML.badge(a.status.rawValue), UIHTML.escape(a.principal), String(a.version), UIHTML.escape(a.updatedAt)]
            }, id: "agents")
            if agents.isEmpty { h += "<p class=\"empty\">No agents.</p>" }
            if offset + agents.count < total {
                h += "<nav class=\"pager\" aria-label=\"Pages\"><a rel=\"next\" href=\"/ui/agents?offset=\(offset + Self.dashboardPageSize)\">More</a></nav>"
            }
            return UIHTML.response(UIHTML.page(title: "Agents", section: "/ui/agents", viewer: ui.viewer, body: h))
        }

        onUI(router, .get, "/ui/agents/{id}") { [self] request, ui in
            let (service, agent) = try await visibleAgent(ui.context)
            let goals = try await agentCall { try await service.goals(agent.id, limit: 20, offset: 0) }
            let notice = request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice)
            return UIHTML.response(UIHTML.page(title: "Agent \(agent.name)", section: "/ui/agents", viewer: ui.viewer, notice: notice,
                                               body: Self.agentBody(agent, goals: goals, csrf: ui.csrfToken)))
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
        h += "<h2>Recent goals</h2>\n"
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
