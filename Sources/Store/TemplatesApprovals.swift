import HostSupport
import JSON

/// One stored version of a template: the document exactly as accepted, with its hash.
public struct StoredTemplate: Sendable, Equatable {
    public var name: String
    /// The semantic version, as written (`1.2.0`).
    public var version: String
    /// `sha256:` + the SHA-256 of the document's canonical JSON.
    public var hash: String
    public var document: JSONValue
    /// Where it came from: `file:<path>` (the templates directory) or `api` (created over REST).
    public var source: String
    /// Who created it (the principal for `api`, nil for files).
    public var createdBy: String?
    public var createdAt: String

    public init(name: String, version: String, hash: String, document: JSONValue, source: String, createdBy: String? = nil, createdAt: String) {
        (self.name, self.version, self.hash, self.document, self.source, self.createdBy, self.createdAt) =
            (name, version, hash, document, source, createdBy, createdAt)
    }
}

/// What storing a template version did. Versions are immutable: the same name and version with
/// other content is a conflict, never an overwrite (a record names the version it ran).
public enum TemplatePutOutcome: Sendable, Equatable {
    case created
    /// The same version with the same hash was already stored.
    case unchanged
    /// The version exists with other content (`existingHash`).
    case conflict(existingHash: String)
}

/// Templates in the store: every version ever accepted, from files or from the API.
public protocol TemplateStore: Sendable {
    func putTemplate(_ template: StoredTemplate) async throws -> TemplatePutOutcome
    /// Every stored version of `name` (any order).
    func templateVersions(name: String) async throws -> [StoredTemplate]
    /// Every stored version of every template (any order).
    func allTemplates() async throws -> [StoredTemplate]
}

/// Where an approval request stands.
public enum ApprovalStatus: String, Sendable, Codable, CaseIterable {
    case pending, approved, denied, expired
}

/// A request for a person to approve one exact call: this tool, with the input whose digest
/// is `inputDigest`, in this run and step, for this principal.
public struct ApprovalRequest: Sendable, Equatable {
    public var id: String
    public var runId: String
    /// The step, with `[n]` for the n-th element of a `foreach` step.
    public var stepId: String
    public var tool: String
    /// `sha256:` + SHA-256 of the call's input as canonical JSON (before redaction).
    public var inputDigest: String
    /// The input as recorded (secrets redacted), for the person deciding.
    public var input: JSONValue
    /// Who runs the call.
    public var principal: String
    /// The rule (or `step:approval`) that asked for the approval, and why.
    public var rule: String
    public var reason: String
    public var status: ApprovalStatus
    public var requestedAt: String
    /// Milliseconds since the epoch after which the request can no longer be approved.
    public var expiresAtMs: Int64
    public var decidedBy: String?
    public var decidedAt: String?
    public var comment: String?
    /// The run's finished steps when the request was opened (their records), so that a run
    /// resumed after a restart does not run them again. Not shown by the API.
    public var checkpoint: JSONValue?

    public init(id: String, runId: String, stepId: String, tool: String, inputDigest: String, input: JSONValue, principal: String,
                rule: String, reason: String, status: ApprovalStatus = .pending, requestedAt: String, expiresAtMs: Int64,
                decidedBy: String? = nil, decidedAt: String? = nil, comment: String? = nil) {
        (self.id, self.runId, self.stepId, self.tool, self.inputDigest, self.input, self.principal) =
            (id, runId, stepId, tool, inputDigest, input, principal)
        (self.rule, self.reason, self.status, self.requestedAt, self.expiresAtMs) = (rule, reason, status, requestedAt, expiresAtMs)
        (self.decidedBy, self.decidedAt, self.comment) = (decidedBy, decidedAt, comment)
    }

    /// The request as the API shows it.
    public var json: JSONValue {
        var o: JSONObject = [
            "id": .string(id), "run_id": .string(runId), "step_id": .string(stepId), "tool": .string(tool),
            "input_digest": .string(inputDigest), "input": input, "principal": .string(principal), "rule": .string(rule),
            "reason": .string(reason), "status": .string(status.rawValue), "requested_at": .string(requestedAt),
            "expires_at": .string(Timestamps.format(nanosSinceEpoch: expiresAtMs * 1_000_000)),
        ]
        if let decidedBy { o["decided_by"] = .string(decidedBy) }
        if let decidedAt { o["decided_at"] = .string(decidedAt) }
        if let comment { o["comment"] = .string(comment) }
        return .object(o)
    }
}

/// What deciding an approval did.
public enum ApprovalDecisionOutcome: Sendable, Equatable {
    /// Recorded: the request now has this status.
    case decided(ApprovalRequest)
    /// The request was already decided or expired (its current state).
    case notPending(ApprovalRequest)
    case notFound
}

/// Approval requests in the store. A request is keyed by (run, step, input digest): a run that
/// resumes after a restart finds its request, and a changed input needs a new one.
public protocol ApprovalStore: Sendable {
    /// Stores `request` unless one exists for its run, step and input digest; returns the stored one.
    func openApproval(_ request: ApprovalRequest) async throws -> ApprovalRequest
    func approval(id: String) async throws -> ApprovalRequest?
    /// Records a decision on a pending, unexpired request (an expired one becomes `expired`).
    func decideApproval(id: String, approve: Bool, by: String, comment: String?, nowMs: Int64) async throws -> ApprovalDecisionOutcome
    /// Requests, newest first; `status` nil means all.
    func listApprovals(status: ApprovalStatus?, runId: String?, limit: Int) async throws -> [ApprovalRequest]
}
