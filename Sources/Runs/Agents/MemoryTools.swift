import Drivers
import Foundation
import HostSupport
import JSON
import Store

/// The built-in `memory` driver: `memory.put`, `memory.recall`, `memory.forget`, served by the
/// host through the same `ToolDriver` seam as any `.so`, so policy, schemas, episodes and MCP
/// apply unchanged. Each call is scoped to the agent whose goal is running (the run id is the
/// goal id); the source of what `put` writes is that run and step, never the caller's say.
public struct MemoryToolDriver: ToolDriver {
    let service: AgentService
    public let manifest: DriverManifest

    public static let manifestJSON: JSONValue = [
        "name": "memory", "version": "1.0.0",
        "description": "An agent's memory, from its goals' plans: remember, recall by full text, forget.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            ["name": "put", "description": "Remember a text for the agent running this goal; returns its id.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["text"],
                             "properties": ["text": ["type": "string", "minLength": 1], "memory_type": ["type": "string"],
                                            "tags": ["type": "array", "items": ["type": "string"]], "meta": ["type": "object"],
                                            "ttl_seconds": ["type": "integer", "minimum": 1]]],
             "outputSchema": ["type": "object", "required": ["id"], "properties": ["id": ["type": "string"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false]],
            ["name": "recall", "description": "Recall the agent's memory, best full-text match first (or newest first without a query).",
             "inputSchema": ["type": "object", "additionalProperties": false,
                             "properties": ["query": ["type": "string"], "memory_type": ["type": "string"],
                                            "tags": ["type": "array", "items": ["type": "string"]],
                                            "limit": ["type": "integer", "minimum": 1, "maximum": 100]]],
             "outputSchema": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
            ["name": "forget", "description": "Forget one of the agent's memory items.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["id"], "properties": ["id": ["type": "string"]]],
             "outputSchema": ["type": "object", "required": ["forgotten"], "properties": ["forgotten": ["type": "boolean"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false]],
        ],
    ]

    public init(service: AgentService) throws {
        self.service = service
        manifest = try DriverManifest(json: Self.manifestJSON)
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let input = (try? JSONValue.parse(request.input)) ?? .object([:])
        guard let runId = DriverCallContext.runId, let goal = try await service.store.goal(id: runId) else {
            throw ToolCallError(kind: .unsupported, code: "not_an_agent", message: "memory.\(request.tool) is for the plans of agents' goals (this run is not a goal)")
        }
        let output: JSONValue
        do {
            switch request.tool {
            case "put":
                let item = try await service.remember(goal.agentId, type: input["memory_type"]?.stringValue ?? "skill_result",
                                                      text: input["text"]?.stringValue ?? "", meta: input["meta"] ?? .object([:]),
                                                      tags: input["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                      ttlSeconds: input["ttl_seconds"]?.intValue, sourceRunId: runId, sourceStepId: DriverCallContext.stepId)
                output = ["id": .string(item.id)]
            case "recall":
                let types = input["memory_type"]?.stringValue.map { [$0] } ?? []
                let hits = try await service.recall(goal.agentId, query: RecallQuery(owner: goal.agentId, text: input["query"]?.stringValue, types: types,
                                                                                     tags: input["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                                                     limit: input["limit"]?.intValue ?? 10))
                output = ["items": .array(hits.map { h in
                    var o = h.item.json.objectValue ?? [:]
                    o["score"] = .double(h.score)
                    return .object(o)
                })]
            case "forget":
                do {
                    try await service.forget(goal.agentId, memoryId: input["id"]?.stringValue ?? "")
                    output = ["forgotten": true]
                } catch AgentError.notFound { output = ["forgotten": false] }
            default:
                throw ToolCallError(kind: .unknownTool, message: "memory has no tool \(request.tool)")
            }
        } catch let e as AgentError {
            throw ToolCallError(kind: .invalidArgument, code: e.code, message: e.description)
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}

extension AgentService {
    /// Makes the built-in drivers `memory` (`memory.put|recall|forget`, for goals' plans) and
    /// `agents` (`agents.submit_goal|goal_status|recall`, for MCP clients and plans) available
    /// to the host's runs; they win over `.so` files of those names.
    public func registerTools() {
        let service = self
        host.registry.registerDriver("memory") { try MemoryToolDriver(service: service) }
        host.registry.registerDriver("agents") { try AgentToolDriver(service: service) }
        host.registry.registerDriver("state") { try StateToolDriver(service: service) }
    }
}
