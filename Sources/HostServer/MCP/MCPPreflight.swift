import Foundation
import JSON
import Logging
import MCP

/// JSON-RPC checks on every incoming MCP message before the SDK sees it, so that client
/// mistakes get the error codes JSON-RPC 2.0 and MCP prescribe (the SDK answers most of them
/// with -32700 or -32603, or not at all) and are logged at warning level:
///
/// - not JSON: -32700, id null;
/// - not an object, `jsonrpc` other than `"2.0"`, an `id` that is null or neither a string nor
///   a number, no string `method` (and not a response): -32600;
/// - `tools/call` without a string `name`, or with `arguments` that is not an object: -32602;
/// - a batch (array): accepted only on protocol versions that have batches (2024-11-05,
///   2025-03-26); refused with -32600 on 2025-06-18 and later, and before `initialize`.
enum MCPPreflight {
    /// What to do with one message (or batch).
    enum Verdict: Equatable {
        /// One message that may go on (to the SDK, or `MCPDirectToolCall`): here as parsed.
        case pass(JSONValue)
        /// Do not hand it on; answer with this JSON-RPC error response.
        case reply(JSONValue)
        /// A batch on a protocol version that has them: these messages, each checked with `check`.
        case batch([JSONValue])
    }

    /// The protocol versions whose JSON-RPC allows batches (removed in 2025-06-18).
    static let batchVersions: Set<String> = ["2024-11-05", "2025-03-26"]

    /// The verdict on `bytes` for a session that negotiated `protocolVersion` (nil: not yet).
    static func check(_ bytes: [UInt8], protocolVersion: String?) -> Verdict {
        bytes.withUnsafeBytes { check($0, protocolVersion: protocolVersion) }
    }

    /// `check` over bytes in place (a request body, uncopied).
    static func check(_ bytes: UnsafeRawBufferPointer, protocolVersion: String?) -> Verdict {
        guard let value = try? JSONValue.parse(bytes) else {
            return .reply(error(id: .null, code: -32700, "Parse error: the message is not valid JSON"))
        }
        guard case .array(let items) = value else { return problem(value).map(Verdict.reply) ?? .pass(value) }
        guard let version = protocolVersion, batchVersions.contains(version) else {
            let why = protocolVersion.map { "protocol \($0) has no JSON-RPC batches (they ended with 2025-03-26)" }
                ?? "a batch cannot carry initialize"
            return .reply(error(id: .null, code: -32600, "Invalid Request: \(why); send one message per request"))
        }
        guard !items.isEmpty else { return .reply(error(id: .null, code: -32600, "Invalid Request: an empty batch")) }
        return .batch(items)
    }

    /// The error response for one message that JSON-RPC or MCP refuses, or nil if it may pass.
    static func problem(_ message: JSONValue) -> JSONValue? {
        guard case .object(let o) = message else {
            return error(id: .null, code: -32600, "Invalid Request: a JSON-RPC message is an object")
        }
        let id = o["id"]
        let idIsValid: Bool
        switch id {
        case nil, .string?, .int?, .double?: idIsValid = true
        default: idIsValid = false
        }
        let replyId = idIsValid ? (id ?? .null) : .null
        guard o["jsonrpc"] == .string("2.0") else {
            return error(id: replyId, code: -32600, "Invalid Request: \"jsonrpc\" must be \"2.0\"")
        }
        guard idIsValid else {
            return error(id: .null, code: -32600, "Invalid Request: \"id\" must be a string or a number (null is not allowed)")
        }
        guard let methodValue = o["method"] else {
            // A response to a request of the server's: it needs an id and a result or an error.
            if id != nil && (o["result"] != nil || o["error"] != nil) { return nil }
            return error(id: replyId, code: -32600, "Invalid Request: no \"method\"")
        }
        guard case .string(let method) = methodValue else {
            return error(id: replyId, code: -32600, "Invalid Request: \"method\" must be a string")
        }
        if let params = o["params"], params.objectValue == nil {
            return error(id: replyId, code: -32602, "Invalid params: \"params\" of \(method) must be an object")
        }
        if method == "tools/call" {
            let params = o["params"]?.objectValue ?? [:]
            guard case .string? = params["name"] else {
                return error(id: replyId, code: -32602, "Invalid params: tools/call needs \"name\", the tool's name as a string")
            }
            if let arguments = params["arguments"], arguments != .null, arguments.objectValue == nil {
                return error(id: replyId, code: -32602, "Invalid params: \"arguments\" of tools/call must be an object")
            }
        }
        return nil
    }

    /// A JSON-RPC error response.
    static func error(id: JSONValue, code: Int, _ message: String) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": ["code": .int(code), "message": .string(message)]]
    }

    /// The protocol version a server answers an `initialize` message with: the client's if
    /// supported, else the newest (as the SDK negotiates).
    static func negotiatedVersion(_ initialize: JSONValue) -> String {
        let asked = initialize["params"]?["protocolVersion"]?.stringValue ?? ""
        return Version.supported.contains(asked) ? asked : Version.latest
    }

    /// Logs a refused message at warning level: the client's mistake, not the server's.
    static func logRefusal(_ reply: JSONValue, logger: Logger) {
        logger.warning("mcp message refused", metadata: [
            "code": .stringConvertible(reply["error"]?["code"]?.intValue ?? 0),
            "reason": .string(reply["error"]?["message"]?.stringValue ?? ""),
        ])
    }
}

/// A transport that puts `MCPPreflight` in front of another one (stdio): refused messages are
/// answered here and never reach the server; batches pass only on protocol versions that
/// have them (the SDK then answers them).
actor PreflightTransport: Transport {
    let inner: any Transport
    nonisolated let logger: Logger
    private var protocolVersion: String?

    /// A preflight in front of `inner`.
    init(_ inner: any Transport, logger: Logger) {
        self.inner = inner
        self.logger = logger
    }

    func connect() async throws { try await inner.connect() }

    func disconnect() async { await inner.disconnect() }

    func send(_ data: Data) async throws { try await inner.send(data) }

    func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let upstream = AsyncThrowingStream<Data, Swift.Error> { continuation in
            let task = Task {
                do {
                    for try await data in await inner.receive() {
                        if let passed = await admit(data) { continuation.yield(passed) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        return upstream
    }

    /// The message to hand on, or nil when it was answered here.
    private func admit(_ data: Data) async -> Data? {
        let bytes = Array(data)
        switch MCPPreflight.check(bytes, protocolVersion: protocolVersion) {
        case .pass(let message):
            if protocolVersion == nil, message["method"]?.stringValue == "initialize" {
                protocolVersion = MCPPreflight.negotiatedVersion(message)
            }
            return data
        case .batch(let items):
            // Refused members are answered here (one array); the rest go on as a batch.
            var refused: [JSONValue] = [], kept: [JSONValue] = []
            for item in items {
                if let reply = MCPPreflight.problem(item) { refused.append(reply) } else { kept.append(item) }
            }
            for reply in refused { MCPPreflight.logRefusal(reply, logger: logger) }
            if !refused.isEmpty { _ = await answer(.array(refused)) }
            if refused.isEmpty { return data }
            return kept.isEmpty ? nil : Data(JSONValue.array(kept).serializedBytes())
        case .reply(let reply):
            MCPPreflight.logRefusal(reply, logger: logger)
            return await answer(reply)
        }
    }

    private func answer(_ reply: JSONValue) async -> Data? {
        do { try await inner.send(Data(reply.serializedBytes())) } catch {
            logger.warning("could not answer a refused mcp message", metadata: ["error": .string("\(error)")])
        }
        return nil
    }
}
