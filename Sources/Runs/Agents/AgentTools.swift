import Drivers
import Foundation
import JSON
import Store

/// The built-in `agents` driver: agent operations as tools — `agents.submit_goal`,
/// `agents.goal_status`, `agents.recall` — so that MCP clients (and plans) reach them under the
/// policy like any tool: the gateway lists them for the roles the policy lets use them. A caller
/// reaches only the agents whose principal is its own.
public struct AgentToolDriver: ToolDriver {
    let service: AgentService
    public let manifest: DriverManifest

    public static let manifestJSON: JSONValue = [
        "name": "agents", "version": "1.0.0",
        "description": "Agent operations for MCP clients and plans: submit a goal, read its status, recall memory.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            ["name": "submit_goal", "description": "Queue a goal for one of the caller's agents (id or name); returns the goal with its status.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["agent", "goal"],
                             "properties": ["agent": ["type": "string"], "goal": ["type": "string", "minLength": 1],
                                            "plan": ["type": "object"], "inputs": ["type": "object"],
                                            "priority": ["type": "integer", "minimum": -1_000_000, "maximum": 1_000_000]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false]],
            ["name": "goal_status", "description": "A goal's status (pending, running, completed, failed, partial, cancelled).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["goal_id"], "properties": ["goal_id": ["type": "string"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
            ["name": "recall", "description": "Recall one of the caller's agents' memory, best full-text match first.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["agent"],
                             "properties": ["agent": ["type": "string"], "query": ["type": "string"],
                                            "limit": ["type": "integer", "minimum": 1, "maximum": 100]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
        ],
    ]

    public init(service: AgentService) throws {
        self.service = service
        manifest = try DriverManifest(json: Self.manifestJSON)
    }

    /// The caller's agent `ref` (others are "not found": another principal's agent is not acknowledged).
    func callersAgent(_ ref: String) async throws -> Agent {
        let agent = try await service.agent(ref)
        guard agent.principal == DriverCallContext.principal else { throw AgentError.notFound("no agent \(ref)") }
        return agent
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let input = (try? JSONValue.parse(request.input)) ?? .object([:])
        let output: JSONValue
        do {
            switch request.tool {
            case "submit_goal":
                let agent = try await callersAgent(input["agent"]?.stringValue ?? "")
                let (view, _) = try await service.submit(agent.id, GoalRequest(goal: input["goal"]?.stringValue ?? "", plan: input["plan"],
                                                                                inputs: input["inputs"]?.objectValue ?? [:],
                                                                                priority: input["priority"]?.intValue ?? 0))
                output = view.json
            case "goal_status":
                let view = try await service.goal(input["goal_id"]?.stringValue ?? "")
                _ = try await callersAgent(view.goal.agentId)
                output = view.json
            case "recall":
                let agent = try await callersAgent(input["agent"]?.stringValue ?? "")
                let hits = try await service.recall(agent.id, query: RecallQuery(owner: agent.id, text: input["query"]?.stringValue,
                                                                                 limit: input["limit"]?.intValue ?? 10))
                output = ["items": .array(hits.map(\.json))]
            default:
                throw ToolCallError(kind: .unknownTool, message: "agents has no tool \(request.tool)")
            }
        } catch let e as AgentError {
            throw ToolCallError(kind: .invalidArgument, code: e.code, message: e.description)
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}
