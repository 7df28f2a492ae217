import Foundation
import Host
import Hummingbird
import JSON
import Reports

extension NovaServer {
    /// `GET /ui?window=1h|24h`: the overview — runs per minute (or quarter hour) and success
    /// rate charts, runs by status, denials by rule and consumption, counted by the store from
    /// its index (`ActivityReportBuilder`: admins see every run, others their own); runs in
    /// flight and queued now, queue depth and DLQ size, principal budgets' current windows,
    /// driver health; and, for admin roles only, the drivers' reload button
    /// (`POST /ui/drivers/reload`, refused for anyone else exactly as `POST /v1/drivers/reload` is).
    func addDashboardOverviewRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui") { [self] request, ui in
            let notice = request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice)
            let window = request.uri.queryParameters.get("window").flatMap { ActivityWindow(rawValue: String($0)) } ?? .hour
            return UIHTML.response(UIHTML.page(title: "Overview", section: "/ui", viewer: ui.viewer, notice: notice,
                                               body: try await overviewBody(ui, window: window)))
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

    func overviewBody(_ ui: UIRequest, window: ActivityWindow) async throws -> String {
        guard let log = host.episodes else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no data directory")
        }
        let principal = ui.caller.isAdmin ? nil : ui.caller.principal
        let report: ActivityReport
        do {
            report = try await ActivityReportBuilder(store: log.store).build(window: window, principal: principal)
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the overview cannot be read from the store: \(error)")
        }
        let running = try await runPage(status: "running", principal: nil, limit: 1, offset: 0, caller: ui.caller)["total"]?.intValue ?? 0
        let queued = try await runPage(status: "queued", principal: nil, limit: 1, offset: 0, caller: ui.caller)["total"]?.intValue ?? 0
        let drivers = host.registry.statuses().sorted { $0.name < $1.name }
        let aggregates = report.aggregates
        func card(_ id: String, _ label: String, _ value: String) -> String {
            "<div class=\"card\"><dt id=\"\(id)-label\">\(UIHTML.escape(label))</dt><dd id=\"\(id)\" aria-labelledby=\"\(id)-label\">\(UIHTML.escape(value))</dd></div>"
        }
        var h = "<h1>Overview</h1>\n<p>The \(window.label), \(ui.caller.isAdmin ? "every principal" : "your runs (principal \(UIHTML.escape(ui.caller.principal)))").</p>\n"
        h += "<nav aria-label=\"Time window\"><ul class=\"windows\">" + ActivityWindow.allCases.map { w in
            "<li><a href=\"/ui?window=\(w.rawValue)\" id=\"window-\(w.rawValue)\"\(w == window ? " aria-current=\"page\"" : "")>\(UIHTML.escape(w.label.prefix(1).uppercased() + w.label.dropFirst()))</a></li>"
        }.joined() + "</ul></nav>\n"
        h += "<dl class=\"cards\">"
        h += card("runs-total", "Runs (\(window.rawValue))", String(aggregates.runs))
        h += card("success-rate", "Success rate", report.successRate.map { String(format: "%.1f %%", $0 * 100) } ?? "–")
        h += card("in-flight", "Running now", String(running))
        h += card("queued", "Queued now", String(queued))
        h += card("queue-depth", "Queue depth (all queues)", report.queueDepth.map(String.init) ?? "–")
        h += card("dlq", "Dead-letter queue", report.deadJobs.map(String.init) ?? "–")
        h += card("denials-total", "Denials (\(window.rawValue))", String(aggregates.denials.reduce(0) { $0 + $1.count }))
        h += card("drivers-loaded", "Drivers loaded", "\(drivers.filter { $0.state == "loaded" }.count) of \(drivers.count)")
        h += "</dl>\n"

        h += "<h2>Runs \(window.bucketLabel)</h2>\n" + UICharts.runs(report, id: "chart-runs")
        h += "<h2>Success rate \(window.bucketLabel)</h2>\n" + UICharts.successRate(report, id: "chart-success")
        let active = aggregates.buckets.indices.filter { aggregates.buckets[$0].runs > 0 }
        h += "<details><summary>The charts' figures</summary>"
        h += UIHTML.table(caption: "Runs \(window.bucketLabel) (UTC), buckets with runs", headers: ["From", "Runs", "Succeeded", "Success rate"],
                          rows: active.map { i in
                              let b = aggregates.buckets[i]
                              return [UICharts.clock(report.bucketStartMs(i)), String(b.runs), String(b.succeeded),
                                      String(format: "%.0f %%", Double(b.succeeded) / Double(b.runs) * 100)]
                          }, id: "chart-data")
        h += "</details>\n"

        h += "<h2>Runs by status</h2>\n"
        h += UIHTML.table(caption: "Runs by status, \(window.label)", headers: ["Status", "Runs"],
                          rows: aggregates.byStatus.sorted { $0.key < $1.key }.map {
                              ["<a href=\"/ui/runs?status=\(UIHTML.urlComponent($0.key))\">\(UIHTML.badge($0.key))</a>", String($0.value)]
                          }, id: "runs-by-status")
        h += "<h2>Denials by rule</h2>\n"
        h += UIHTML.table(caption: "Policy denials by rule, \(window.label)", headers: ["Rule", "Denials", "Tools", "Example runs"],
                          rows: aggregates.denials.map { d in
                              [UIHTML.escape(d.rule), String(d.count), UIHTML.escape(d.tools.joined(separator: ", ")),
                               d.exampleRuns.map { "<a href=\"/ui/runs/\(UIHTML.urlComponent($0))\">\(UIHTML.escape($0))</a>" }.joined(separator: " ")]
                          }, id: "denials", empty: "No denials.")
        h += try await budgetsSection(report, principal: principal)
        h += driverHealthSection(drivers, admin: ui.caller.isAdmin, csrfToken: ui.csrfToken)
        return h
    }

    /// What runs consumed in the window per principal, and each principal budget's current
    /// window as the hosts last saved it (the policy state in the store, written after every run).
    func budgetsSection(_ report: ActivityReport, principal: String?) async throws -> String {
        var h = "<h2>Budgets</h2>\n"
        h += UIHTML.table(caption: "Consumed by runs that ended in the \(report.window.label)", headers: ["Principal", "Runs", "Calls", "Tokens", "Cost (µ)"],
                          rows: report.aggregates.consumption.map { c in
                              [UIHTML.escape(c.principal), String(c.runs), String(c.totals.calls), String(c.totals.tokens), String(c.totals.costMicros)]
                          }, id: "consumption", empty: "No runs.")
        guard let aggregating = host.episodes?.store.episodeAggregating else { return h }
        let budgets = host.policy.profile.budgets.filter { $0.scope == .principal }
        let nowMs = Timestamps.wallNanos() / 1_000_000
        var rows: [[String]] = []
        for b in budgets {
            let windowMs = Int64(b.windowSeconds) * 1000
            let current = nowMs / windowMs
            let prefix = "budget/\(b.id)/"
            let entries: [String: JSONValue]
            do { entries = try await aggregating.policyStateEntries(prefix: prefix) } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the policy state cannot be read: \(error)")
            }
            for (key, value) in entries.sorted(by: { $0.key < $1.key }) {
                let rest = key.dropFirst(prefix.count)
                guard let slash = rest.lastIndex(of: "/"), Int64(rest[rest.index(after: slash)...]) == current else { continue }
                let who = String(rest[..<slash])
                if let principal, who != principal { continue }
                let calls = value["calls"]?.intValue ?? 0, tokens = value["tokens"]?.intValue ?? 0
                rows.append([UIHTML.escape(b.id), UIHTML.escape(who), "\(b.windowSeconds) s from \(UICharts.clock(current * windowMs))",
                             b.calls.map { "\(calls) of \($0)" } ?? String(calls), b.tokens.map { "\(tokens) of \($0)" } ?? String(tokens)])
            }
        }
        if !budgets.isEmpty {
            h += UIHTML.table(caption: "Principal budgets, current window", headers: ["Budget", "Principal", "Window (UTC)", "Calls used", "Tokens used"],
                              rows: rows, id: "budgets", empty: "No budget used in the current window.")
        }
        return h
    }

    /// Each driver's state, serving generation, calls in flight and errors; the reload button for admins.
    func driverHealthSection(_ drivers: [DriverStatus], admin: Bool, csrfToken: String) -> String {
        var h = "<h2>Driver health</h2>\n"
        h += UIHTML.table(caption: "Drivers (details on the drivers page)", headers: ["Driver", "State", "Generation", "In flight", "Problem"],
                          rows: drivers.map { d in
                              ["<a href=\"/ui/drivers\">\(UIHTML.escape(d.name))</a>", UIHTML.badge(d.state), d.generation.map(String.init) ?? "–",
                               String(d.inFlight), UIHTML.escape(d.reloadError.map { "reload failed: \($0)" } ?? d.error ?? "")]
                          }, id: "driver-health", empty: "No drivers.")
        if admin {
            h += """
            <form method="post" action="/ui/drivers/reload" class="actions">\(UIHTML.csrfField(csrfToken))
            <button type="submit" id="reload-drivers">Reload drivers</button>
            </form>
            """
        }
        return h
    }
}
