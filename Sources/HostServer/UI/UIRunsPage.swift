import Foundation
import Host
import Hummingbird
import JSON
import NIOCore

extension NovaServer {
    /// `GET /ui/runs` (the runs list: `runPage`, the code of `GET /v1/runs`, 50 a page, filtered
    /// by status, principal, agent and plan), `GET /ui/runs/events` (Server-Sent Events: every run of the first page, then
    /// each run that appears or changes, as JSON `run` events, polled once a second while the
    /// session lives), and the run page (`addDashboardRunPageRoutes`).
    func addDashboardRunRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/runs") { [self] request, ui in
            let (filter, agentRef) = try await dashboardRunFilter(request, caller: ui.caller)
            let offset = try RouteHelpers.intParameter(request.uri.queryParameters.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let page = try await runPage(filter, limit: Self.dashboardPageSize, offset: offset, caller: ui.caller)
            return UIHTML.response(UIHTML.page(title: "Runs", section: "/ui/runs", viewer: ui.viewer,
                                               body: Self.runsBody(page, filter: filter, agentRef: agentRef, offset: offset, admin: ui.caller.isAdmin)))
        }

        // The stream lists what the page lists: the same filters, so a run that does not match
        // them is never sent (and never inserted live).
        onUI(router, .get, "/ui/runs/events") { [self] request, ui in
            let (filter, _) = try await dashboardRunFilter(request, caller: ui.caller)
            let (caller, sessionId, sessions) = (ui.caller, ui.sessionId, uiSessions)
            _ = try await runPage(filter, limit: 1, offset: 0, caller: caller)  // errors before the stream starts
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            headers[.contentSecurityPolicy] = UIHTML.contentSecurityPolicy
            return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
                var sent: [String: String] = [:]
                var idle = 0
                try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                while !Task.isCancelled {
                    guard sessions.isLive(sessionId), (try? authenticator.revalidate(caller)) == caller else {
                        try await writer.write(ByteBuffer(string: "event: end\ndata: {\"reason\": \"session ended\"}\n\n"))
                        break
                    }
                    var text = ""
                    if let page = try? await runPage(filter, limit: Self.dashboardPageSize, offset: 0, caller: caller) {
                        // Oldest first: the page inserts each new run at the top.
                        for run in (page["runs"]?.arrayValue ?? []).reversed() {
                            guard let id = run["run_id"]?.stringValue else { continue }
                            let signature = run.serialized(sortedKeys: true)
                            if sent[id] != signature {
                                sent[id] = signature
                                text += "event: run\ndata: \(Self.runRowJSON(run).serialized())\n\n"
                            }
                        }
                        if sent.count > 1000 { sent = [:] }  // bounded; a resend only refreshes rows
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

        addDashboardRunPageRoutes(router)
    }

    /// Runs a dashboard page lists.
    static let dashboardPageSize = 50

    /// A `status` filter: nil (all) or one of `GET /v1/runs`'s statuses (400 otherwise).
    static func dashboardStatus(_ raw: String?) throws -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        guard RunViews.listableStatuses.contains(raw) else {
            throw APIError.badRequest("invalid_parameter", "status must be one of \(RunViews.listableStatuses.joined(separator: ", "))")
        }
        return raw
    }

    /// The runs page's filters from its query (`status`, `principal`, `agent`, `plan`; empty
    /// means all) and the agent as the caller wrote it. The agent must be one the caller may
    /// see (404 otherwise, as `GET /v1/runs?agent=` answers).
    func dashboardRunFilter(_ request: Request, caller: Caller) async throws -> (RunListFilter, agentRef: String?) {
        let q = request.uri.queryParameters
        func given(_ name: String) -> String? { q.get(name).flatMap { $0.isEmpty ? nil : $0 } }
        var filter = RunListFilter(status: try Self.dashboardStatus(q.get("status")), principal: given("principal"), plan: given("plan"))
        let agentRef = given("agent")
        if let agentRef { filter.agentId = try await runAgentId(agentRef, caller: caller) }
        return (filter, agentRef)
    }

    /// What the live list needs of a run (the fields of a row).
    static func runRowJSON(_ run: JSONValue) -> JSONValue {
        var o: [String: JSONValue] = [:]
        for key in ["run_id", "status", "plan_name", "principal", "started_at", "duration_ms"] { o[key] = run[key] ?? .null }
        return .object(o)
    }

    /// A row of the runs table (the same cells app.js builds for a live row).
    static func runRow(_ run: JSONValue) -> String {
        let id = run["run_id"]?.stringValue ?? ""
        let duration = run["duration_ms"]?.doubleValue.map { String(format: "%.1f ms", $0) } ?? ""
        return "<tr id=\"run-\(UIHTML.escape(id))\"><td><a href=\"/ui/runs/\(UIHTML.urlComponent(id))\">\(UIHTML.escape(id))</a></td>"
            + "<td>\(UIHTML.badge(run["status"]?.stringValue ?? "unknown"))</td><td>\(UIHTML.escape(run["plan_name"]?.stringValue ?? ""))</td>"
            + "<td>\(UIHTML.escape(run["principal"]?.stringValue ?? ""))</td><td>\(UIHTML.escape(run["started_at"]?.stringValue ?? ""))</td>"
            + "<td>\(duration)</td></tr>"
    }

    static func runsBody(_ page: JSONValue, filter: RunListFilter, agentRef: String?, offset: Int, admin: Bool) -> String {
        let runs = page["runs"]?.arrayValue ?? []
        let total = page["total"]?.intValue ?? runs.count
        let (status, principal) = (filter.status, filter.principal)
        var h = "<h1>Runs</h1>\n<form class=\"filters\" method=\"get\" action=\"/ui/runs\">\n<div><label for=\"status\">Status</label>\n<select id=\"status\" name=\"status\">"
        h += "<option value=\"\"\(status == nil ? " selected" : "")>all</option>"
        for s in RunViews.listableStatuses { h += "<option value=\"\(s)\"\(status == s ? " selected" : "")>\(s)</option>" }
        h += "</select></div>\n"
        // Only admin roles may list other principals' runs: others get no principal field.
        if admin {
            h += "<div><label for=\"principal\">Principal</label>\n<input type=\"text\" id=\"principal\" name=\"principal\" value=\"\(UIHTML.escape(principal ?? ""))\"></div>\n"
        }
        h += "<div><label for=\"agent\">Agent (id or name)</label>\n<input type=\"text\" id=\"agent\" name=\"agent\" value=\"\(UIHTML.escape(agentRef ?? ""))\"></div>\n"
        h += "<div><label for=\"plan\">Plan</label>\n<input type=\"text\" id=\"plan\" name=\"plan\" value=\"\(UIHTML.escape(filter.plan ?? ""))\"></div>\n"
        h += "<button type=\"submit\">Filter</button>\n</form>\n"
        var described = "\(total) run(s)"
        if let status { described += " with status \(status)" }
        if let principal { described += " of \(UIHTML.escape(principal))" }
        if let agentRef { described += " by agent \(UIHTML.escape(agentRef))" }
        if let plan = filter.plan { described += " of plan \(UIHTML.escape(plan))" }
        h += "<p id=\"runs-total\">\(described); newest first.</p>\n"
        let query = [status.map { "status=\(UIHTML.urlComponent($0))" }, principal.map { "principal=\(UIHTML.urlComponent($0))" },
                     agentRef.map { "agent=\(UIHTML.urlComponent($0))" }, filter.plan.map { "plan=\(UIHTML.urlComponent($0))" }]
            .compactMap { $0 }.joined(separator: "&")
        // Only the first page follows new runs live, through a stream with the same filters.
        let live = offset == 0 ? " data-events=\"/ui/runs/events\(query.isEmpty ? "" : "?" + UIHTML.escape(query))\"" : ""
        h += "<p id=\"live-status\" role=\"status\" aria-live=\"polite\"></p>\n"
        h += "<div class=\"scroll\" role=\"region\" aria-label=\"Runs\" tabindex=\"0\">"
        h += "<table id=\"runs\"\(live)><caption>Runs\(offset == 0 ? " (new runs appear as they start)" : "")</caption><thead><tr>"
        for c in ["Run", "Status", "Plan", "Principal", "Started", "Duration"] { h += "<th scope=\"col\">\(c)</th>" }
        h += "</tr></thead><tbody>"
        h += runs.map(runRow).joined()
        h += "</tbody></table></div>\n"
        if runs.isEmpty { h += "<p class=\"empty\" id=\"runs-empty\">No runs yet.</p>\n" }
        var pager: [String] = []
        let sep = query.isEmpty ? "" : "&amp;"
        if offset > 0 {
            pager.append("<a href=\"/ui/runs?\(UIHTML.escape(query))\(sep)offset=\(max(0, offset - dashboardPageSize))\" rel=\"prev\">Newer</a>")
        }
        if let next = page["next_offset"]?.intValue {
            pager.append("<a href=\"/ui/runs?\(UIHTML.escape(query))\(sep)offset=\(next)\" rel=\"next\">Older</a>")
        }
        if !pager.isEmpty { h += "<nav class=\"pager\" aria-label=\"Pages\">\(pager.joined(separator: " "))</nav>\n" }
        return h
    }
}
