import AsyncHTTPClient
import DriverKit
import JSON
import NIOCore
import NIOHTTP1
import Synchronization

/// An MCP server over streamable HTTP (MCP 2025-03-26 and later): every message is POSTed to
/// one URL; the answer to a request comes back as one JSON body or as a server-sent-event
/// stream (which may carry the server's own notifications first). After `initialize` the
/// server's `Mcp-Session-Id` goes with every request, and a GET stream carries notifications
/// that belong to no request (`notifications/tools/list_changed`).
///
/// Messages are POSTed in the order they were queued, and a notification is answered (202)
/// before the next message leaves (so `notifications/initialized` reaches the server before
/// the first request); requests do not wait for each other's answers. A connection failure
/// ends the channel (the supervisor reconnects with backoff); an HTTP error status fails only
/// the request it answered.
final class HTTPChannel: MCPChannel {
    private struct State {
        var sessionId: String?
        var protocolVersion: String?
        var closed = false
        /// Requests whose answer is being read, by JSON-RPC id (cancelled by `abandon`).
        var reading: [Int: Task<Void, Never>] = [:]
        var eventStream: Task<Void, Never>?
        /// Opens when the last queued message may be followed (see `send`).
        var lastSent: Gate?
    }

    private let url: String
    private let headers: [(String, String)]
    private let client: HTTPClient
    private let session: RPCSession
    private let server: String
    private let maxMessageBytes: Int
    private let log: @Sendable (LogLevel, String) -> Void
    private let state = Mutex(State())

    init(url: String, headers: [(String, String)], client: HTTPClient, maxMessageBytes: Int, server: String, session: RPCSession,
         log: @escaping @Sendable (LogLevel, String) -> Void) {
        (self.url, self.headers, self.client, self.maxMessageBytes, self.server, self.session, self.log) =
            (url, headers, client, maxMessageBytes, server, session, log)
        session.attach(self)
    }

    /// After `initialize`: the negotiated version goes into `MCP-Protocol-Version` from now on.
    func setProtocolVersion(_ version: String) { state.withLock { $0.protocolVersion = version } }

    func send(_ message: JSONValue) {
        let requestId = message["method"] != nil ? message["id"]?.intValue : nil
        let gate = Gate()
        let previous = state.withLock { s -> Gate?? in
            if s.closed { return .none }
            defer { s.lastSent = gate }
            return .some(s.lastSent)
        }
        guard case .some(let before) = previous else {
            if let requestId { session.requestFailed(requestId, "the connection to server '\(server)' is closed") }
            return
        }
        let task = Task { [self] in
            await before?.wait()
            // A request lets the next message go as soon as it is under way: a server that
            // answers with a plain JSON body sends no headers before the tool is done, and
            // waiting for them would serialize every call (and hold up their cancellations).
            // A notification is answered at once (202) and holds the next message until then.
            if requestId != nil { gate.open() }
            await post(message, requestId: requestId, headersIn: gate)
            gate.open()
            if let requestId { _ = state.withLock { $0.reading.removeValue(forKey: requestId) } }
        }
        if let requestId { state.withLock { $0.reading[requestId] = task } }
    }

    func abandon(requestId: Int) {
        state.withLock { $0.reading.removeValue(forKey: requestId) }?.cancel()
    }

    func close() {
        let (tasks, sessionId) = state.withLock { s -> ([Task<Void, Never>], String?) in
            if s.closed { return ([], nil) }
            s.closed = true
            defer { s.reading = [:]; s.eventStream = nil }
            return (Array(s.reading.values) + (s.eventStream.map { [$0] } ?? []), s.sessionId)
        }
        for t in tasks { t.cancel() }
        // Tell the server the session is over (MCP: clients SHOULD DELETE it); best effort.
        if let sessionId {
            var request = HTTPClientRequest(url: url)
            request.method = .DELETE
            addHeaders(&request, sessionId: sessionId, protocolVersion: nil)
            let client = self.client
            Task { _ = try? await client.execute(request, timeout: .seconds(2)) }
        }
    }

    private func addHeaders(_ request: inout HTTPClientRequest, sessionId: String?, protocolVersion: String?) {
        request.headers.add(name: "User-Agent", value: "nova-host-mcp-proxy/1.0")
        // Only what the operator configured: the caller's credentials never reach the driver.
        for (name, value) in headers { request.headers.replaceOrAdd(name: name, value: value) }
        if let sessionId { request.headers.replaceOrAdd(name: "Mcp-Session-Id", value: sessionId) }
        if let protocolVersion { request.headers.replaceOrAdd(name: "MCP-Protocol-Version", value: protocolVersion) }
    }

    /// POSTs one message and feeds what comes back into the session.
    private func post(_ message: JSONValue, requestId: Int?, headersIn gate: Gate) async {
        let (sessionId, version) = state.withLock { ($0.sessionId, $0.protocolVersion) }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        addHeaders(&request, sessionId: sessionId, protocolVersion: version)
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json, text/event-stream")
        request.body = .bytes(ByteBuffer(bytes: message.serializedBytes()))
        let isInitialize = message["method"]?.stringValue == "initialize"
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .hours(24))
        } catch {
            gate.open()
            if Task.isCancelled { return }  // abandoned or closed
            // Nothing answers at that address: the server is down for every request.
            connectionLost("cannot reach server '\(server)' at \(UpstreamConfig.withoutQuery(url)): \(describe(error))")
            return
        }
        gate.open()
        let status = Int(response.status.code)
        if isInitialize, let id = response.headers.first(name: "Mcp-Session-Id") {
            state.withLock { $0.sessionId = id }
        }
        if status == 404 && sessionId != nil {
            connectionLost("server '\(server)' ended the HTTP session (404 for session \(sessionId!.prefix(8))…); reconnecting")
            return
        }
        guard (200..<300).contains(status) else {
            let body = (try? await collect(response, limit: 2048)) ?? []
            let text = String(decoding: body.prefix(300), as: UTF8.self)
            if let requestId {
                session.requestFailed(requestId, "server '\(server)' answered HTTP \(status)\(text.isEmpty ? "" : ": \(text)")")
            } else {
                log(.warning, "server '\(server)' answered HTTP \(status) to a notification\(text.isEmpty ? "" : ": \(text)")")
            }
            return
        }
        let contentType = response.headers.first(name: "Content-Type")?.lowercased() ?? ""
        do {
            if contentType.hasPrefix("text/event-stream") {
                try await readEvents(response)
            } else {
                let body = try await collect(response, limit: maxMessageBytes)
                if body.isEmpty {
                    if let requestId { session.requestFailed(requestId, "server '\(server)' answered HTTP \(status) without a body") }
                    return
                }
                session.receive(try JSONValue.parse(body))
            }
        } catch is CancellationError {
            return
        } catch {
            if Task.isCancelled { return }
            if let requestId { session.requestFailed(requestId, "reading the answer of server '\(server)': \(describe(error))") }
        }
    }

    /// The GET stream of notifications that belong to no request. Opened after `initialize`;
    /// reopened when the server ends it; a server that offers none (405) is left alone.
    func openEventStream() {
        let task = Task { [self] in
            var failures = 0
            while !Task.isCancelled {
                let (sessionId, version) = state.withLock { ($0.sessionId, $0.protocolVersion) }
                var request = HTTPClientRequest(url: url)
                request.method = .GET
                addHeaders(&request, sessionId: sessionId, protocolVersion: version)
                request.headers.replaceOrAdd(name: "Accept", value: "text/event-stream")
                do {
                    let response = try await client.execute(request, timeout: .hours(24))
                    let status = Int(response.status.code)
                    if status == 405 { return }  // the server sends no unsolicited messages
                    if status == 404 && sessionId != nil {
                        connectionLost("server '\(server)' ended the HTTP session (404 on its event stream); reconnecting")
                        return
                    }
                    guard status == 200 else {
                        log(.debug, "server '\(server)': GET event stream answered HTTP \(status)")
                        failures += 1
                        if failures > 5 { return }
                        try await Task.sleep(for: .seconds(1))
                        continue
                    }
                    failures = 0
                    try await readEvents(response)
                    // The server closed the stream: open it again (MCP allows either side to end it).
                    try await Task.sleep(for: .milliseconds(200))
                } catch {
                    if Task.isCancelled { return }
                    connectionLost("lost the event stream of server '\(server)' at \(UpstreamConfig.withoutQuery(url)): \(describe(error))")
                    return
                }
            }
        }
        let keep = state.withLock { s -> Bool in
            if s.closed { return false }
            s.eventStream = task
            return true
        }
        if !keep { task.cancel() }
    }

    private func connectionLost(_ why: String) {
        close()
        session.channelClosed(why)
    }

    private func collect(_ response: HTTPClientResponse, limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in response.body {
            guard bytes.count + chunk.readableBytes <= limit else {
                throw DriverError.tool("response_too_large", "server '\(server)' sent more than \(limit) bytes")
            }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return bytes
    }

    /// Reads a server-sent-event stream: each event's `data` is one JSON-RPC message.
    private func readEvents(_ response: HTTPClientResponse) async throws {
        var parser = SSEParser(maxEventBytes: maxMessageBytes)
        for try await chunk in response.body {
            for data in try parser.feed(chunk.readableBytesView) {
                do { session.receive(try JSONValue.parse(data)) } catch {
                    log(.warning, "server '\(server)' sent an event that is not JSON-RPC (\(data.count) bytes)")
                }
            }
        }
    }

    private func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return String(describing: error)
    }
}

/// Splits a `text/event-stream` body into events and returns their `data` (lines joined by
/// "\n"); `event`, `id`, `retry` and comments are ignored.
struct SSEParser {
    let maxEventBytes: Int
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var lastWasCR = false

    init(maxEventBytes: Int) { self.maxEventBytes = maxEventBytes }

    mutating func feed(_ bytes: some Sequence<UInt8>) throws -> [[UInt8]] {
        var events: [[UInt8]] = []
        for b in bytes {
            if b == 0x0A && lastWasCR { lastWasCR = false; continue }  // CRLF
            lastWasCR = b == 0x0D
            if b == 0x0A || b == 0x0D {
                if line.isEmpty {
                    if hasData { events.append(data) }
                    data = []
                    hasData = false
                } else {
                    field()
                    line = []
                }
                continue
            }
            line.append(b)
            if line.count + data.count > maxEventBytes {
                throw DriverError.tool("response_too_large", "an event of more than \(maxEventBytes) bytes")
            }
        }
        return events
    }

    private mutating func field() {
        guard line.first != 0x3A else { return }  // ":" comment
        let colon = line.firstIndex(of: 0x3A) ?? line.count
        guard line[..<colon].elementsEqual("data".utf8) else { return }
        var value = colon < line.count ? line[(colon + 1)...] : []
        if value.first == 0x20 { value = value.dropFirst() }
        if hasData { data.append(0x0A) }
        data.append(contentsOf: value)
        hasData = true
    }
}
