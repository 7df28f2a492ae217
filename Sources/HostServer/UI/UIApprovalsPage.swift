import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/approvals`: the pending approval requests the caller may see (as
    /// `GET /v1/approvals`: their own calls', or all for approvers and admins), each with the
    /// exact call (tool, input as requested, input digest, rule and reason); approve and deny
    /// buttons only where the policy lets this caller decide it. `POST /ui/approvals/{id}`
    /// (`decision=approve|deny`, optional `comment`) decides through `ApprovalService.decide`,
    /// which refuses (403) whoever the policy does not allow.
    func addDashboardApprovalRoutes(_ router: Router<ServerContext>) {
        onUI(router, .get, "/ui/approvals") { [self] request, ui in
            let list = try await approvalCall { try await self.approvals().list(status: .pending, limit: 200) }
            let visible = list.filter { mayView($0, ui.caller) }
            let profile = host.policy.profile
            var h = "<h1>Approvals</h1>\n<p>\(visible.count) pending request(s).</p>\n"
            if visible.isEmpty { h += "<p class=\"empty\">Nothing is waiting for approval.</p>\n" }
            for a in visible {
                let mayDecide = profile.approvals.refusal(approver: ui.caller.principal, role: ui.caller.role, requester: a.principal) == nil
                h += "<section class=\"approval\" id=\"approval-\(UIHTML.escape(a.id))\" aria-labelledby=\"approval-\(UIHTML.escape(a.id))-title\">"
                h += "<h2 id=\"approval-\(UIHTML.escape(a.id))-title\"><code>\(UIHTML.escape(a.tool))</code> for \(UIHTML.escape(a.principal))</h2>"
                h += "<dl class=\"facts\"><dt>Run</dt><dd><a href=\"/ui/runs/\(UIHTML.urlComponent(a.runId))\">\(UIHTML.escape(a.runId))</a> step \(UIHTML.escape(a.stepId))</dd>"
                h += "<dt>Rule</dt><dd>\(UIHTML.escape(a.rule)): \(UIHTML.escape(a.reason))</dd>"
                h += "<dt>Requested</dt><dd>\(UIHTML.escape(a.requestedAt))</dd>"
                h += "<dt>Input digest</dt><dd><code>\(UIHTML.escape(a.inputDigest))</code></dd></dl>"
                h += "<h3>Exact call input</h3>" + UIHTML.json(a.input)
                if mayDecide {
                    let fid = "comment-\(UIHTML.escape(a.id))"
                    h += "<form method=\"post\" action=\"/ui/approvals/\(UIHTML.urlComponent(a.id))\" class=\"actions\">\(UIHTML.csrfField(ui.csrfToken))"
                    h += "<div><label for=\"\(fid)\">Comment (optional)</label><input type=\"text\" id=\"\(fid)\" name=\"comment\" maxlength=\"500\"></div>"
                    h += "<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>"
                    h += "<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"danger\">Deny</button></form>"
                } else {
                    h += "<p>You may not decide this request.</p>"
                }
                h += "</section>\n"
            }
            let notice = request.uri.queryParameters.get("notice").flatMap(Self.dashboardNotice)
            return UIHTML.response(UIHTML.page(title: "Approvals", section: "/ui/approvals", viewer: ui.viewer, notice: notice, body: h))
        }

        onUI(router, .post, "/ui/approvals/{id}") { [self] _, ui in
            let id = ui.context.parameters.get("id") ?? ""
            guard let d = ui.form["decision"], d == "approve" || d == "deny" else {
                throw APIError.badRequest("invalid_request", "decision must be approve or deny")
            }
            let comment = ui.form["comment"].flatMap { $0.isEmpty ? nil : $0 }
            let caller = ui.caller
            let a = try await approvalCall {
                try await self.approvals().decide(id, approve: d == "approve", principal: caller.principal, role: caller.role, comment: comment)
            }
            ui.context.logger.notice("approval decided", metadata: ["approval_id": .string(id), "decision": .string(a.status.rawValue),
                                                                    "by": .string(caller.principal), "via": "dashboard"])
            return UIHTML.redirect("/ui/approvals?notice=\(d == "approve" ? "approved" : "denied")")
        }
    }
}
