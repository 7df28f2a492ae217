import DriverKit
import JSON
import Synchronization

/// A transport to one MCP server: sends JSON-RPC messages, and hands every message it receives
/// (`RPCSession.receive`), a request it could not deliver (`requestFailed`) and its end
/// (`channelClosed`) to the session.
protocol MCPChannel: Sendable {
    /// Queues one JSON-RPC message; never blocks. Messages leave in the order they were queued.
    func send(_ message: JSONValue)
    /// A request whose caller gave up (cancel, deadline): the transport may stop reading its
    /// answer. The session has already sent `notifications/cancelled`.
    func abandon(requestId: Int)
    /// Ends the connection (kills a stdio server, closes HTTP streams). Idempotent.
    func close()
}

/// Why a request failed before the server answered it.
enum RPCFailure: Error, Sendable {
    /// The connection ended (the server exited, the HTTP session expired).
    case closed(String)
    /// This request could not be delivered or its answer not read (an HTTP error).
    case transport(String)
    /// The server answered with a JSON-RPC error.
    case remote(code: Int, message: String, data: JSONValue?)
}

/// The client side of JSON-RPC 2.0 over an `MCPChannel`: numbered requests matched with their
/// responses, `notifications/cancelled` when a caller gives up, and the server's own requests
/// (`ping`) and notifications.
final class RPCSession: Sendable {
    private struct State {
        var nextId = 1
        var pending: [Int: CheckedContinuation<JSONValue, any Error>] = [:]
        var closed: String?
        var closeWaiters: [CheckedContinuation<String, Never>] = []
    }

    private let state = Mutex(State())
    private let channelBox = Mutex<(any MCPChannel)?>(nil)
    /// Server notifications (method, params), e.g. `notifications/tools/list_changed`.
    private let onNotification: @Sendable (String, JSONValue?) -> Void

    init(onNotification: @escaping @Sendable (String, JSONValue?) -> Void) {
        self.onNotification = onNotification
    }

    /// Attaches the transport (which delivers into `receive` and `channelClosed`).
    func attach(_ channel: any MCPChannel) { channelBox.withLock { $0 = channel } }

    private var channel: (any MCPChannel)? { channelBox.withLock { $0 } }

    /// Sends `method` and waits for its result. When the calling task is cancelled (the host
    /// cancelled the call, or its deadline passed) the server is told with
    /// `notifications/cancelled` and the request fails with `CancellationError`.
    func request(_ method: String, _ params: JSONValue) async throws -> JSONValue {
        guard let channel else { throw RPCFailure.closed("not connected") }
        let id: Int = try state.withLock { s in
            if let why = s.closed { throw RPCFailure.closed(why) }
            defer { s.nextId += 1 }
            return s.nextId
        }
        let message: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<JSONValue, any Error>) in
                let registered = state.withLock { s -> String? in
                    if let why = s.closed { return why }
                    s.pending[id] = c
                    return nil
                }
                if let why = registered { c.resume(throwing: RPCFailure.closed(why)); return }
                // Cancelled before we registered: the handler below ran already and found nothing.
                if Task.isCancelled { _ = self.giveUp(id); return }
                channel.send(message)
            }
        } onCancel: {
            if self.giveUp(id) {
                let note: JSONValue = ["jsonrpc": "2.0", "method": "notifications/cancelled",
                                       "params": ["requestId": .int(id), "reason": "cancelled by nova-host (the caller cancelled or the deadline passed)"]]
                channel.send(note)
                channel.abandon(requestId: id)
            }
        }
    }

    /// Sends a notification (no answer).
    func notify(_ method: String, _ params: JSONValue? = nil) {
        var message: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        if let params { message["params"] = params }
        channel?.send(.object(message))
    }

    /// Removes a pending request and fails it with `CancellationError`; false if it had ended.
    private func giveUp(_ id: Int) -> Bool {
        guard let c = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return false }
        c.resume(throwing: CancellationError())
        return true
    }

    /// The transport could not deliver request `id` or read its answer.
    func requestFailed(_ id: Int, _ why: String) {
        state.withLock { $0.pending.removeValue(forKey: id) }?.resume(throwing: RPCFailure.transport(why))
    }

    /// One message from the server.
    func receive(_ message: JSONValue) {
        if let items = message.arrayValue {  // a JSON-RPC batch
            for item in items { receive(item) }
            return
        }
        let method = message["method"]?.stringValue
        let id = message["id"]
        if let method {
            if let id, !id.isNull {
                answerServerRequest(id: id, method: method)
            } else {
                onNotification(method, message["params"])
            }
            return
        }
        guard let id = id?.intValue, let c = state.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        if let error = message["error"] {
            c.resume(throwing: RPCFailure.remote(code: error["code"]?.intValue ?? 0, message: error["message"]?.stringValue ?? "(no message)",
                                                 data: error["data"]))
        } else {
            c.resume(returning: message["result"] ?? .null)
        }
    }

    /// The server asks us something: `ping` is answered; we offer no other client capability
    /// (sampling, roots, elicitation), so anything else is "method not found".
    private func answerServerRequest(id: JSONValue, method: String) {
        let reply: JSONValue = method == "ping"
            ? ["jsonrpc": "2.0", "id": id, "result": .object([:])]
            : ["jsonrpc": "2.0", "id": id, "error": ["code": -32601, "message": .string("nova-host mcp_proxy does not support \(method)")]]
        channel?.send(reply)
    }

    /// The transport ended: every request in flight fails with `why`; later ones at once.
    func channelClosed(_ why: String) {
        let (pending, waiters) = state.withLock { s -> ([CheckedContinuation<JSONValue, any Error>], [CheckedContinuation<String, Never>]) in
            if s.closed == nil { s.closed = why }
            defer { s.pending = [:]; s.closeWaiters = [] }
            return (Array(s.pending.values), s.closeWaiters)
        }
        for c in pending { c.resume(throwing: RPCFailure.closed(why)) }
        for w in waiters { w.resume(returning: why) }
    }

    /// Suspends until the transport ends; returns why.
    func waitUntilClosed() async -> String {
        await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            let done = state.withLock { s -> String? in
                if let why = s.closed { return why }
                s.closeWaiters.append(c)
                return nil
            }
            if let done { c.resume(returning: done) }
        }
    }

    /// Closes the transport (and so fails what is in flight).
    func close(_ why: String) {
        channelClosed(why)
        // The channel holds this session (its receiver): drop it to break the cycle.
        channelBox.withLock { c in
            c?.close()
            c = nil
        }
    }
}
