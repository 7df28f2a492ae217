import Drivers
import JSON
import Store

/// The built-in `approvals` driver: `approvals.list` and `approvals.decide`, so that an MCP
/// client (or a plan) can see and decide waiting calls. The caller is the run's principal with
/// its role; the same rules as REST and the CLI apply (`ApprovalService`), and the policy
/// decides who may call these tools at all.
public struct ApprovalToolDriver: ToolDriver {
    let service: ApprovalService
    public let manifest: DriverManifest

    public static let manifestJSON: JSONValue = [
        "name": "approvals", "version": "1.0.0",
        "description": "Calls waiting for a person's approval: list them, approve or deny one.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            ["name": "list", "description": "Approval requests (pending by default), newest first: tool, exact input, principal, rule, expiry.",
             "inputSchema": ["type": "object", "additionalProperties": false,
                             "properties": ["status": ["enum": ["pending", "approved", "denied", "expired", "all"]], "run_id": ["type": "string"],
                                            "limit": ["type": "integer", "minimum": 1, "maximum": 1000]]],
             "outputSchema": ["type": "object", "required": ["approvals"], "properties": ["approvals": ["type": "array"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
            ["name": "decide", "description": "Approve or deny one waiting call; approving releases that call with that exact input only.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["id", "decision"],
                             "properties": ["id": ["type": "string"], "decision": ["enum": ["approve", "deny"]], "comment": ["type": "string"]]],
             "outputSchema": ["type": "object", "required": ["id", "status"], "properties": ["id": ["type": "string"], "status": ["type": "string"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
        ],
    ]

    public init(service: ApprovalService) throws {
        self.service = service
        manifest = try DriverManifest(json: Self.manifestJSON)
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let input = (try? JSONValue.parse(request.input)) ?? .object([:])
        let principal = DriverCallContext.principal ?? "unknown"
        let output: JSONValue
        do {
            switch request.tool {
            case "list":
                let s = input["status"]?.stringValue ?? "pending"
                let list = try await service.list(status: s == "all" ? nil : ApprovalStatus(rawValue: s), runId: input["run_id"]?.stringValue,
                                                  limit: input["limit"]?.intValue ?? 100)
                let role = service.policy.role(ofRun: DriverCallContext.runId, principal: principal)
                let mayDecide = role.map { service.policy.profile.approvals.approverRoles.contains($0) } ?? false
                output = ["approvals": .array(list.filter { mayDecide || $0.principal == principal }.map(\.json))]
            case "decide":
                let a = try await service.decide(input["id"]?.stringValue ?? "", approve: input["decision"]?.stringValue == "approve",
                                                 principal: principal, role: service.policy.role(ofRun: DriverCallContext.runId, principal: principal),
                                                 comment: input["comment"]?.stringValue)
                output = ["id": .string(a.id), "status": .string(a.status.rawValue)]
            default:
                throw ToolCallError(kind: .unknownTool, message: "approvals has no tool \(request.tool)")
            }
        } catch let e as ApprovalDecisionError {
            switch e {
            case .notFound: throw ToolCallError(kind: .invalidArgument, code: "not_found", message: e.description)
            case .forbidden: throw ToolCallError(kind: .tool, code: "forbidden", message: e.description)
            case .notPending: throw ToolCallError(kind: .invalidArgument, code: "not_pending", message: e.description)
            case .unavailable: throw ToolCallError(kind: .unavailable, message: e.description)
            }
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}

extension NovaHost {
    /// Serves `approvals.*` from this host's store (no-op without one).
    public func registerApprovalTools() {
        guard let store = approvalStore else { return }
        let service = ApprovalService(store: store, policy: policy)
        registry.registerDriver("approvals") { try ApprovalToolDriver(service: service) }
    }
}
