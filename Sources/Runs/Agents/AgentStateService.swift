import Drivers
import Foundation
import HostSupport
import JSON
import Store

/// An agent's versioned state: get, put with compare-and-set, delete, list by prefix, and a
/// watch that replays every change after a revision (or says the log was compacted and gives a
/// snapshot to start from).
extension AgentService {
    public var state: (any StateStore)? { host.episodes?.store.stateStore }

    func requireState() throws -> any StateStore {
        guard let state else { throw AgentError.notAccepting("the store has no agent state") }
        return state
    }

    static func checkKey(_ key: String) throws(AgentError) {
        guard !key.isEmpty, key.utf8.count <= 256, !key.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw .invalid(field: "key", message: "must be 1 to 256 bytes without control characters")
        }
    }

    /// The largest state value, as JSON text.
    public static let maxStateValueBytes = 256 * 1024

    /// A key and value a put may write (REST, CLI and the `state` tools alike).
    static func checkPut(key: String, value: JSONValue) throws(AgentError) {
        try checkKey(key)
        guard value.serializedBytes().count <= maxStateValueBytes else { throw .tooLarge("a state value holds at most 256 KiB of JSON") }
    }

    public func stateGet(_ ref: String, key: String) async throws -> StateEntry {
        let agent = try await agent(ref)
        guard let e = try await requireState().stateGet(scope: agent.id, key: key) else { throw AgentError.notFound("agent \(agent.name) has no state key \(key)") }
        return e
    }

    /// `ifVersion` 0: only if absent. A version mismatch is `AgentError.stateConflict`.
    public func statePut(_ ref: String, key: String, value: JSONValue, ifVersion: Int?) async throws -> StateEntry {
        try Self.checkPut(key: key, value: value)
        let agent = try await agent(ref)
        do { return try await requireState().statePut(scope: agent.id, key: key, value: value, ifVersion: ifVersion) } catch let e as StateError {
            throw AgentError.stateConflict(e.description, current: e.current)
        }
    }

    public func stateDelete(_ ref: String, key: String, ifVersion: Int?) async throws {
        let agent = try await agent(ref)
        let removed: Bool
        do { removed = try await requireState().stateDelete(scope: agent.id, key: key, ifVersion: ifVersion) } catch let e as StateError {
            throw AgentError.stateConflict(e.description, current: e.current)
        }
        if !removed { throw AgentError.notFound("agent \(agent.name) has no state key \(key)") }
    }

    public func stateList(_ ref: String, prefix: String, limit: Int) async throws -> [StateEntry] {
        let agent = try await agent(ref)
        return try await requireState().stateList(scope: agent.id, prefix: prefix, limit: limit)
    }

    /// One step of a watch: the changes after `revision`, or — when some were compacted — a
    /// snapshot of every key and the revision it stands at.
    public enum WatchStep: Sendable {
        case changes([StateChange], head: Int64)
        case snapshot([StateEntry], revision: Int64)
    }

    /// `agentId` is the scope: an agent's id, or `shared:<namespace>`.
    public func watchStep(agentId: String, after revision: Int64) async throws -> WatchStep {
        let store = try requireState()
        let found = try await store.stateChanges(scope: agentId, after: revision, limit: 500)
        if found.compacted {
            return .snapshot(try await store.stateList(scope: agentId, prefix: "", limit: 100_000), revision: found.head)
        }
        return .changes(found.changes, head: found.head)
    }
}

/// The built-in `state` driver: `state.get`, `state.put` (compare-and-set with `if_version`)
/// and `state.watch` (the changes after a revision, waiting up to `timeout_ms` for one) on the
/// state of the agent whose goal is running.
public struct StateToolDriver: ToolDriver {
    let service: AgentService
    public let manifest: DriverManifest

    public static let manifestJSON: JSONValue = [
        "name": "state", "version": "1.0.0",
        "description": "The running agent's versioned key-value state: get, put with compare-and-set, watch changes.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            ["name": "get", "description": "A key's value and version (null when absent).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["key"], "properties": ["key": ["type": "string"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
            ["name": "put", "description": "Set a key; with if_version (0: only if absent) the write happens only at that version, else it fails with version_conflict.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["key", "value"],
                             "properties": ["key": ["type": "string"], "value": [:], "if_version": ["type": "integer", "minimum": 0]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false]],
            ["name": "get_shared", "description": "A key of a shared namespace (the policy decides who may: namespaces).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["namespace", "key"],
                             "properties": ["namespace": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"], "key": ["type": "string"]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
             "policyInputs": ["namespace": "/namespace"]],
            ["name": "put_shared", "description": "Set a key of a shared namespace, with if_version as for put (the policy decides who may: namespaces).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["namespace", "key", "value"],
                             "properties": ["namespace": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"], "key": ["type": "string"],
                                            "value": [:], "if_version": ["type": "integer", "minimum": 0]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["namespace": "/namespace"]],
            ["name": "watch_shared", "description": "The changes of a shared namespace after revision `from` (the policy decides who may: namespaces).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["namespace", "from"],
                             "properties": ["namespace": ["type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"],
                                            "from": ["type": "integer", "minimum": 0], "timeout_ms": ["type": "integer", "minimum": 0, "maximum": 60_000]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
             "policyInputs": ["namespace": "/namespace"]],
            ["name": "watch", "description": "The changes after revision `from` (waits up to timeout_ms for one), or a snapshot when the log was compacted.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["from"],
                             "properties": ["from": ["type": "integer", "minimum": 0], "timeout_ms": ["type": "integer", "minimum": 0, "maximum": 60_000]]],
             "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false]],
        ],
    ]

    public init(service: AgentService) throws {
        self.service = service
        manifest = try DriverManifest(json: Self.manifestJSON)
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let input = (try? JSONValue.parse(request.input)) ?? .object([:])
        let tool = request.tool.hasSuffix("_shared") ? String(request.tool.dropLast("_shared".count)) : request.tool
        let scope: String
        if request.tool.hasSuffix("_shared") {
            scope = "shared:" + (input["namespace"]?.stringValue ?? "")
        } else {
            scope = try await service.runningGoal("state.\(request.tool)", hint: "; the *_shared tools work anywhere").agentId
        }
        let store: any StateStore
        do { store = try service.requireState() } catch let e as AgentError { throw ToolCallError(kind: .unavailable, code: e.code, message: e.description) }
        let key = input["key"]?.stringValue ?? ""
        let output: JSONValue
        do {
            switch tool {
            case "get":
                output = try await store.stateGet(scope: scope, key: key)?.json ?? ["key": .string(key), "value": .null, "version": 0]
            case "put":
                let value = input["value"] ?? .null
                try AgentService.checkPut(key: key, value: value)  // the same limits as REST: 256 KiB
                output = try await store.statePut(scope: scope, key: key, value: value, ifVersion: input["if_version"]?.intValue).json
            case "watch":
                let from = Int64(input["from"]?.intValue ?? 0)
                let until = Timestamps.wallNanos() + Int64(input["timeout_ms"]?.intValue ?? 0) * 1_000_000
                var step = try await service.watchStep(agentId: scope, after: from)
                while case .changes(let c, _) = step, c.isEmpty, Timestamps.wallNanos() < until, !Task.isCancelled {
                    try await Task.sleep(nanoseconds: 50_000_000)
                    step = try await service.watchStep(agentId: scope, after: from)
                }
                switch step {
                case .changes(let c, let head): output = ["changes": .array(c.map(\.json)), "revision": .int(Int(c.last?.revision ?? max(from, 0))), "head": .int(Int(head))]
                case .snapshot(let entries, let revision): output = ["compacted": true, "snapshot": .array(entries.map(\.json)), "revision": .int(Int(revision))]
                }
            default:
                throw ToolCallError(kind: .unknownTool, message: "state has no tool \(request.tool)")
            }
        } catch let e as StateError {
            throw ToolCallError(kind: .invalidArgument, code: "version_conflict", message: e.description)
        } catch let e as AgentError {
            throw ToolCallError(kind: .invalidArgument, code: e.code, message: e.description)
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}
