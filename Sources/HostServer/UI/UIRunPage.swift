import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/runs/{id}`: one run as `GET /v1/runs/{id}` finds it (another principal's run
    /// is 404 for callers who are not admins), with its recorded episode as a timeline and a
    /// table of steps (decision and rule, input and output as recorded, errors) and its
    /// hash-chain position; `GET /ui/runs/{id}/verify` re-reads the episode from the store and
    /// checks its hash (as `GET /v1/episodes/{id}` does) and shows the outcome.
    func addDashboardRunPageRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/runs/{id}") { [self] request, ui in
            try await runPageResponse(ui, verify: false, notice: request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice))
        }
        onUI(router, .get, "/ui/runs/{id}/verify") { [self] _, ui in
            try await runPageResponse(ui, verify: true, notice: nil)
        }
        // Cancel, through the code of `POST /v1/runs/{id}/cancel` (same authorization and answers).
        onUI(router, .post, "/ui/runs/{id}/cancel") { [self] _, ui in
            let id = ui.context.parameters.get("id") ?? ""
            let status = try await cancelRun(id, caller: ui.caller, logger: ui.context.logger)
            return UIHTML.redirect("/ui/runs/\(UIHTML.urlComponent(id))?notice=\(status == "cancelled" ? "run_cancelled" : "run_cancelling")")
        }
    }

    func runPageResponse(_ ui: UIRequest, verify: Bool, notice: String?) async throws -> Response {
        let id = ui.context.parameters.get("id") ?? ""
        guard let found = try await findRun(id), ui.caller.isAdmin || found.principal == ui.caller.principal else {
            throw APIError.notFound("no run \(id)")
        }
        let view = found.view
        var recorded: Episode?
        if view["episode"]?["seq"] != nil { recorded = try? await episode(id, for: ui.caller) }
        var h = "<h1>Run <code>\(UIHTML.escape(id))</code></h1>\n"
        if verify {
            if let e = recorded {
                if let problem = e.problem {
                    h += "<p class=\"error\" role=\"alert\" id=\"verify-result\">Verification failed: \(UIHTML.escape(problem))</p>\n"
                } else {
                    h += "<p class=\"notice\" role=\"status\" id=\"verify-result\">Verified: the stored episode's hash matches its canonical content "
                        + "(seq \(e.ref.seq), hash <code>\(UIHTML.escape(e.ref.hash))</code>, chained to <code>\(UIHTML.escape(e.prevHash))</code>).</p>\n"
                }
            } else {
                h += "<p class=\"notice\" role=\"status\" id=\"verify-result\">Not recorded yet: there is no episode to verify.</p>\n"
            }
        }
        func fact(_ label: String, _ value: String) -> String { "<dt>\(UIHTML.escape(label))</dt><dd>\(value)</dd>" }
        h += "<dl class=\"facts\" id=\"run-facts\">"
        h += fact("Status", UIHTML.badge(view["status"]?.stringValue ?? "unknown"))
        h += fact("Plan", UIHTML.escape(view["plan_name"]?.stringValue ?? ""))
        h += fact("Principal", UIHTML.escape(view["principal"]?.stringValue ?? ""))
        h += fact("Started", UIHTML.escape(view["started_at"]?.stringValue ?? ""))
        if let f = view["finished_at"]?.stringValue { h += fact("Finished", UIHTML.escape(f)) }
        if let d = view["duration_ms"]?.doubleValue { h += fact("Duration", String(format: "%.1f ms", d)) }
        if let e = recorded {
            h += fact("Episode", "seq <span id=\"episode-seq\">\(e.ref.seq)</span>, hash <code id=\"episode-hash\">\(UIHTML.escape(e.ref.hash))</code>")
            h += fact("Previous hash", "<code>\(UIHTML.escape(e.prevHash))</code>")
        } else {
            h += fact("Episode", "not recorded yet (the run is \(UIHTML.escape(found.status)))")
        }
        if let err = view["error"] { h += fact("Error", "<span class=\"error-text\">\(UIHTML.escape(err.stringValue ?? err.serialized()))</span>") }
        h += "</dl>\n"
        if recorded == nil, ["queued", "running"].contains(found.status), view["cancel_requested"] != .bool(true) {
            h += "<form method=\"post\" action=\"/ui/runs/\(UIHTML.urlComponent(id))/cancel\" class=\"actions\">\(UIHTML.csrfField(ui.csrfToken))"
            h += "<button type=\"submit\" id=\"cancel-run\" class=\"danger\">Cancel run</button></form>\n"
        }
        if recorded != nil {
            h += "<form method=\"get\" action=\"/ui/runs/\(UIHTML.urlComponent(id))/verify\" class=\"actions\"><button type=\"submit\" id=\"verify\">Verify episode</button></form>\n"
        }
        if let output = view["output"] { h += "<h2>Output</h2>\n" + UIHTML.json(output) }
        h += "<h2>Timeline</h2>\n"
        if let doc = recorded?.document {
            if let svg = UITimeline.svg(doc) {
                h += svg + "<p class=\"legend\">One row per step, one bar per attempt: green succeeded, red denied or failed, amber cancelled "
                    + "or skipped, blue running; a pale amber bar is the time a call waited for approval. Hover a bar for its figures; "
                    + "the table below has the same facts.</p>\n"
            } else {
                h += "<p class=\"empty\">No step ran.</p>"
            }
            h += Self.stepsTable(doc["steps"]?.arrayValue ?? [])
        } else {
            h += "<p class=\"empty\">The timeline appears once the run is recorded. Reload the page to update it.</p>\n"
            if let steps = view["steps"]?.arrayValue, !steps.isEmpty {
                h += UIHTML.table(caption: "Steps so far", headers: ["Step", "Call", "Status", "Attempts"],
                                  rows: steps.map { s in
                                      [UIHTML.escape(s["id"]?.stringValue ?? ""), UIHTML.escape(s["call"]?.stringValue ?? ""),
                                       UIHTML.badge(s["status"]?.stringValue ?? "unknown"), String(s["attempts"]?.intValue ?? 0)]
                                  })
            }
        }
        return UIHTML.response(UIHTML.page(title: "Run \(id)", section: "/ui/runs", viewer: ui.viewer, notice: notice, body: h))
    }

    /// The recorded steps: one row per step with its last attempt's decision (badge and rule),
    /// attempts, start and duration, input, and output or error, as the episode holds them
    /// (already redacted when it was sealed).
    static func stepsTable(_ steps: [JSONValue]) -> String {
        var h = "<table id=\"steps\"><caption>Steps, in plan order</caption><thead><tr>"
        for c in ["Step", "Call", "Status", "Decision", "Rule", "Attempts", "Started", "Duration", "Input", "Output or error"] {
            h += "<th scope=\"col\">\(c)</th>"
        }
        h += "</tr></thead><tbody>"
        for s in steps {
            let attempts = s["attempts"]?.arrayValue ?? []
            let last = attempts.last
            let decision = last?["decision"]?["decision"]?.stringValue
            let rule = last?["decision"]?["rule"]?.stringValue ?? ""
            var result = ""
            if let e = last?["error"] { result += "<p class=\"error-text\">\(UIHTML.escape(e["message"]?.stringValue ?? e.serialized()))</p>" }
            if let reason = s["reason"]?.stringValue { result += "<p>\(UIHTML.escape(reason))</p>" }
            if let a = last?["approval"], let st = a["status"]?.stringValue {
                let by = a["decided_by"]?.stringValue.map { " by \($0)" } ?? ""
                result += "<p class=\"approval-note\">Approval \(UIHTML.escape(st))\(UIHTML.escape(by))\(a["decided_at"]?.stringValue.map { " at " + UIHTML.escape($0) } ?? "")</p>"
            }
            if let out = s["output"] ?? last?["output"] { result += UIHTML.json(out) }
            if let items = s["items"]?.arrayValue { result += "<p>\(items.count) item(s)</p>" }
            let id = s["id"]?.stringValue ?? ""
            h += "<tr class=\"step\" data-step=\"\(UIHTML.escape(id))\">"
            h += "<th scope=\"row\">\(UIHTML.escape(id))</th><td>\(UIHTML.escape(s["call"]?.stringValue ?? ""))</td>"
            h += "<td>\(UIHTML.badge(s["status"]?.stringValue ?? "unknown"))</td>"
            h += "<td class=\"decision\">\(decision.map(UIHTML.badge) ?? "–")</td><td class=\"rule\">\(UIHTML.escape(rule))</td>"
            h += "<td>\(attempts.count)</td><td>\(UIHTML.escape(attempts.first?["started_at"]?.stringValue ?? ""))</td>"
            let total = attempts.compactMap { $0["duration_ms"]?.doubleValue }.reduce(0, +)
            h += "<td>\(attempts.isEmpty ? "" : String(format: "%.1f ms", total))</td>"
            h += "<td>\(last.flatMap { $0["input"] }.map(UIHTML.json) ?? "")</td><td>\(result)</td></tr>"
        }
        h += "</tbody></table>"
        return UIHTML.scroll("Steps", h)
    }
}
