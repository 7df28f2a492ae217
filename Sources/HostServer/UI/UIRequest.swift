import Host
import HTTPTypes
import Hummingbird

/// A dashboard request whose session is valid: the signed-in caller, the session (for its CSRF
/// token), the posted form (state-changing requests only, its CSRF token already checked) and
/// the request context with the caller as its identity, so shared route code authorizes it
/// exactly as it authorizes a REST call with that credential.
struct UIRequest: Sendable {
    /// The caller the session's credential stood for.
    var caller: Caller
    /// The session's id (from the cookie).
    var sessionId: String
    /// The session's CSRF token (for the forms of the page).
    var csrfToken: String
    /// The posted form (empty for GET).
    var form: UIForm
    /// The route's context, with `identity` set to `caller`.
    var context: ServerContext

    /// Who is signed in, for the page frame.
    var viewer: UIHTML.Viewer {
        .init(principal: caller.principal, role: caller.role, isAdmin: caller.isAdmin, csrfToken: csrfToken)
    }
}

/// The dashboard's cookies.
enum UICookies {
    /// The session cookie (`Path=/ui`).
    static let session = "nova_session"
    /// The login form's CSRF token, before there is a session (`Path=/ui/login`).
    static let login = "nova_login_csrf"

    /// Whether the request came over TLS (terminated here or, as `X-Forwarded-Proto: https`
    /// says, by a proxy in front): then cookies are `Secure`.
    static func isSecure(_ request: Request) -> Bool {
        if request.uri.scheme == .https { return true }
        return request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Strict, `Secure` when `secure`; `maxAge` 0 deletes.
    static func header(_ name: String, _ value: String, path: String, maxAge: Int?, secure: Bool) -> String {
        var s = "\(name)=\(value); Path=\(path); HttpOnly; SameSite=Strict"
        if let maxAge { s += "; Max-Age=\(maxAge)" }
        if secure { s += "; Secure" }
        return s
    }
}
