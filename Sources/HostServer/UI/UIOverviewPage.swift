import Foundation
import Host
import Hummingbird
import JSON
import Reports

extension NovaServer {
    /// `GET /ui`: the overview — the status report of the last 24 hours (`StatusReportBuilder`,
    /// as `GET /v1/reports/status` builds it for the caller: admins see every run, others their
    /// own), runs in flight and queued now, queue depth and DLQ size, denials by rule; and, for
    /// admin roles only, the drivers' reload button (`POST /ui/drivers/reload`, refused for
    /// anyone else exactly as `POST /v1/drivers/reload` is).
    func addDashboardOverviewRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui") { [self] request, ui in
            let notice = request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice)
            return UIHTML.response(UIHTML.page(title: "Overview", section: "/ui", viewer: ui.viewer, notice: notice,
                                               body: try await overviewBody(ui)))
        }

        onUI(router, .post, "/ui/drivers/reload") { [self] _, ui in
            guard ui.caller.isAdmin else {
                throw APIError(.forbidden, "forbidden", "reloading drivers is for admin roles (\(config.adminRoles.joined(separator: ", ")))")
            }
            _ = try await reloadDrivers(context: ui.context)
            // Back to the page the button was on (the overview or the drivers page).
            return UIHTML.redirect(ui.form["from"] == "drivers" ? "/ui/drivers?notice=drivers_reloaded" : "/ui?notice=drivers_reloaded")
        }
    }

    /// The notices a redirect may ask a page to show (fixed texts: nothing from the URL is shown).
    static func dashboardNotice(_ key: String) -> String? {
        switch key {
        case "drivers_reloaded": return "Drivers reloaded."
        case "approved": return "Approved."
        case "denied": return "Denied."
        case "paused": return "Agent paused."
        case "resumed": return "Agent resumed."
        case "stopped": return "Agent stopped."
        case "job_retried": return "Job retried: it is available to the workers again."
        case "job_discarded": return "Job discarded."
        case "run_cancelled": return "Run cancelled before it started."
        case "run_cancelling": return "Cancel requested: the run stops at its next cancellation point and is recorded cancelled."
        default: return nil
        }
    }

    func overviewBody(_ ui: UIRequest) async throws -> String {
        guard let log = host.episodes else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no data directory")
        }
        let report: StatusReport
        do {
            report = try await StatusReportBuilder(log: log).build(window: "24h", principal: ui.caller.isAdmin ? nil : ui.caller.principal)
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the report cannot be read from the store: \(error)")
        }
        let running = try await runPage(status: "running", principal: nil, limit: 1, offset: 0, caller: ui.caller)["total"]?.intValue ?? 0
        let queued = try await runPage(status: "queued", principal: nil, limit: 1, offset: 0, caller: ui.caller)["total"]?.intValue ?? 0
        let jobs = report.jobsByState ?? [:]
        let depth = jobs["available", default: 0] + jobs["retryable", default: 0]
        func card(_ id: String, _ label: String, _ value: String) -> String {
            "<div class=\"card\"><dt id=\"\(id)-label\">\(UIHTML.escape(label))</dt><dd id=\"\(id)\" aria-labelledby=\"\(id)-label\">\(UIHTML.escape(value))</dd></div>"
        }
        var h = "<h1>Overview</h1>\n<p>Last 24 hours, \(ui.caller.isAdmin ? "every principal" : "your runs (principal \(UIHTML.escape(ui.caller.principal)))").</p>\n"
        h += "<dl class=\"cards\">"
        h += card("runs-total", "Runs (24 h)", String(report.totalRuns))
        h += card("success-rate", "Success rate", report.totalRuns == 0 ? "–" : String(format: "%.1f %%", report.successRate * 100))
        h += card("in-flight", "Running now", String(running))
        h += card("queued", "Queued now", String(queued))
        h += card("queue-depth", "Queue depth (all queues)", report.jobsByState == nil ? "–" : String(depth))
        h += card("dlq", "Dead-letter queue", report.dlqDepth.map(String.init) ?? "–")
        h += "</dl>\n"
        let statuses = report.runsByStatus.sorted { $0.key < $1.key }
        h += "<h2>Runs by status</h2>\n"
        h += UIHTML.table(caption: "Runs by status, last 24 hours", headers: ["Status", "Runs"],
                          rows: statuses.map { ["<a href=\"/ui/runs?status=\(UIHTML.urlComponent($0.key))\">\(UIHTML.badge($0.key))</a>", String($0.value)] },
                          id: "runs-by-status")
        h += "<h2>Denials by rule</h2>\n"
        h += UIHTML.table(caption: "Policy denials by rule, last 24 hours", headers: ["Rule", "Denials", "Tools", "Example runs"],
                          rows: report.denials.map { d in
                              [UIHTML.escape(d.rule), String(d.count), UIHTML.escape(d.tools.joined(separator: ", ")),
                               d.exampleRuns.map { "<a href=\"/ui/runs/\(UIHTML.urlComponent($0))\">\(UIHTML.escape($0))</a>" }.joined(separator: " ")]
                          }, empty: "No denials.")
        if !report.errors.isEmpty {
            h += "<h2>Errors</h2>\n"
            h += UIHTML.table(caption: "Most frequent errors, last 24 hours", headers: ["Error", "Count"],
                              rows: report.errors.prefix(10).map { [UIHTML.escape($0.message), String($0.count)] })
        }
        if ui.caller.isAdmin {
            h += """
            <h2>Drivers</h2>
            <form method="post" action="/ui/drivers/reload" class="actions">\(UIHTML.csrfField(ui.csrfToken))
            <button type="submit" id="reload-drivers">Reload drivers</button>
            </form>
            """
        }
        return h
    }
}
