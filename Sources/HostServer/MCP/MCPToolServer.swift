import Foundation
import Host
import JSON
import Logging
import MCP

/// Builds the MCP server one client talks to (one per HTTP session, one for stdio), with the
/// caller fixed: `tools/list` shows exactly the tools the caller's role may use (name =
/// `driver.tool`, description, input and output schemas, annotations from the manifest);
/// `tools/call` goes through the gateway (policy, interpreter, episode) and returns the
/// output as structured content, or `isError` with the reason.
public enum MCPToolServer {
    /// A started-later MCP server for `caller`.
    public static func make(gateway: ToolGateway, caller: Caller, logger: Logger, origin: String) async -> Server {
        let server = Server(name: "nova-host", version: NovaVersion.string, title: "nova-host tool gateway",
                            instructions: "Tools of the nova-host drivers this caller's role may use. Every call is checked by policy and recorded as an episode.",
                            capabilities: .init(tools: .init(listChanged: false)))
        let modelLog = logger.channel(.modelInstruction)
        await server.withMethodHandler(ListTools.self) { _ in
            let tools = await gateway.tools(for: caller).filter(\.allowed)
            return ListTools.Result(tools: tools.map(tool))
        }
        await server.withMethodHandler(CallTool.self) { params in
            var input: [String: JSONValue] = [:]
            for (k, v) in params.arguments ?? [:] { input[k] = json(v) }
            let outcome = await gateway.call(toolId: params.name, input: .object(input), caller: caller, origin: origin)
            let answer = try callAnswer(outcome, tool: params.name, caller: caller, modelLog: modelLog)
            return CallTool.Result(content: [.text(text: answer.text, annotations: nil, _meta: nil)],
                                   structuredContent: answer.structured.map(value), isError: answer.isError)
        }
        return server
    }

    /// What a `tools/call` result says: its text content, structured content and `isError`.
    struct CallAnswer: Equatable {
        var text: String
        var structured: JSONValue?
        var isError: Bool
    }

    /// The `tools/call` result for `outcome`, shared by the SDK handler and the gateway's direct
    /// path (`MCPDirectToolCall`) so both answer alike. An unknown tool is a JSON-RPC error
    /// (-32602), thrown; any other failure is a result with `isError`, logged for the model.
    static func callAnswer(_ outcome: ToolCallOutcome, tool: String, caller: Caller, modelLog: Logger) throws(MCPError) -> CallAnswer {
        switch outcome {
        case .succeeded(let output, _):
            let structured: JSONValue = output.objectMembers != nil ? output : .object([JSONKey("result"): output])
            return CallAnswer(text: output.serialized(sortedKeys: true), structured: structured, isError: false)
        case .failed(let f, let snap):
            if f.kind == .unknownTool { throw MCPError.invalidParams("Unknown tool: \(tool) (\(f.message))") }
            let text: String
            switch f.kind {
            case .denied: text = "denied by policy\(f.rule.map { " (rule \($0))" } ?? ""): \(f.message)"
            case .rateLimited:
                text = "rate_limited\(f.rule.map { " (rule \($0))" } ?? ""): \(f.message); retry after \(f.retryAfterMs ?? 0) ms"
            default: text = "\(f.kind.rawValue): \(f.message)"
            }
            var meta: Logger.Metadata = ["tool": .string(tool), "principal": .string(caller.principal), "code": .string(f.kind.rawValue)]
            if let s = snap { meta["run_id"] = .string(s.runId) }
            modelLog.info("\(text)", metadata: meta)
            // When to retry, for clients that read structure rather than text.
            let retry: JSONValue? = f.retryAfterMs.map { ["error": .string(f.kind.rawValue), "retry_after_ms": .int($0)] }
            return CallAnswer(text: text, structured: retry, isError: true)
        }
    }

    /// A gateway tool as MCP describes it. The output schema is passed on only when it is an
    /// object schema (MCP requires that; clients validate structured content against it).
    static func tool(_ t: GatewayTool) -> Tool {
        let a = t.descriptor.annotations
        let outputSchema: Value? = t.descriptor.outputSchema.flatMap { $0["type"]?.stringValue == "object" ? value($0) : nil }
        return Tool(name: t.id, description: t.descriptor.description, inputSchema: value(t.descriptor.inputSchema),
                    annotations: .init(readOnlyHint: a.readOnlyHint, destructiveHint: a.destructiveHint,
                                       idempotentHint: a.idempotentHint, openWorldHint: a.openWorldHint),
                    outputSchema: outputSchema)
    }

    /// JSON to an MCP value.
    public static func value(_ j: JSONValue) -> Value {
        switch j {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        // MCP values hold Int or Double: the nearest Double (the text content stays exact).
        case .bigInt(let b): return .double(b.doubleValue)
        case .string(let s): return .string(s)
        case .array(let a): return .array(a.map(value))
        case .object(let o):
            // MCP objects are keyed by String: canonically equivalent names merge here.
            var d: [String: Value] = [:]
            for (k, v) in o { d[k.string] = value(v) }
            return .object(d)
        }
    }

    /// An MCP value to JSON (binary data becomes its `data:` URL, as MCP encodes it).
    public static func json(_ v: Value) -> JSONValue {
        switch v {
        case .null: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .string(let s): return .string(s)
        case .data(let mime, let data): return .string("data:\(mime ?? "application/octet-stream");base64,\(data.base64EncodedString())")
        case .array(let a): return .array(a.map(json))
        case .object(let o): return .object(o.mapValues(json))
        }
    }
}
