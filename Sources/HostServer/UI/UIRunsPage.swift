import Foundation
import Host
import Hummingbird
import JSON
import NIOCore

extension NovaServer {
    /// `GET /ui/runs` (the runs list: `runPage`, the code of `GET /v1/runs`, 50 a page, filtered
    /// by status), `GET /ui/runs/events` (Server-Sent Events: every run of the first page, then
    /// each run that appears or changes, as JSON `run` events, polled once a second while the
    /// session lives), and the run page (`addDashboardRunPageRoutes`).
    func addDashboardRunRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/runs") { [self] request, ui in
            let q = request.uri.queryParameters
            let status = try Self.dashboardStatus(q.get("status"))
            let principal = Self.dashboardPrincipal(q.get("principal"))
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let page = try await runPage(status: status, principal: principal, limit: Self.dashboardPageSize, offset: offset, caller: ui.caller)
            return UIHTML.response(UIHTML.page(title: "Runs", section: "/ui/runs", viewer: ui.viewer,
                                               body: Self.runsBody(page, status: status, principal: principal, offset: offset, admin: ui.caller.isAdmin)))
        }

        onUI(router, .get, "/ui/runs/events") { [self] request, ui in
            let status = try Self.dashboardStatus(request.uri.queryParameters.get("status"))
            let principal = Self.dashboardPrincipal(request.uri.queryParameters.get("principal"))
            let (caller, sessionId, sessions) = (ui.caller, ui.sessionId, uiSessions)
            _ = try await runPage(status: status, principal: principal, limit: 1, offset: 0, caller: caller)  // errors before the stream starts
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            headers[.contentSecurityPolicy] = UIHTML.contentSecurityPolicy
            return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
                var sent: [String: String] = [:]
                var idle = 0
                try await writer.write(ByteBuffer(string: "retry: 3000\n\n"))
                while !Task.isCancelled {
                    guard sessions.isLive(sessionId) else {
                        try await writer.write(ByteBuffer(string: "event: end\ndata: {\"reason\": \"session ended\"}\n\n"))
                        break
                    }
                    var text = ""
                    if let page = try? await runPage(status: status, principal: principal, limit: Self.dashboardPageSize, offset: 0, caller: caller) {
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

    /// A `principal` filter: nil when absent or empty (a caller who is not an admin asking for
    /// another principal's runs is refused by `runPage`, as `GET /v1/runs` refuses it).
    static func dashboardPrincipal(_ raw: String?) -> String? {
        guard let raw, !raw.isEmpty else { return nil }
        return raw
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

    static func runsBody(_ page: JSONValue, status: String?, principal: String?, offset: Int, admin: Bool) -> String {
        let runs = page["runs"]?.arrayValue ?? []
        let total = page["total"]?.intValue ?? runs.count
        var h = "<h1>Runs</h1>\n<form class=\"filters\" method=\"get\" action=\"/ui/runs\">\n<div><label for=\"status\">Status</label>\n<select id=\"status\" name=\"status\">"
        h += "<option value=\"\"\(status == nil ? " selected" : "")>all</option>"
        for s in RunViews.listableStatuses { h += "<option value=\"\(s)\"\(status == s ? " selected" : "")>\(s)</option>" }
        h += "</select></div>\n"
        // Only admin roles may list other principals' runs: others get no principal field.
        if admin {
            h += "<div><label for=\"principal\">Principal</label>\n<input type=\"text\" id=\"principal\" name=\"principal\" value=\"\(UIHTML.escape(principal ?? ""))\"></div>\n"
        }
        h += "<button type=\"submit\">Filter</button>\n</form>\n"
        h += "<p>\(total) run(s)\(status.map { " with status \($0)" } ?? "")\(principal.map { " of \(UIHTML.escape($0))" } ?? ""); newest first.</p>\n"
        let query = [status.map { "status=\(UIHTML.urlComponent($0))" }, principal.map { "principal=\(UIHTML.urlComponent($0))" }]
            .compactMap { $0 }.joined(separator: "&")
        // Only the first page follows new runs live.
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
