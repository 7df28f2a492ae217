import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/jobs`: the durable queue's jobs counted by queue and state, the dead-letter queue
    /// (jobs in state `dead`) and the message bus's subscriptions with their lag and dead letters.
    /// Jobs come through `visibleJobs`, the code of `GET /v1/jobs` (admin roles see every job,
    /// others their own runs' jobs); subscriptions as `GET /v1/subscriptions/{id}` shows them.
    /// `POST /ui/jobs/{id}/retry|discard` (admin roles; first a confirmation page, then with
    /// `confirm=yes`) runs `retryJob` / `discardJob`, the code of `POST /v1/jobs/{id}/retry` and
    /// `DELETE /v1/jobs/{id}`, which refuse anyone else (403, or 404 for a job they may not see).
    func addDashboardJobRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/jobs") { [self] request, ui in
            let q = request.uri.queryParameters
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            var h = "<h1>Jobs and messages</h1>\n<p>\(ui.caller.isAdmin ? "Every job" : "Your runs' jobs (principal \(UIHTML.escape(ui.caller.principal)))").</p>\n"
            h += try await jobCountsSection(ui.caller)
            h += try await deadLetterSection(ui, offset: offset)
            h += try await subscriptionsSection()
            let notice = q.get("notice").flatMap(Self.dashboardNotice)
            return UIHTML.response(UIHTML.page(title: "Jobs", section: "/ui/jobs", viewer: ui.viewer, notice: notice, body: h))
        }

        for action in ["retry", "discard"] {
            onUI(router, .post, "/ui/jobs/{id}/\(action)") { [self] _, ui in
                // Authorized (visible, admin role) before the confirmation page too.
                let job = try await visibleJob(ui.context, admin: true)
                guard ui.form["confirm"] == "yes" else {
                    return UIHTML.response(UIHTML.page(title: "Confirm", section: "/ui/jobs", viewer: ui.viewer,
                                                       body: Self.jobConfirmBody(job, action, csrf: ui.csrfToken)))
                }
                if action == "retry" { _ = try await retryJob(ui.context) } else { try await discardJob(ui.context) }
                ui.context.logger.info("job \(action)", metadata: ["job_id": .string(job.id), "via": "dashboard"])
                return UIHTML.redirect("/ui/jobs?notice=\(action == "retry" ? "job_retried" : "job_discarded")")
            }
        }
    }

    /// Jobs by queue (rows) and state (columns). For admin roles, who see every job, one
    /// `GROUP BY` in the store (exact, reads no job); for others `visibleJobs` (their own runs'
    /// jobs): exact totals per state, the split by queue over at most the 2,000 first jobs of
    /// each state.
    func jobCountsSection(_ caller: Caller) async throws -> String {
        let sample = 2_000
        var byQueue: [String: [JobState: Int]] = [:]
        var totals: [JobState: Int] = [:]
        var partial = false
        if caller.isAdmin {
            do { byQueue = try await requireQueue().countJobsByQueue(JobFilter()) } catch let e as APIError { throw e } catch {
                throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be read: \(error)")
            }
            for counts in byQueue.values { for (state, n) in counts { totals[state, default: 0] += n } }
        }
        for state in JobState.allCases where !caller.isAdmin {
            let (jobs, total) = try await visibleJobs(JobFilter(states: [state]), limit: sample, offset: 0, caller: caller)
            totals[state] = total
            if total > jobs.count { partial = true }
            for j in jobs { byQueue[j.queue, default: [:]][state, default: 0] += 1 }
        }
        var h = "<h2>Jobs by queue and state</h2>\n"
        var rows: [[String]] = byQueue.keys.sorted().map { queue in
            ["<span id=\"queue-\(UIHTML.escape(queue))\">\(UIHTML.escape(queue))</span>"] + JobState.allCases.map { String(byQueue[queue]?[$0] ?? 0) }
        }
        rows.append(["<strong>All queues</strong>"] + JobState.allCases.map { "<strong id=\"jobs-\($0.rawValue)\">\(totals[$0] ?? 0)</strong>" })
        h += UIHTML.table(caption: "Jobs by queue and state", headers: ["Queue"] + JobState.allCases.map(\.rawValue.capitalized), rows: rows, id: "job-counts")
        if partial { h += "<p>The split by queue counts the first \(sample) jobs of each state; the totals are exact.</p>\n" }
        return h
    }

    /// The dead-letter queue: dead jobs, 50 a page, with Retry and Discard for admin roles.
    func deadLetterSection(_ ui: UIRequest, offset: Int) async throws -> String {
        let (jobs, total) = try await visibleJobs(JobFilter(states: [.dead]), limit: Self.dashboardPageSize, offset: offset, caller: ui.caller)
        var h = "<h2>Dead-letter queue</h2>\n<p><span id=\"dlq-total\">\(total)</span> dead job(s): they used up their attempts or failed for good.</p>\n"
        var headers = ["Job", "Kind", "Queue", "Attempts", "Last error", "Finished"]
        if ui.caller.isAdmin { headers.append("Actions") }
        let rows: [[String]] = jobs.map { j in
            let id = UIHTML.escape(j.id), path = UIHTML.urlComponent(j.id)
            var r = [j.kind == RunJob.kind ? "<a href=\"/ui/runs/\(path)\" id=\"dead-\(id)\">\(id)</a>" : "<code id=\"dead-\(id)\">\(id)</code>",
                     UIHTML.escape(j.kind), UIHTML.escape(j.queue), "\(j.attempt) / \(j.maxAttempts)",
                     UIHTML.escape(j.lastError ?? "–"), UIHTML.escape(j.finishedAtMs.map(Self.dashboardTime) ?? "–")]
            if ui.caller.isAdmin {
                var a = ""
                for (action, label, cls) in [("retry", "Retry", ""), ("discard", "Discard", " class=\"danger\"")] {
                    a += "<form method=\"post\" action=\"/ui/jobs/\(path)/\(action)\" class=\"inline\">\(UIHTML.csrfField(ui.csrfToken))"
                    a += "<button type=\"submit\" id=\"\(action)-\(id)\" aria-label=\"\(label) job \(id)\"\(cls)>\(label)…</button></form> "
                }
                r.append(a)
            }
            return r
        }
        h += UIHTML.table(caption: "Dead jobs", headers: headers, rows: rows, id: "dead-jobs")
        if jobs.isEmpty { h += "<p class=\"empty\">The dead-letter queue is empty.</p>\n" }
        if offset + jobs.count < total {
            h += "<nav class=\"pager\" aria-label=\"Pages\"><a rel=\"next\" href=\"/ui/jobs?offset=\(offset + Self.dashboardPageSize)\">More</a></nav>\n"
        }
        return h
    }

    /// The bus subscriptions (as `GET /v1/subscriptions` lists them, to every caller) with the
    /// statistics `GET /v1/subscriptions/{id}` and `/metrics` report: lag (ready + leased),
    /// dead letters, age of the oldest message not yet acked.
    func subscriptionsSection() async throws -> String {
        var h = "<h2>Message bus subscriptions</h2>\n"
        guard let bus else { return h + "<p class=\"empty\">This server has no message bus.</p>\n" }
        let subs = try await busCall { try await bus.bus.listSubscriptions(topic: nil) }.prefix(1_000)
        let now = BusLimits.nowMs()
        var rows: [[String]] = []
        for sub in subs {
            let s = try? await bus.bus.subscriptionStats(sub.id)
            let oldest = s?.oldestPendingAtMs.map { String(format: "%.1f s", Double(max(0, now - $0)) / 1000) } ?? "–"
            let path = "/ui/jobs/subscriptions/\(UIHTML.urlComponent(sub.id))"
            rows.append(["<a href=\"\(path)\" id=\"sub-\(UIHTML.escape(sub.id))\">\(UIHTML.escape(sub.id))</a>", UIHTML.escape(sub.topic),
                         s.map { String($0.ready + $0.leased) } ?? "–", s.map { String($0.ready) } ?? "–", s.map { String($0.leased) } ?? "–",
                         s.map { "<a href=\"\(path)\" id=\"sub-dead-\(UIHTML.escape(sub.id))\">\($0.dead)</a>" } ?? "–", oldest,
                         String(sub.maxDeliveries), UIHTML.escape(sub.createdBy)])
        }
        h += UIHTML.table(caption: "Subscriptions", headers: ["Subscription", "Topic", "Lag", "Ready", "Leased", "Dead letters",
                                                              "Oldest pending", "Max deliveries", "Created by"], rows: rows, id: "subscriptions")
        if rows.isEmpty { h += "<p class=\"empty\">No subscriptions.</p>\n" }
        return h
    }

    /// A job's time (epoch milliseconds) as RFC 3339 UTC.
    static func dashboardTime(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func jobConfirmBody(_ job: Job, _ action: String, csrf: String) -> String {
        let what = action == "retry"
            ? "Retrying puts the job back in its queue (state available) with fresh attempts; a worker takes it again."
            : "Discarding removes the job from the queue for good."
        return """
        <h1>\(action == "retry" ? "Retry" : "Discard") job \(UIHTML.escape(job.id))?</h1>
        <p>\(UIHTML.escape(what))</p>
        <dl class="facts"><dt>Kind</dt><dd>\(UIHTML.escape(job.kind))</dd><dt>Queue</dt><dd>\(UIHTML.escape(job.queue))</dd>
        <dt>State</dt><dd>\(UIHTML.badge(job.state.rawValue))</dd><dt>Attempts</dt><dd>\(job.attempt) / \(job.maxAttempts)</dd>
        <dt>Last error</dt><dd>\(UIHTML.escape(job.lastError ?? "–"))</dd></dl>
        <form method="post" action="/ui/jobs/\(UIHTML.urlComponent(job.id))/\(action)" class="actions">
        \(UIHTML.csrfField(csrf))
        <input type="hidden" name="confirm" value="yes">
        <button type="submit" id="confirm" autofocus\(action == "discard" ? " class=\"danger\"" : "")>Yes, \(action)</button>
        <a href="/ui/jobs">Cancel</a>
        </form>
        """
    }
}
