import HostSupport
import JSON
import Policy
import Store

/// Why a decision on an approval request was not recorded.
public enum ApprovalDecisionError: Error, Sendable, CustomStringConvertible {
    case notFound(String)
    /// The policy does not let this principal decide it (role, or its own call).
    case forbidden(String)
    /// Already decided or expired: its current state.
    case notPending(ApprovalRequest)
    case unavailable(String)

    public var description: String {
        switch self {
        case .notFound(let id): return "no approval request \(id)"
        case .forbidden(let m): return m
        case .notPending(let a): return "approval request \(a.id) is \(a.status.rawValue)" + (a.decidedBy.map { " (by \($0) at \(a.decidedAt ?? "?"))" } ?? "")
        case .unavailable(let m): return m
        }
    }
}

/// Lists and decides approval requests for every interface (CLI, REST, MCP), with the same
/// rules: who may decide is the policy profile's `approvals` (roles, self-approval).
public struct ApprovalService: Sendable {
    public let store: any ApprovalStore
    public let policy: PolicyEngine

    public init(store: any ApprovalStore, policy: PolicyEngine) {
        self.store = store
        self.policy = policy
    }

    public func list(status: ApprovalStatus?, runId: String? = nil, limit: Int = 100) async throws(ApprovalDecisionError) -> [ApprovalRequest] {
        do { return try await store.listApprovals(status: status, runId: runId, limit: limit) } catch { throw .unavailable("\(error)") }
    }

    public func get(_ id: String) async throws(ApprovalDecisionError) -> ApprovalRequest {
        let found: ApprovalRequest?
        do { found = try await store.approval(id: id) } catch { throw .unavailable("\(error)") }
        guard let found else { throw .notFound(id) }
        return found
    }

    /// Approves or denies `id` as `principal` (with `role`, or the profile's role of the principal).
    public func decide(_ id: String, approve: Bool, principal: String, role: String?, comment: String?) async throws(ApprovalDecisionError) -> ApprovalRequest {
        let request = try await get(id)
        let profile = policy.profile
        if let refusal = profile.approvals.refusal(approver: principal, role: role ?? profile.role(of: principal), requester: request.principal) {
            throw .forbidden(refusal)
        }
        let outcome: ApprovalDecisionOutcome
        do {
            outcome = try await store.decideApproval(id: id, approve: approve, by: principal, comment: comment,
                                                     nowMs: Timestamps.wallNanos() / 1_000_000)
        } catch { throw .unavailable("\(error)") }
        switch outcome {
        case .decided(let a):
            let detail: JSONValue = ["run_id": .string(a.runId), "step_id": .string(a.stepId), "tool": .string(a.tool),
                                     "input_digest": .string(a.inputDigest), "requester": .string(a.principal), "comment": a.comment.map(JSONValue.string) ?? .null]
            await (store as? any AuditStore)?.record(approve ? "approval.approve" : "approval.deny", target: a.id, detail: detail, actor: principal)
            return a
        case .notPending(let a): throw .notPending(a)
        case .notFound: throw .notFound(id)
        }
    }
}
