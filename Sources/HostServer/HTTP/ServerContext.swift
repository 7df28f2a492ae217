import Hummingbird
import HummingbirdAuth
import JSON
import NIOCore
import Synchronization

/// The request context of every route: Hummingbird's core storage, the request id, and the
/// caller (`identity`, set by `AuthMiddleware`) or why authentication failed.
public struct ServerContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller, if the request carried valid credentials.
    public var identity: Caller?
    /// Why the credentials were refused (or `.missing`); nil once authenticated.
    public var authFailure: AuthError?
    /// The request id (from `X-Request-ID` or generated), echoed on the response and in logs.
    public var requestId: String = ""
    /// The caller, shared with the middleware outside authentication (for the access log).
    let seen = SeenCaller()
    /// The connection, watched by `cancellingOnDisconnect` while a long call runs.
    let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        channel = source.channel
        identity = nil
        authFailure = .missing
    }

    /// The caller, or the 401/403 explaining why there is none.
    public func requireCaller() throws -> Caller {
        if let identity { return identity }
        throw APIError.auth(authFailure ?? .missing)
    }
}

extension ServerContext {
    /// Runs `work`; if the client disconnects first, this task is cancelled (so its run ends
    /// `cancelled`, as a client cancel should be recorded). See `DisconnectWatch`.
    func cancellingOnDisconnect<T>(_ work: () async -> T) async -> T {
        await DisconnectWatch.shared.run(on: channel, work)
    }
}

/// Reading and writing JSON bodies.
enum JSONIO {
    static let contentType = "application/json"

    /// A JSON response with `status`.
    static func response(_ value: JSONValue, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = contentType
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.serializedBytes())))
    }

    /// The request body parsed as JSON (an empty body is `empty`), within `limit` bytes; a
    /// body must be sent as `application/json`.
    static func body(_ request: Request, limit: Int, empty: JSONValue? = nil) async throws -> JSONValue {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch {
            throw tooLarge(error, limit: limit)
        }
        if buffer.readableBytes == 0 {
            if let empty { return empty }
            throw APIError.badRequest("invalid_json", "the request body is empty: send a JSON document")
        }
        guard let ct = request.headers[.contentType] else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the body with Content-Type: application/json (none was given)")
        }
        // The exact common value first: the general parse (split, trim, lowercase) costs
        // microseconds on every call.
        let main = ct == contentType ? ct : ct.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        guard main == contentType || (main.hasPrefix("application/") && main.hasSuffix("+json")) else {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "send the body as application/json (got \(ct))")
        }
        do { return try buffer.withUnsafeReadableBytes { try JSONValue.parse($0) } } catch {
            throw APIError.badRequest("invalid_json", "the request body is not valid JSON: \(error)")
        }
    }

    /// The 413 for a body over `limit` (Hummingbird and NIO each have their error for it);
    /// other errors pass through.
    static func tooLarge(_ error: any Error, limit: Int) -> any Error {
        if let e = error as? HTTPError, e.status == .contentTooLarge {} else if !(error is NIOTooManyBytesError) { return error }
        return APIError(.contentTooLarge, "payload_too_large", "the request body is larger than \(limit) bytes")
    }
}

/// The authenticated caller of one request, visible to middleware that ran before
/// authentication (contexts are values; this box is shared by their copies).
final class SeenCaller: Sendable {
    private let caller = Mutex<Caller?>(nil)
    func set(_ c: Caller) { caller.withLock { $0 = c } }
    var value: Caller? { caller.withLock { $0 } }
}
