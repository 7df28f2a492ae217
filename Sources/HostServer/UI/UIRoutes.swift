import Foundation
import Host
import HTTPTypes
import Hummingbird
import JSON
import NIOCore

extension NovaServer {
    /// The web dashboard at `/ui` (docs/dashboard.md): login with an API key or JWT exchanged for
    /// a session cookie, and the pages. Every page and action authorizes through the same code
    /// as the REST API, as the signed-in caller.
    func addDashboardRoutes(_ router: Router<ServerContext>) {
        addDashboardAssetRoutes(router)
        addDashboardLoginRoutes(router)
        addDashboardOverviewRoutes(router)
        addDashboardRunRoutes(router)
        addDashboardAgentRoutes(router)
        addDashboardApprovalRoutes(router)
        addDashboardDriverRoutes(router)
        addDashboardJobRoutes(router)
        addDashboardSubscriptionRoutes(router)
    }

    /// `GET /ui/assets/app.js`, `GET /ui/assets/app.css`: the embedded assets (public; cached
    /// for a day, their URLs carry the assets' digest).
    func addDashboardAssetRoutes(_ router: Router<ServerContext>) {
        for (name, type, text) in [("app.js", "text/javascript; charset=utf-8", UIAssets.appJS), ("app.css", "text/css; charset=utf-8", UIAssets.appCSS)] {
            on(router, .get, "/ui/assets/\(name)") { _, _ in
                var h = HTTPFields()
                h[.contentType] = type
                h[.cacheControl] = "public, max-age=86400"
                h[.contentSecurityPolicy] = UIHTML.contentSecurityPolicy
                return Response(status: .ok, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
            }
        }
    }

    /// Registers a dashboard route that needs a session. Without one, a GET is redirected to the
    /// login page and anything else is refused (401). A state-changing request (not GET) must
    /// carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`), else 403.
    /// Errors of the shared route code (404 for another principal's run, 403 for a role's
    /// refusal, …) are answered as HTML pages with the same status.
    func onUI(_ router: Router<ServerContext>, _ method: HTTPRequest.Method, _ path: String,
              _ handler: @escaping @Sendable (Request, UIRequest) async throws -> Response) {
        on(router, method, path) { [self] request, context in
            let sessionId = request.cookies[UICookies.session]?.value
            guard let session = uiSessions.session(sessionId), let sessionId else {
                if method == .get {
                    let next = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                    return UIHTML.redirect("/ui/login?next=\(UIHTML.urlComponent(next))")
                }
                return dashboardError(.unauthorized, "Your session has ended. Log in again.", viewer: nil)
            }
            // The role is resolved again at every request from the current policy, so a policy
            // reload that takes a role away ends the sessions that held it (no stale admin).
            let caller: Caller
            do throws(AuthError) { caller = try authenticator.revalidate(session.caller) } catch {
                uiSessions.remove(sessionId)
                _ = await host.audit("auth.failure", target: request.uri.path,
                                 detail: ["reason": .string(error.description), "header": "dashboard_session", "http_method": .string(method.rawValue)],
                                 actor: session.caller.principal)
                context.logger.warning("dashboard session ended: its role no longer holds", metadata: ["principal": .string(session.caller.principal)])
                return dashboardError(.unauthorized, "Your session has ended: \(error.description). Log in again.", viewer: nil)
            }
            var form = UIForm("")
            if method != .get {
                do { form = try await UIForm.read(request, limit: min(config.bodyLimitBytes, 64 * 1024)) } catch let e as APIError {
                    return dashboardError(e.status, e.message, viewer: nil)
                }
                let sent = form["csrf"] ?? request.headers[HTTPField.Name("X-CSRF-Token")!] ?? ""
                guard UISessionStore.tokensMatch(sent, session.csrfToken) else {
                    context.logger.warning("dashboard request refused: missing or wrong CSRF token",
                                           metadata: ["path": .string(request.uri.path), "principal": .string(caller.principal)])
                    return dashboardError(.forbidden, "This request did not carry the page's CSRF token, so it was refused. Reload the page and try again.",
                                          viewer: nil)
                }
            }
            var ctx = context
            ctx.identity = caller
            ctx.authFailure = nil
            ctx.seen.set(caller)
            RequestLogContext.current?.authenticated(as: caller.principal)
            let ui = UIRequest(caller: caller, sessionId: sessionId, csrfToken: session.csrfToken, form: form, context: ctx)
            return try await AuditActor.$principal.withValue(caller.principal) {
                do { return try await handler(request, ui) } catch let e as APIError {
                    return dashboardError(e.status, e.message, viewer: ui.viewer)
                }
            }
        }
    }

    /// An HTML error page with `status`.
    func dashboardError(_ status: HTTPResponse.Status, _ message: String, viewer: UIHTML.Viewer?) -> Response {
        let body = "<h1>\(status.code) \(UIHTML.escape(status.reasonPhrase))</h1>\n<p class=\"error\" role=\"alert\">\(UIHTML.escape(message))</p>\n"
            + (viewer == nil ? "<p><a href=\"/ui/login\">Log in</a></p>" : "<p><a href=\"/ui\">Back to the overview</a></p>")
        return UIHTML.response(UIHTML.page(title: "\(status.code)", section: nil, viewer: viewer, body: body), status: status)
    }
}
