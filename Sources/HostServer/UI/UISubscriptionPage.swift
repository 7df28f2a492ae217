import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/jobs/subscriptions/{id}`: a bus subscription's dead letters (messages), 50 a
    /// page, through `deadLetterPage` (the code of `GET /v1/subscriptions/{id}/dlq`: the policy
    /// must allow `bus.receive` on it). `POST /ui/jobs/subscriptions/{id}/dlq/replay|purge`
    /// (one message with `message_id`, else all; first a confirmation page, then with
    /// `confirm=yes`) runs `deadLetterAction`, the code of `POST /v1/subscriptions/{id}/dlq/…`
    /// (the policy must allow `bus.ack` with the `dlq` receipt). The buttons are shown only
    /// when the policy would allow them; the action is authorized again either way.
    func addDashboardSubscriptionRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/jobs/subscriptions/{id}") { [self] request, ui in
            let id = ui.context.parameters.get("id") ?? ""
            let q = request.uri.queryParameters
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let sub = try await busCall { try await requireBus().subscription(id) }
            let (dead, total) = try await deadLetterPage(ui.caller, id, limit: Self.dashboardPageSize, offset: offset)
            let mayAct = await mayActOnDeadLetters(ui.caller, id)
            let notice = q.get("notice").flatMap(Self.dashboardPageNotice)
            return UIHTML.response(UIHTML.page(title: "Subscription \(id)", section: "/ui/jobs", viewer: ui.viewer, notice: notice,
                                               body: Self.subscriptionBody(sub, dead: dead, total: total, offset: offset, mayAct: mayAct, csrf: ui.csrfToken)))
        }

        for action in BusService.DeadLetterAction.allCases {
            onUI(router, .post, "/ui/jobs/subscriptions/{id}/dlq/\(action.rawValue)") { [self] _, ui in
                let id = ui.context.parameters.get("id") ?? ""
                let messageId = ui.form["message_id"].flatMap { $0.isEmpty ? nil : $0 }
                guard ui.form["confirm"] == "yes" else {
                    // Authorized (existing subscription, `bus.ack` allowed) before the confirmation page too.
                    try await permitSubscription(ui.caller, "bus.ack", id, ["receipts": ["dlq"]])
                    var dead: DeadLetter?
                    if let messageId {
                        dead = try await busCall { try await requireBus().bus.deadLetter(subscription: id, messageId: messageId) }
                        if dead == nil { throw APIError.notFound("subscription '\(id)' has no dead letter \(messageId)") }
                    }
                    return UIHTML.response(UIHTML.page(title: "Confirm", section: "/ui/jobs", viewer: ui.viewer,
                                                       body: Self.deadLetterConfirmBody(id, action, dead, csrf: ui.csrfToken)))
                }
                let n = try await deadLetterAction(ui.caller, action, id, messageIds: messageId.map { [$0] })
                ui.context.logger.info("dead letters \(action.done)", metadata: ["subscription": .string(id), "count": .stringConvertible(n), "via": "dashboard"])
                return UIHTML.redirect("/ui/jobs/subscriptions/\(UIHTML.urlComponent(id))?notice=dlq_\(action.done)")
            }
        }
    }

    static func subscriptionBody(_ sub: Subscription, dead: [DeadLetter], total: Int, offset: Int, mayAct: Bool, csrf: String) -> String {
        let path = "/ui/jobs/subscriptions/\(UIHTML.urlComponent(sub.id))"
        var h = "<h1>Subscription <span id=\"subscription-id\">\(UIHTML.escape(sub.id))</span></h1>\n<dl class=\"facts\">"
        h += "<dt>Topic</dt><dd>\(UIHTML.escape(sub.topic))</dd><dt>Max deliveries</dt><dd>\(sub.maxDeliveries)</dd>"
        h += "<dt>Created by</dt><dd>\(UIHTML.escape(sub.createdBy))</dd></dl>\n"
        h += "<h2>Dead letters</h2>\n<p><span id=\"dead-letters-total\">\(total)</span> message(s) used up their deliveries or were dead-lettered.</p>\n"
        if mayAct && total > 0 {
            h += "<div class=\"actions\">"
            for (action, label) in [("replay", "Replay all"), ("purge", "Purge all")] {
                h += "<form method=\"post\" action=\"\(path)/dlq/\(action)\" class=\"inline\">\(UIHTML.csrfField(csrf))"
                h += "<button type=\"submit\" id=\"\(action)-all\"\(action == "purge" ? " class=\"danger\"" : "")>\(label)…</button></form>"
            }
            h += "</div>\n"
        }
        var headers = ["Message", "Topic", "Sender", "Deliveries", "Last error", "Dead at", "Payload"]
        if mayAct { headers.append("Actions") }
        h += UIHTML.table(caption: "Dead letters, oldest first", headers: headers, rows: dead.map { d in
            let id = UIHTML.escape(d.message.id)
            var row = ["<code id=\"dead-letter-\(id)\">\(id)</code>", UIHTML.escape(d.message.topic), UIHTML.escape(d.message.sender),
                       String(d.deliveryCount), UIHTML.escape(d.lastError ?? "–"), UIHTML.escape(dashboardTime(d.deadAtMs)), shortJSON(d.message.payload)]
            if mayAct {
                var a = ""
                for (action, label) in [("replay", "Replay"), ("purge", "Purge")] {
                    a += "<form method=\"post\" action=\"\(path)/dlq/\(action)\" class=\"inline\">\(UIHTML.csrfField(csrf))"
                    a += "<input type=\"hidden\" name=\"message_id\" value=\"\(id)\">"
                    a += "<button type=\"submit\" id=\"\(action)-\(id)\" aria-label=\"\(label) message \(id)\"\(action == "purge" ? " class=\"danger\"" : "")>\(label)…</button></form> "
                }
                row.append(a)
            }
            return row
        }, id: "dead-letters")
        if dead.isEmpty { h += "<p class=\"empty\">No dead letters.</p>\n" }
        var pager: [String] = []
        if offset > 0 { pager.append("<a rel=\"prev\" href=\"\(path)?offset=\(max(0, offset - dashboardPageSize))\">Previous</a>") }
        if offset + dead.count < total { pager.append("<a rel=\"next\" href=\"\(path)?offset=\(offset + dashboardPageSize)\">More</a>") }
        if !pager.isEmpty { h += "<nav class=\"pager\" aria-label=\"Pages\">\(pager.joined(separator: " "))</nav>\n" }
        h += "<p><a href=\"/ui/jobs\">Back to jobs and messages</a></p>\n"
        return h
    }

    static func deadLetterConfirmBody(_ subscription: String, _ action: BusService.DeadLetterAction, _ dead: DeadLetter?, csrf: String) -> String {
        let what = action == .replay
            ? "Replaying puts the message back in the subscription, ready for a consumer, with its deliveries counted afresh."
            : "Purging deletes the message from the dead-letter queue for good."
        let target = dead.map { "message \($0.message.id)" } ?? "every dead letter"
        var h = "<h1>\(action == .replay ? "Replay" : "Purge") \(UIHTML.escape(target)) of subscription \(UIHTML.escape(subscription))?</h1>\n"
        h += "<p>\(UIHTML.escape(what))</p>\n"
        if let d = dead {
            h += "<dl class=\"facts\"><dt>Topic</dt><dd>\(UIHTML.escape(d.message.topic))</dd><dt>Deliveries</dt><dd>\(d.deliveryCount)</dd>"
            h += "<dt>Last error</dt><dd>\(UIHTML.escape(d.lastError ?? "–"))</dd><dt>Payload</dt><dd>\(shortJSON(d.message.payload))</dd></dl>\n"
        }
        let path = "/ui/jobs/subscriptions/\(UIHTML.urlComponent(subscription))"
        h += """
        <form method="post" action="\(path)/dlq/\(action.rawValue)" class="actions">
        \(UIHTML.csrfField(csrf))
        <input type="hidden" name="message_id" value="\(UIHTML.escape(dead?.message.id ?? ""))">
        <input type="hidden" name="confirm" value="yes">
        <button type="submit" id="confirm" autofocus\(action == .purge ? " class=\"danger\"" : "")>Yes, \(action.rawValue)</button>
        <a href="\(path)">Cancel</a>
        </form>
        """
        return h
    }
}
