import Hummingbird
import JSON

/// An error answered as `{"error":{"code","message","request_id", …}}` with its status.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A short machine-readable code (`not_found`, `denied`, `invalid_plan`, …).
    public var code: String
    /// A plain-English message.
    public var message: String
    /// Extra members of the error object (`run_id`, `rule`, `details`, …).
    public var extra: [String: JSONValue]
    /// Extra response headers (`WWW-Authenticate`, `Allow`, …).
    public var headers: HTTPFields

    /// An error with `status`, `code` and `message`.
    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, extra: [String: JSONValue] = [:], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra
        self.headers = headers
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    /// 400 with `code`.
    public static func badRequest(_ code: String, _ message: String, extra: [String: JSONValue] = [:]) -> APIError {
        APIError(.badRequest, code, message, extra: extra)
    }

    /// 404 `not_found`.
    public static func notFound(_ message: String) -> APIError { APIError(.notFound, "not_found", message) }

    /// The error for an authentication failure (401 with a `WWW-Authenticate` challenge, or 403).
    public static func auth(_ e: AuthError) -> APIError {
        if e.status == 403 { return APIError(.forbidden, e.code, e.description) }
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = e == .missing ? "Bearer realm=\"nova-host\"" : "Bearer realm=\"nova-host\", error=\"invalid_token\""
        return APIError(.unauthorized, e.code, e.description, headers: headers)
    }

    /// The code for a bare HTTP status (errors Hummingbird raised itself).
    static func code(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: return "bad_request"
        case 401: return "unauthorized"
        case 403: return "forbidden"
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 408: return "request_timeout"
        case 409: return "conflict"
        case 413: return "payload_too_large"
        case 415: return "unsupported_media_type"
        case 422: return "unprocessable"
        case 429: return "too_many_requests"
        case 501: return "not_implemented"
        case 503: return "unavailable"
        default: return status.code >= 500 ? "internal" : "error"
        }
    }

    /// The response body.
    func body(requestId: String) -> JSONValue {
        var e = extra
        e["code"] = .string(code)
        e["message"] = .string(message)
        e["request_id"] = .string(requestId)
        return ["error": .object(e)]
    }
}
