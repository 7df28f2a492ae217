import Foundation
import HTTPTypes
import Host
import Hummingbird
import JSON
import Logging
import MCP
import NIOCore
import ServiceLifecycle
import Synchronization

/// MCP over streamable HTTP at `/mcp`, with sessions.
///
/// `initialize` (POST without `Mcp-Session-Id`) creates a session bound to the authenticated
/// caller: an MCP `Server` (`MCPToolServer`) on the SDK's `StatelessHTTPServerTransport`,
/// which answers each POST with one JSON response. Later requests name the session in
/// `Mcp-Session-Id`; a session is used only by the principal that opened it (anyone else gets
/// 404, as for an unknown session). `DELETE` ends a session; `GET` (a server-initiated event
/// stream) answers 405, which the protocol allows. Every request is authenticated like REST,
/// and `Origin` (and `Host`, when bound to loopback) are validated against DNS rebinding.
public final class MCPHTTPGateway: Sendable {
    struct Session: Sendable {
        let id: String
        let caller: Caller
        let server: Server
        let transport: StatelessHTTPServerTransport
        /// The `tools/call`s answered directly (`MCPDirectToolCall`), for cancellation.
        let calls: MCPCallsInFlight
        /// Where refused and failed tool calls are reported for the model (as the SDK's handler does).
        let modelLog: Logger
        /// The protocol version `initialize` negotiated (decides whether batches are allowed).
        let protocolVersion: String
        var lastUsedNanos: UInt64
    }

    let gateway: ToolGateway
    let logger: Logger
    let maxSessions: Int
    let idleNanos: UInt64
    let pipeline: StandardValidationPipeline
    /// The common requests the pipeline would pass, recognised without its string work.
    let quickCheck: MCPQuickValidation
    private let sessions = Mutex<[String: Session]>([:])

    /// The gateway for `gateway`'s tools under `config`'s origins, hosts and session limits.
    public init(gateway: ToolGateway, config: HostConfig, logger: Logger) {
        self.gateway = gateway
        self.logger = logger
        maxSessions = config.mcpMaxSessions
        idleNanos = UInt64(config.mcpSessionIdleSeconds) * 1_000_000_000
        let localOrigins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", "https://127.0.0.1:*", "https://localhost:*"]
        let origins = localOrigins + config.corsOrigins + config.mcpAllowedOrigins
        let hosts: [String]? = config.mcpAllowedHosts ?? (config.bindsLoopback ? ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"] : nil)
        let originHost = OriginHostValidator(allowedOrigins: origins, allowedHosts: hosts)
        quickCheck = MCPQuickValidation(originHost: originHost)
        pipeline = StandardValidationPipeline(validators: [
            originHost,
            AcceptHeaderValidator(mode: .jsonOnly),
            ContentTypeValidator(),
            ProtocolVersionValidator(),
        ])
    }

    /// Open sessions.
    public var sessionCount: Int { sessions.withLock { $0.count } }

    /// Handles one `/mcp` request from `caller`.
    func handle(_ request: Request, body: ByteBuffer?, caller: Caller) async -> Response {
        // The SDK's request is built only when the SDK is to read it: its validators look
        // headers up by lowercasing every name, and a direct tools/call reads the body in place.
        let validated = { MCP.HTTPRequest(method: request.method.rawValue, headers: Self.headers(request.head), body: nil, path: request.uri.path) }
        let sdkRequest = { MCP.HTTPRequest(method: request.method.rawValue, headers: Self.headers(request.head), body: body.map { Data(buffer: $0) },
                                           path: request.uri.path) }
        let sessionId = request.headers[.mcpSessionId]
        let now = DispatchTime.now().uptimeNanoseconds

        if request.method == .delete {
            guard let sessionId else { return Self.error(400, .invalidRequest("Bad Request: Missing Mcp-Session-Id header")) }
            guard let s = takeSession(sessionId, caller: caller) else { return Self.error(404, .invalidRequest("Not Found: Session not found or expired")) }
            await s.server.stop()
            return Response(status: .ok, headers: [.mcpSessionId: sessionId])
        }
        guard request.method == .post else {
            return Self.error(405, .invalidRequest("Method Not Allowed: this server sends no server-initiated event stream; POST JSON-RPC messages"),
                              extra: [.allow: "POST, DELETE"])
        }
        if let sessionId {
            let found: Session? = sessions.withLock { all in
                guard var s = all[sessionId], s.caller.principal == caller.principal else { return nil }
                s.lastUsedNanos = now
                all[sessionId] = s
                return s
            }
            guard let session = found else { return Self.error(404, .invalidRequest("Not Found: Session not found or expired")) }
            // Host, Origin, Accept and Content-Type first: the transport checks them again, but
            // a message refused below must not be answered to a request those would refuse.
            if !quickCheck.passes(request.head),
               let problem = pipeline.validate(validated(), context: HTTPValidationContext(httpMethod: "POST", sessionID: sessionId,
                                                                                           isInitializationRequest: false,
                                                                                           supportedProtocolVersions: Version.supported)) {
                return Self.response(problem)
            }
            let verdict = body.map { b in b.withUnsafeReadableBytes { MCPPreflight.check($0, protocolVersion: session.protocolVersion) } }
                ?? MCPPreflight.check([], protocolVersion: session.protocolVersion)
            var response: Response
            switch verdict {
            case .reply(let reply): response = refuse(reply)
            case .batch(let items): response = await batch(items, of: sdkRequest(), in: session)
            case .pass(let message):
                if let call = MCPDirectToolCall(message) {
                    response = Self.json(await direct(call, in: session), status: .ok)
                } else {
                    response = Self.response(await session.transport.handleRequest(sdkRequest()))
                    // The SDK cancels its own calls; the direct ones are cancelled here, once the
                    // notification is accepted, as the SDK does: the cancelled call's answer
                    // then follows the 202 (a 1.x Python client that cancels its request right
                    // after the 202 fails on an answer that arrives just before).
                    if let id = MCPDirectToolCall.cancelledRequestId(message) { session.calls.cancel(id: id) }
                }
            }
            response.headers[.mcpSessionId] = sessionId
            return response
        }
        // No session: this must be `initialize`.
        if let problem = pipeline.validate(validated(), context: HTTPValidationContext(httpMethod: "POST", sessionID: nil, isInitializationRequest: true,
                                                                                     supportedProtocolVersions: Version.supported)) {
            return Self.response(problem)
        }
        if case .reply(let reply) = MCPPreflight.check(body.map { Array(buffer: $0) } ?? [], protocolVersion: nil) {
            return refuse(reply)
        }
        guard let body, let message = try? JSONValue.parse(Array(buffer: body)), message["method"]?.stringValue == "initialize" else {
            return Self.error(400, .invalidRequest("Bad Request: Missing Mcp-Session-Id header (send initialize first)"))
        }
        reapIdle(now: now)
        guard sessionCount < maxSessions else {
            return Self.error(503, .internalError("Service Unavailable: too many MCP sessions (mcp.max_sessions)"))
        }
        let id = UUID().uuidString.lowercased()
        var sessionLogger = logger
        sessionLogger[metadataKey: "mcp_session"] = .string(id)
        let transport = StatelessHTTPServerTransport(validationPipeline: pipeline, logger: sessionLogger)
        let server = await MCPToolServer.make(gateway: gateway, caller: caller, logger: sessionLogger, origin: Self.origin)
        do { try await server.start(transport: transport) } catch {
            return Self.error(500, .internalError("Failed to start the session: \(error)"))
        }
        let sdkResponse = await transport.handleRequest(sdkRequest())
        guard case .data = sdkResponse else {
            await server.stop()
            return Self.response(sdkResponse)
        }
        let session = Session(id: id, caller: caller, server: server, transport: transport, calls: MCPCallsInFlight(runs: gateway.runs),
                              modelLog: sessionLogger.channel(.modelInstruction), protocolVersion: MCPPreflight.negotiatedVersion(message), lastUsedNanos: now)
        sessions.withLock { $0[id] = session }
        logger.info("mcp session opened", metadata: ["mcp_session": .string(id), "principal": .string(caller.principal)])
        var response = Self.response(sdkResponse)
        response.headers[.mcpSessionId] = id
        return response
    }

    /// A `tools/call` through the gateway, answered without the SDK (`MCPDirectToolCall`).
    private func direct(_ call: MCPDirectToolCall, in session: Session) async -> JSONValue {
        let (gateway, caller) = (self.gateway, session.caller)
        let outcome = await session.calls.run(id: call.id) { runId in
            await gateway.call(toolId: call.name, input: .object(call.arguments), caller: caller, origin: Self.origin, runId: runId)
        }
        return call.response(outcome, caller: caller, modelLog: session.modelLog)
    }

    /// The origin MCP runs are recorded with.
    static let origin = "mcp"

    /// The answer to a message `MCPPreflight` refused: 200 when it names the request it answers
    /// (the client matches it by id), 400 when it cannot (id null).
    private func refuse(_ reply: JSONValue) -> Response {
        MCPPreflight.logRefusal(reply, logger: logger)
        return Self.json(reply, status: reply["id"] == .null ? .badRequest : .ok)
    }

    /// A batch (protocol versions before 2025-06-18): each member checked and handed to the
    /// session's transport in order; the answers come back as one array (202 when every member
    /// was a notification or a response).
    private func batch(_ items: [JSONValue], of request: MCP.HTTPRequest, in session: Session) async -> Response {
        var answers: [JSONValue] = []
        for item in items {
            if let reply = MCPPreflight.problem(item) {
                MCPPreflight.logRefusal(reply, logger: logger)
                answers.append(reply)
                continue
            }
            if let call = MCPDirectToolCall(item) {
                answers.append(await direct(call, in: session))
                continue
            }
            if let id = MCPDirectToolCall.cancelledRequestId(item) { session.calls.cancel(id: id) }
            let one = MCP.HTTPRequest(method: request.method, headers: request.headers, body: Data(item.serializedBytes()), path: request.path)
            switch await session.transport.handleRequest(one) {
            case .data(let data, _):
                if let answer = try? JSONValue.parse(Array(data)) { answers.append(answer) }
            case .error(_, let error, _, _):
                answers.append(MCPPreflight.error(id: item["id"] ?? .null, code: error.code, error.errorDescription ?? "error"))
            case .accepted, .ok, .stream:
                continue
            }
        }
        if answers.isEmpty { return Response(status: .accepted) }
        return Self.json(.array(answers), status: .ok)
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serializedBytes())))
    }

    private func takeSession(_ id: String, caller: Caller) -> Session? {
        sessions.withLock { all in
            guard let s = all[id], s.caller.principal == caller.principal else { return nil }
            return all.removeValue(forKey: id)
        }
    }

    /// Closes sessions idle for longer than the configured time; returns how many.
    @discardableResult
    func reapIdle(now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> [Session] {
        sessions.withLock { all in
            let idle = all.values.filter { now > $0.lastUsedNanos && now - $0.lastUsedNanos > idleNanos }
            for s in idle { all.removeValue(forKey: s.id) }
            return idle
        }
    }

    /// Closes every session (shutdown).
    func closeAll() async {
        let all = sessions.withLock { s in
            let v = Array(s.values)
            s.removeAll()
            return v
        }
        for s in all { await s.server.stop() }
    }

    /// The request's header fields for the SDK's validators, with `Host` restored: an HTTP/1
    /// `Host` header arrives as `head.authority` (swift-http-types moves it out of the fields),
    /// and the DNS-rebinding check must see it.
    static func headers(_ head: HTTPRequest) -> [String: String] {
        var out: [String: String] = [:]
        for f in head.headerFields {
            let k = f.name.canonicalName
            if let v = out[k] { out[k] = v + ", " + f.value } else { out[k] = f.value }
        }
        if let authority = head.authority, out["host"] == nil { out["host"] = authority }
        return out
    }

    static func response(_ r: MCP.HTTPResponse) -> Response {
        var headers = HTTPFields()
        for (k, v) in r.headers { if let name = HTTPField.Name(k) { headers[name] = v } }
        let body = r.bodyData.map { ResponseBody(byteBuffer: ByteBuffer(bytes: $0)) } ?? ResponseBody()
        return Response(status: .init(code: r.statusCode), headers: headers, body: body)
    }

    static func error(_ status: Int, _ error: MCPError, extra: HTTPFields = [:]) -> Response {
        var response = Self.response(.error(statusCode: status, error))
        for f in extra { response.headers[f.name] = f.value }
        return response
    }
}

/// DNS-rebinding protection for `/mcp`: an `Origin`, when sent, must be allowed; the `Host`
/// must be allowed when a list is given (by default when bound to loopback). Patterns may end
/// in `:*` for any port.
struct OriginHostValidator: HTTPRequestValidator {
    let allowedOrigins: [String]
    /// Lowercased; nil: any host.
    let allowedHosts: [String]?

    init(allowedOrigins: [String], allowedHosts: [String]?) {
        self.allowedOrigins = allowedOrigins
        self.allowedHosts = allowedHosts?.map { $0.lowercased() }
    }

    /// Whether a request with this `Host` passes (any host when none are configured).
    func allows(host: String) -> Bool {
        guard let hosts = allowedHosts else { return true }
        let host = host.lowercased()
        return hosts.contains { Self.matches(host, $0) }
    }

    func validate(_ request: MCP.HTTPRequest, context: HTTPValidationContext) -> MCP.HTTPResponse? {
        if allowedHosts != nil {
            // A request without a Host (HTTP/1.0) cannot be checked, so it is refused as well.
            guard let host = request.header("Host"), allows(host: host) else {
                return .error(statusCode: 421, .invalidRequest("Misdirected Request: Host header not allowed"), sessionID: context.sessionID)
            }
        }
        if let origin = request.header("Origin"), !allowedOrigins.contains(where: { Self.matches(origin, $0) }) {
            return .error(statusCode: 403, .invalidRequest("Forbidden: Origin not allowed"), sessionID: context.sessionID)
        }
        return nil
    }

    static func matches(_ value: String, _ pattern: String) -> Bool {
        guard pattern.hasSuffix(":*") else { return value == pattern }
        let prefix = pattern.dropLast(2)
        guard value.hasPrefix(prefix + ":") else { return false }
        let port = value.dropFirst(prefix.count + 1)
        return !port.isEmpty && port.allSatisfy(\.isNumber)
    }
}

/// Recognises a POST in a session that the validation pipeline (`OriginHostValidator`, the
/// SDK's `AcceptHeaderValidator(.jsonOnly)`, `ContentTypeValidator`, `ProtocolVersionValidator`)
/// would pass, reading the request's fields directly: no `Origin`, the `Host` (in `authority`,
/// where the HTTP layer puts it) allowed, an `Accept` item starting `application/json`, the
/// `Content-Type` exactly `application/json`, and no or a supported `MCP-Protocol-Version`.
/// Anything else — including every request one of them would refuse — goes through the
/// pipeline, which then decides and words the refusal.
struct MCPQuickValidation: Sendable {
    /// The pipeline's own Origin/Host check, whose host rule is applied to the authority.
    let originHost: OriginHostValidator

    /// A `Host` field the HTTP layer left among the fields (HTTPTypes names it only as `authority`).
    private static let hostField = HTTPField.Name("Host")!

    func passes(_ head: HTTPRequest) -> Bool {
        let fields = head.headerFields
        guard head.method == .post, fields[.origin] == nil, hostAllowed(head) else { return false }
        guard fields[values: .contentType] == ["application/json"] else { return false }
        let accept = fields[values: .accept]
        guard accept.count == 1, Self.acceptsJSON(accept[0]) else { return false }
        let versions = fields[values: .mcpProtocolVersion]
        return versions.isEmpty || (versions.count == 1 && Version.supported.contains(versions[0]))
    }

    private func hostAllowed(_ head: HTTPRequest) -> Bool {
        if originHost.allowedHosts == nil { return true }
        // A Host field left among the fields (the pipeline would read that one): it decides.
        guard head.headerFields[Self.hostField] == nil, let host = head.authority else { return false }
        return originHost.allows(host: host)
    }

    /// Whether a comma-separated item, after leading blanks, starts with `application/json`
    /// followed by an ASCII byte or the end (a non-ASCII byte could combine with the `n`, and
    /// the SDK compares characters).
    static func acceptsJSON(_ value: String) -> Bool {
        let want: StaticString = "application/json"
        let bytes = Array(value.utf8)
        var i = 0
        while i < bytes.count {
            while i < bytes.count && (bytes[i] == 0x20 || bytes[i] == 0x09) { i += 1 }
            let n = want.utf8CodeUnitCount
            if bytes.count - i >= n, (0..<n).allSatisfy({ bytes[i + $0] == want.utf8Start[$0] }),
               i + n == bytes.count || bytes[i + n] < 0x80 {
                return true
            }
            while i < bytes.count && bytes[i] != UInt8(ascii: ",") { i += 1 }
            i += 1
        }
        return false
    }
}

/// Closes idle MCP sessions every 30 seconds; closes them all on shutdown.
public struct MCPSessionReaper: Service {
    let mcp: MCPHTTPGateway

    /// A reaper for `mcp`.
    public init(mcp: MCPHTTPGateway) { self.mcp = mcp }

    public func run() async throws {
        while !(Task.isCancelled || Task.isShuttingDownGracefully) {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
            if (Task.isCancelled || Task.isShuttingDownGracefully) { break }
            for s in mcp.reapIdle() {
                await s.server.stop()
                mcp.logger.info("mcp session closed (idle)", metadata: ["mcp_session": .string(s.id)])
            }
        }
        await mcp.closeAll()
    }
}

extension NovaServer {
    /// `POST /mcp`, `GET /mcp` (405), `DELETE /mcp`.
    func addMCPRoutes(_ router: Router<ServerContext>) {
        for method in [HTTPRequest.Method.post, .get, .delete] {
            on(router, method, "/mcp") { [self] request, context in
                let caller = try context.requireCaller()
                let body = request.method == .post ? try await collect(request) : nil
                return await mcp.handle(request, body: body, caller: caller)
            }
        }
    }

    private func collect(_ request: Request) async throws -> ByteBuffer {
        do { return try await request.body.collect(upTo: config.bodyLimitBytes) } catch {
            throw JSONIO.tooLarge(error, limit: config.bodyLimitBytes)
        }
    }
}
