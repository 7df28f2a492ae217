import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /v1/approvals`, `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}`
    /// (`{"decision": "approve"|"deny", "comment": "…"}`). Callers see the requests of their own
    /// calls; approvers (the policy's `approvals.approver_roles`) and admins see all. Deciding
    /// is the policy's call: the role, and whether one may approve one's own request.
    func addApprovalRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/approvals") { [self] request, context in
            let caller = try context.requireCaller()
            let q = request.uri.queryParameters
            var status: ApprovalStatus? = .pending
            if let s = q.get("status") {
                if s == "all" { status = nil } else if let parsed = ApprovalStatus(rawValue: s) { status = parsed } else {
                    throw APIError.badRequest("invalid_parameter", "status must be pending, approved, denied, expired or all")
                }
            }
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 100, range: 1...1000)
            let (filter, runId) = (status, q.get("run_id"))
            let list = try await approvalCall { try await self.approvals().list(status: filter, runId: runId, limit: limit) }
            let visible = list.filter { mayView($0, caller) }
            return JSONIO.response(["approvals": .array(visible.map(\.json))])
        }

        on(router, .get, "/v1/approvals/{id}") { [self] _, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            let a = try await approvalCall { try await self.approvals().get(id) }
            guard mayView(a, caller) else { throw APIError.notFound("no approval request \(id)") }
            return JSONIO.response(a.json)
        }

        on(router, .post, "/v1/approvals/{id}") { [self] request, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            guard let o = body.objectValue, let d = o["decision"]?.stringValue, d == "approve" || d == "deny" else {
                throw APIError.badRequest("invalid_request", "the body is {\"decision\": \"approve\" or \"deny\", \"comment\": \"…\"}")
            }
            for key in o.keys where !["decision", "comment"].contains(key) {
                throw APIError.badRequest("invalid_request", "unknown field '\(key)' (a decision has decision and comment)")
            }
            if let c = o["comment"], c.stringValue == nil { throw APIError.badRequest("invalid_request", "comment must be a string") }
            let a = try await approvalCall {
                try await self.approvals().decide(id, approve: d == "approve", principal: caller.principal, role: caller.role, comment: o["comment"]?.stringValue)
            }
            context.logger.notice("approval decided", metadata: ["approval_id": .string(id), "decision": .string(a.status.rawValue), "by": .string(caller.principal)])
            return JSONIO.response(a.json)
        }
    }

    func approvals() throws -> ApprovalService {
        guard let store = host.approvalStore else { throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store, so no approvals") }
        return ApprovalService(store: store, policy: host.policy)
    }

    /// One may see a request of one's own call, or any when one may decide approvals or is an admin.
    func mayView(_ a: ApprovalRequest, _ caller: Caller) -> Bool {
        caller.isAdmin || a.principal == caller.principal || host.policy.profile.approvals.approverRoles.contains(caller.role)
    }

    func approvalCall<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as APIError { throw e } catch let e as ApprovalDecisionError {
            switch e {
            case .notFound: throw APIError.notFound(e.description)
            case .forbidden(let m): throw APIError(.forbidden, "forbidden", m)
            case .notPending(let a): throw APIError(.conflict, "not_pending", e.description, extra: ["status": .string(a.status.rawValue)])
            case .unavailable(let m): throw APIError(.serviceUnavailable, "store_unavailable", m)
            }
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "\(error)")
        }
    }
}
