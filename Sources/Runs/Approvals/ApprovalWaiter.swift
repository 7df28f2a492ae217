import HostSupport
import JSON
import Policy
import Store

/// One call that needs a person's approval before it runs.
public struct ApprovalCall: Sendable {
    public var runId: String
    /// The step (with `[n]` for an element of a `foreach` step).
    public var stepId: String
    public var tool: String
    /// The input as it will be sent: its digest binds the approval to it.
    public var input: JSONValue
    /// The input as recorded (secrets redacted), shown to the person deciding.
    public var redactedInput: JSONValue
    public var principal: String
    /// The rule that asked (`step:approval` for a step's `approval: true`) and why.
    public var rule: String
    public var reason: String
    /// The records of the run's finished steps, kept with the request (see `ApprovalRequest.checkpoint`).
    public var checkpoint: JSONValue?

    /// `sha256:` + SHA-256 of the input's canonical JSON: any change of input is another call.
    public var inputDigest: String { "sha256:" + SHA256.hex(input.canonicalBytes()) }
}

/// How the wait for an approval ended.
public enum ApprovalResolution: Sendable {
    case approved(ApprovalRequest)
    case denied(ApprovalRequest)
    case expired(ApprovalRequest)
    /// The run was cancelled while it waited (the request stays open until it expires).
    case cancelled(ApprovalRequest)
    /// The request could not be stored or read.
    case unavailable(String)
}

/// Makes a call wait for a person: the run runner asks it when the policy says
/// `require_approval` or the step has `approval: true`.
public protocol ApprovalWaiter: Sendable {
    func wait(for call: ApprovalCall) async -> ApprovalResolution
}

/// Approval requests kept in the host store: the request is stored (or found again, when a
/// run resumes after a restart: same run, step and input digest), then polled until a person
/// decides it, it expires, or the run is cancelled. Polling the shared store makes a decision
/// taken on any host (REST, CLI, MCP) reach the run on whichever worker waits.
public struct StoreApprovalWaiter: ApprovalWaiter {
    public let store: any ApprovalStore
    /// The policy engine: its profile says how long a request stays open.
    public let policy: PolicyEngine
    /// How often the request is read while waiting.
    public var pollMs: Int

    public init(store: any ApprovalStore, policy: PolicyEngine, pollMs: Int = 200) {
        self.store = store
        self.policy = policy
        self.pollMs = pollMs
    }

    public func wait(for call: ApprovalCall) async -> ApprovalResolution {
        let nowMs = Timestamps.wallNanos() / 1_000_000
        var request = ApprovalRequest(id: "apr_" + RunId.make(), runId: call.runId, stepId: call.stepId, tool: call.tool,
                                      inputDigest: call.inputDigest, input: call.redactedInput, principal: call.principal,
                                      rule: call.rule, reason: call.reason, requestedAt: Timestamps.now(),
                                      expiresAtMs: nowMs + Int64(policy.profile.approvals.expiresInSeconds) * 1000)
        request.checkpoint = call.checkpoint
        do { request = try await store.openApproval(request) } catch { return .unavailable("the approval request cannot be stored: \(error)") }
        while true {
            switch request.status {
            case .approved: return .approved(request)
            case .denied: return .denied(request)
            case .expired: return .expired(request)
            case .pending: break
            }
            let now = Timestamps.wallNanos() / 1_000_000
            if now > request.expiresAtMs {
                // Settle it in the store so nobody approves it later.
                if case .notPending(let settled)? = try? await store.decideApproval(id: request.id, approve: false, by: "nova-host", comment: nil, nowMs: now) {
                    request = settled
                    continue
                }
                request.status = .expired
                return .expired(request)
            }
            if Task.isCancelled { return .cancelled(request) }
            try? await Task.sleep(nanoseconds: UInt64(min(Int64(pollMs), max(1, request.expiresAtMs - now + 1))) * 1_000_000)
            if Task.isCancelled { return .cancelled(request) }
            do { if let fresh = try await store.approval(id: request.id) { request = fresh } } catch {
                // A store that does not answer for a moment: keep waiting (the expiry still ends it).
                continue
            }
        }
    }
}
