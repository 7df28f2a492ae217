import Host
import JSON
import Logging
import MCP
import Synchronization

/// A `tools/call` request answered by the gateway itself instead of the MCP SDK's server.
///
/// The SDK decodes every incoming message with `JSONDecoder` up to three times (as a batch, a
/// response, a request), turns every string into a `Value` through a regular expression (its
/// data-URL check), serializes one session's messages through one loop, and re-encodes the
/// result with `JSONEncoder`: under load that was most of the CPU of an MCP call. The message
/// has already been parsed and checked by `MCPPreflight` (JSON-RPC 2.0 shape, `params.name` a
/// string, `arguments` an object), so the call is made from that parse and its result written
/// with the project's serializer. The SDK still does everything else (initialize, tools/list,
/// ping, notifications, unknown methods); `MCPToolServer.callAnswer` maps outcomes for both.
struct MCPDirectToolCall: Equatable {
    /// The request's id, echoed as sent (a string or a number).
    let id: JSONValue
    /// The tool's id (`driver.tool`).
    let name: String
    /// The arguments as parsed (names compared by Unicode scalars, numbers kept exact).
    let arguments: JSONObject

    /// The call `message` asks for when it is a `tools/call` request that `MCPPreflight.problem`
    /// let pass; nil for anything else (other methods, notifications, responses).
    init?(_ message: JSONValue) {
        guard case .object(let o) = message, case .string("tools/call")? = o["method"], let id = o["id"] else { return nil }
        let params = o["params"]?.objectMembers ?? [:]
        guard case .string(let name)? = params["name"] else { return nil }
        let arguments: JSONObject
        switch params["arguments"] {
        case nil, .null?: arguments = [:]
        case .object(let a)?: arguments = a
        default: return nil
        }
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// The `requestId` of a `notifications/cancelled` message, or nil when `message` is not one.
    static func cancelledRequestId(_ message: JSONValue) -> JSONValue? {
        guard case .object(let o) = message, o["id"] == nil, case .string("notifications/cancelled")? = o["method"] else { return nil }
        return o["params"]?["requestId"]
    }

    /// The JSON-RPC response to this call for `outcome`, as the SDK's server would write it.
    func response(_ outcome: ToolCallOutcome, caller: Caller, modelLog: Logger) -> JSONValue {
        do { return Self.response(id: id, answer: try MCPToolServer.callAnswer(outcome, tool: name, caller: caller, modelLog: modelLog)) } catch {
            return Self.errorResponse(id: id, error)
        }
    }

    /// The result response carrying `answer` (what `CallTool.Result` encodes to).
    static func response(id: JSONValue, answer: MCPToolServer.CallAnswer) -> JSONValue {
        var result: JSONObject = [
            "content": [["type": "text", "text": .string(answer.text)]],
            "isError": .bool(answer.isError),
        ]
        if let structured = answer.structured { result["structuredContent"] = structured }
        return .object(["jsonrpc": "2.0", "id": id, "result": .object(result)])
    }

    /// A JSON-RPC error response carrying `error` as the SDK encodes an `MCPError`: code,
    /// message, and the detail under `data.detail`.
    static func errorResponse(id: JSONValue, _ error: MCPError) -> JSONValue {
        var body: JSONObject = ["code": .int(error.code), "message": .string(error.errorDescription ?? "Unknown error")]
        switch error {
        case .parseError(let detail?), .invalidRequest(let detail?), .methodNotFound(let detail?), .invalidParams(let detail?),
             .internalError(let detail?):
            body["data"] = ["detail": .string(detail)]
        default: break
        }
        return .object(["jsonrpc": "2.0", "id": id, "error": .object(body)])
    }
}

/// The direct `tools/call`s in flight in one MCP session, by request id, so that a
/// `notifications/cancelled` naming one cancels it (as the SDK cancels its handler task).
///
/// A call runs in its request's task; a notification cancels its run through the run manager
/// (`RunManager.cancel(runId:)`), by the run id the call was given before it started. (A task
/// of its own per call, for the notification to cancel, cost a task and a pass through the
/// cooperative pool on every call.)
final class MCPCallsInFlight: Sendable {
    private let runs: RunManager
    /// Run ids by request id (a client may, wrongly, reuse an id).
    private let byId = Mutex<[JSONValue: [String]]>([:])

    init(runs: RunManager) { self.runs = runs }

    /// Runs `work` as the call with request id `id`, giving it the run id to use; cancelling
    /// the awaiting task (or a `cancel(id:)`) cancels the run.
    func run(id: JSONValue, _ work: (_ runId: String) async -> ToolCallOutcome) async -> ToolCallOutcome {
        let runId = RunId.make()
        byId.withLock { $0[id, default: []].append(runId) }
        defer {
            byId.withLock { calls in
                calls[id]?.removeAll { $0 == runId }
                if calls[id]?.isEmpty == true { calls[id] = nil }
            }
            // A cancel that came before the run started, for a call that never started one.
            runs.forgetCancel(runId: runId)
        }
        return await work(runId)
    }

    /// Cancels the calls in flight with request id `id`; returns how many there were.
    @discardableResult
    func cancel(id: JSONValue) -> Int {
        // Under the lock, so that no cancel of a call can come after its `forgetCancel`.
        byId.withLock { calls in
            let runIds = calls.removeValue(forKey: id) ?? []
            for runId in runIds { _ = runs.cancel(runId: runId, beforeStart: true) }
            return runIds.count
        }
    }
}
