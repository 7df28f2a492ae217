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
                             "properties": ["query": ["type": "string", "description": "Words (all required), \"phrases\", OR, -word to exclude; punctuation is ignored."],
                                            "memory_type": ["type": "string"],
                                            "tags": ["type": "array", "items": ["type": "string"]],
                                            "limit": ["type": "integer", "minimum": 1, "maximum": 100]]],
             "outputSchema": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
            ["name": "share", "description": "Remember a text in a shared namespace several agents may read (the policy decides who may: namespaces).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["namespace", "text"],
                             "properties": ["namespace": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"],
                                            "text": ["type": "string", "minLength": 1], "memory_type": ["type": "string"],
                                            "tags": ["type": "array", "items": ["type": "string"]], "meta": ["type": "object"],
                                            "ttl_seconds": ["type": "integer", "minimum": 1]]],
             "outputSchema": ["type": "object", "required": ["id"], "properties": ["id": ["type": "string"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["namespace": "/namespace"]],
            ["name": "recall_shared", "description": "Recall a shared namespace's memory, best full-text match first (the policy decides who may: namespaces).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["namespace"],
                             "properties": ["namespace": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"],
                                            "query": ["type": "string"], "limit": ["type": "integer", "minimum": 1, "maximum": 100]]],
             "outputSchema": ["type": "object", "required": ["items"], "properties": ["items": ["type": "array"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
             "policyInputs": ["namespace": "/namespace"]],
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
        if request.tool == "share" || request.tool == "recall_shared" { return try await shared(request.tool, input) }
        let goal = try await service.runningGoal("memory.\(request.tool)")
        let output: JSONValue
        do {
            switch request.tool {
            case "put":
                let item = try await service.remember(goal.agentId, type: input["memory_type"]?.stringValue ?? "skill_result",
                                                      text: input["text"]?.stringValue ?? "", meta: input["meta"] ?? .object([:]),
                                                      tags: input["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                      ttlSeconds: input["ttl_seconds"]?.intValue, sourceRunId: goal.id, sourceStepId: DriverCallContext.stepId)
                output = ["id": .string(item.id)]
            case "recall":
                let types = input["memory_type"]?.stringValue.map { [$0] } ?? []
                let hits = try await service.recall(goal.agentId, query: RecallQuery(owner: goal.agentId, text: input["query"]?.stringValue, types: types,
                                                                                     tags: input["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                                                                                     limit: input["limit"]?.intValue ?? 10))
                output = ["items": .array(hits.map(\.json))]
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

extension MemoryToolDriver {
    /// Shared namespaces: memory owned by `shared:<namespace>`, which any caller the policy lets
    /// through (rule condition `namespaces` over the declared `namespace` input) may use.
    func shared(_ tool: String, _ input: JSONValue) async throws -> ToolCallResult {
        let owner = "shared:" + (input["namespace"]?.stringValue ?? "")
        let output: JSONValue
        if tool == "share" {
            let text = input["text"]?.stringValue ?? ""
            guard text.utf8.count <= MemoryItem.maxTextBytes else {
                throw ToolCallError(kind: .invalidArgument, code: "too_large", message: "a memory item holds at most \(MemoryItem.maxTextBytes) bytes")
            }
            let now = Timestamps.wallNanos() / 1_000_000
            let item = MemoryItem(owner: owner, type: input["memory_type"]?.stringValue ?? "context", text: text, meta: input["meta"] ?? .object([:]),
                                  tags: input["tags"]?.arrayValue?.compactMap(\.stringValue) ?? [], sourceRunId: DriverCallContext.runId,
                                  sourceStepId: DriverCallContext.stepId, createdAtMs: now,
                                  expiresAtMs: input["ttl_seconds"]?.intValue.map { now + Int64($0) * 1000 })
            try await service.store.putMemory(item)
            output = ["id": .string(item.id)]
        } else {
            let hits: [RecallHit]
            do { hits = try await service.store.recall(RecallQuery(owner: owner, text: input["query"]?.stringValue, limit: input["limit"]?.intValue ?? 10)) } catch let e as RecallQueryError {
                throw ToolCallError(kind: .invalidArgument, code: "invalid_query", message: e.message)
            }
            output = ["items": .array(hits.map(\.json))]
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}

extension AgentService {
    /// The goal whose run makes the current tool call (the run id is the goal id); a call
    /// from any other run is the caller's mistake (`not_an_agent`).
    func runningGoal(_ tool: String, hint: String = "") async throws -> Goal {
        guard let runId = DriverCallContext.runId, let goal = try await store.goal(id: runId) else {
            throw ToolCallError(kind: .invalidArgument, code: "not_an_agent", message: "\(tool) is for the plans of agents' goals (this run is not a goal\(hint))")
        }
        return goal
    }

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
