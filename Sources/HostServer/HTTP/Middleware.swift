import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Host
import JSON
import Logging
import Synchronization

extension HTTPField.Name {
    static let xRequestID = HTTPField.Name("X-Request-ID")!
    static let xAPIKey = HTTPField.Name("X-API-Key")!
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
    static let mcpSessionId = HTTPField.Name("Mcp-Session-Id")!
    static let mcpProtocolVersion = HTTPField.Name("MCP-Protocol-Version")!
    static let xRunID = HTTPField.Name("X-Run-ID")!
    static let xFrameOptions = HTTPField.Name("X-Frame-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}

/// The routes the server answers, by method and path pattern (`{name}` matches one segment):
/// what a 405 answer's `Allow` header lists.
final class RouteTable: Sendable {
    private let routes = Mutex<[(method: HTTPRequest.Method, segments: [Substring])]>([])

    func add(_ method: HTTPRequest.Method, _ path: String) {
        routes.withLock { $0.append((method, path.split(separator: "/"))) }
    }

    /// The methods some route allows at `path` (empty: no route has this path).
    func methods(at path: String) -> [String] {
        let parts = path.split(separator: "/")
        return routes.withLock { all in
            let matching = all.filter { r in
                r.segments.count == parts.count && zip(r.segments, parts).allSatisfy { p, s in p.hasPrefix("{") || p == s }
            }
            // The router prefers a literal segment to a parameter (whatever the method), so a
            // parameter route is not reachable where another route spells the segment out:
            // `/v1/drivers/reload` is POST only, not also `GET /v1/drivers/{name}`.
            let literalAt = Set(matching.flatMap { r in r.segments.indices.filter { !r.segments[$0].hasPrefix("{") } })
            return matching.filter { r in
                !r.segments.indices.contains { r.segments[$0].hasPrefix("{") && literalAt.contains($0) }
            }.map(\.method.rawValue)
        }
    }
}

/// The outermost middleware, on every response: request id (`X-Request-ID` accepted if sane,
/// else generated; echoed), CORS, errors rendered as `{"error":{code,message,request_id}}`,
/// security headers, request metrics and the access log.
struct EdgeMiddleware: RouterMiddleware {
    typealias Context = ServerContext

    let corsOrigins: Set<String>
    let corsMaxAge: Int
    let metrics: ServerMetrics
    let routes: RouteTable
    let logger: Logger

    static let corsMethods = "GET, POST, DELETE, OPTIONS"
    static let corsHeaders = "Authorization, Content-Type, X-API-Key, X-Request-ID, Idempotency-Key, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var context = context
        let rid = request.headers[.xRequestID].flatMap(Self.acceptedRequestId) ?? Self.newRequestId()
        context.requestId = rid
        // Log lines name the request through a task-local, not the logger's metadata (copying
        // the logger at each middleware allocated on every request).
        return try await RequestLogContext.$current.withValue(RequestLogContext(requestId: rid)) {
            try await respond(request, context: context, start: start, next: next)
        }
    }

    private func respond(_ request: Request, context: Context, start: UInt64,
                         next: (Request, Context) async throws -> Response) async throws -> Response {
        let rid = context.requestId
        let origin = request.headers[.origin]
        let originAllowed = origin.map { corsOrigins.contains($0) } ?? false

        var response: Response
        if request.method == .options, origin != nil, request.headers[.accessControlRequestMethod] != nil {
            // A CORS preflight.
            if originAllowed {
                response = Response(status: .noContent)
                response.headers[.accessControlAllowMethods] = Self.corsMethods
                response.headers[.accessControlAllowHeaders] = Self.corsHeaders
                response.headers[.accessControlMaxAge] = String(corsMaxAge)
            } else {
                response = render(APIError(.forbidden, "origin_not_allowed", "origin \(origin!) is not allowed (cors.allowed_origins)"),
                                  context: context)
            }
        } else {
            do { response = try await next(request, context) } catch {
                response = render(error, request: request, context: context)
            }
        }
        if let origin, originAllowed {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlExposeHeaders] = "X-Request-ID, Location, Mcp-Session-Id, X-Run-ID, Idempotent-Replayed"
        }
        if origin != nil { response.headers[values: .vary].append("Origin") }
        response.headers[.xRequestID] = rid
        // The dashboard's responses set their own (scripts and styles from 'self'); nothing else loads anything.
        if response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = "default-src 'none'; frame-ancestors 'none'"
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }

        let elapsed = Int64(DispatchTime.now().uptimeNanoseconds - start)
        let route = context.endpointPath.map { $0 == "NotFound" ? "unmatched" : $0 } ?? "unmatched"
        metrics.request(route: route, method: request.method.rawValue, status: response.status.code, nanoseconds: elapsed)
        if context.logger.logLevel <= .info {
            var meta: Logger.Metadata = ["method": .string(request.method.rawValue), "path": .string(request.uri.path),
                                         "status": .stringConvertible(response.status.code), "duration_ms": .string(String(format: "%.3f", Double(elapsed) / 1e6))]
            if let caller = context.seen.value { meta["principal"] = .string(caller.principal) }
            context.logger.info("request", metadata: meta)
        }
        return response
    }

    /// Renders any error thrown by a route or middleware.
    func render(_ error: any Error, request: Request, context: Context) -> Response {
        switch error {
        case let e as APIError:
            return render(e, context: context)
        case let e as HTTPError:
            if e.status == .notFound, context.endpointPath == "NotFound" || context.endpointPath == nil {
                let allowed = routes.methods(at: request.uri.path)
                if !allowed.isEmpty {
                    var headers = HTTPFields()
                    headers[.allow] = allowed.joined(separator: ", ")
                    return render(APIError(.methodNotAllowed, "method_not_allowed",
                                           "\(request.method.rawValue) is not allowed on \(request.uri.path) (allowed: \(allowed.joined(separator: ", ")))",
                                           headers: headers), context: context)
                }
                return render(APIError.notFound("no route \(request.method.rawValue) \(request.uri.path)"), context: context)
            }
            let message = e.body ?? e.status.reasonPhrase
            return render(APIError(e.status, APIError.code(for: e.status), message, headers: e.headers), context: context)
        default:
            context.logger.error("unhandled error", metadata: ["error": .string("\(error)")])
            return render(APIError(.internalServerError, "internal", "internal error (request \(context.requestId))"), context: context)
        }
    }

    func render(_ e: APIError, context: Context) -> Response {
        if e.status.code >= 500 {
            context.logger.warning("request failed", metadata: ["code": .string(e.code), "message": .string(e.message)])
        }
        return JSONIO.response(e.body(requestId: context.requestId), status: e.status, headers: e.headers)
    }

    /// A client-sent request id is kept if it is 1–128 characters of `A–Z a–z 0–9 - _ . : /`.
    static func acceptedRequestId(_ s: String) -> String? {
        guard !s.isEmpty, s.utf8.count <= 128 else { return nil }
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"):
                continue
            default: return nil
            }
        }
        return s
    }

    /// 24 hex digits, unique in the process and not guessable from earlier ones: a counter
    /// through splitmix64 (a bijection, so no two requests share the first 16 digits) keyed by
    /// random seeds drawn once. Drawing from the system's generator per request cost two
    /// `getrandom` calls.
    static func newRequestId() -> String {
        let n = requestCounter.add(1, ordering: .relaxed).newValue
        return String(unsafeUninitializedCapacity: 24) { out in
            FixedText.putHex(splitmix64(requestSeeds.0 &+ n), width: 16, into: out, at: 0)
            FixedText.putHex(splitmix64(requestSeeds.1 &+ n), width: 8, into: out, at: 16)
            return 24
        }
    }

    private static let requestSeeds: (UInt64, UInt64) = {
        var g = SystemRandomNumberGenerator()
        return (g.next(), g.next())
    }()
    private static let requestCounter = Atomic<UInt64>(0)

    static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Authenticates every request that carries credentials (`Authorization: Bearer`, `X-API-Key`)
/// and puts the caller in the context; routes that need one call `requireCaller()`, which
/// answers 401/403 with the reason. Public routes simply do not ask.
struct AuthMiddleware: AuthenticatorMiddleware {
    typealias Context = ServerContext
    typealias Identity = Caller

    let authenticator: Authenticator
    /// Records a presented credential that failed (never the credential itself).
    var onFailure: @Sendable (AuthError, Request) async -> Void = { _, _ in }

    func authenticate(request: Request, context: Context) async throws -> Caller? {
        let authz = request.headers[.authorization], key = request.headers[.xAPIKey]
        guard authz != nil || key != nil else { return nil }
        return try await authenticator.authenticate(authorization: authz, apiKey: key)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        do {
            if let caller = try await authenticate(request: request, context: context) {
                context.identity = caller
                context.authFailure = nil
                context.seen.set(caller)
                RequestLogContext.current?.authenticated(as: caller.principal)
            } else {
                context.authFailure = .missing
            }
        } catch let e as AuthError {
            context.authFailure = e
            await onFailure(e, request)
        }
        return try await next(request, context)
    }
}
