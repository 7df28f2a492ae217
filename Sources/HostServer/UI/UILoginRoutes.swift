import Foundation
import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /ui/login` (the form), `POST /ui/login` (an API key or JWT, checked by the server's
    /// `Authenticator` exactly like an `Authorization: Bearer` header, exchanged for a session
    /// cookie), `POST /ui/logout`. The login form carries its own CSRF token (a cookie set with
    /// the form, which the post must echo), so no other site can log a browser in.
    func addDashboardLoginRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/ui/login") { request, _ in
            let token = UISessionStore.randomToken()
            let next = Self.dashboardNext(request.uri.queryParameters.get("next"))
            var headers = HTTPFields()
            headers[.setCookie] = UICookies.header(UICookies.login, token, path: "/ui/login", maxAge: 3600, secure: UICookies.isSecure(request))
            return UIHTML.response(Self.loginPage(token: token, next: next, error: nil), headers: headers)
        }

        on(router, .post, "/ui/login") { [self] request, context in
            let form: UIForm
            do { form = try await UIForm.read(request, limit: 16 * 1024) } catch let e as APIError {
                return dashboardError(e.status, e.message, viewer: nil)
            }
            let next = Self.dashboardNext(form["next"])
            let expected = request.cookies[UICookies.login]?.value ?? ""
            guard UISessionStore.tokensMatch(form["csrf"] ?? "", expected) else {
                context.logger.warning("dashboard login refused: missing or wrong CSRF token")
                return dashboardError(.forbidden, "The login form's token is missing or stale. Open the login page again.", viewer: nil)
            }
            let credential = (form["credential"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            let address = Self.clientAddress(context)
            if let wait = uiLoginLimiter.retryAfter(address) {
                _ = await host.audit("auth.failure", target: request.uri.path,
                                 detail: ["reason": "too many failed logins from this address", "header": "dashboard_login",
                                          "http_method": "POST", "client": .string(address)], actor: "unknown")
                context.logger.warning("dashboard login refused: too many failed logins", metadata: ["client": .string(address)])
                var headers = HTTPFields()
                headers[.retryAfter] = String(wait)
                let message = "Too many failed logins from your address. Try again in \(wait) second\(wait == 1 ? "" : "s")."
                return UIHTML.response(Self.loginPage(token: expected, next: next, error: message), status: .tooManyRequests, headers: headers)
            }
            let caller: Caller
            do throws(AuthError) {
                guard !credential.isEmpty else { throw .missing }
                caller = try await authenticator.authenticate(authorization: "Bearer \(credential)", apiKey: nil)
            } catch {
                if error != .missing { uiLoginLimiter.recordFailure(address) }
                _ = await host.audit("auth.failure", target: request.uri.path,
                                 detail: ["reason": .string(error.description), "header": "dashboard_login", "http_method": "POST",
                                          "client": .string(address)], actor: "unknown")
                // The same form token serves the next try.
                let message = error == .missing ? "Enter an API key or a JWT." : "Those credentials were not accepted: \(error.description)"
                return UIHTML.response(Self.loginPage(token: expected, next: next, error: message), status: error.status == 403 ? .forbidden : .unauthorized)
            }
            // A new id at every login; a session the browser still held ends (no fixation).
            uiSessions.remove(request.cookies[UICookies.session]?.value)
            let (id, _) = uiSessions.create(for: caller)
            await AuditActor.$principal.withValue(caller.principal) {
                _ = await host.audit("dashboard.login", target: "/ui", detail: ["role": .string(caller.role), "method": .string(caller.method.description)])
            }
            context.logger.info("dashboard login", metadata: ["principal": .string(caller.principal), "role": .string(caller.role)])
            var headers = HTTPFields()
            let secure = UICookies.isSecure(request)
            headers[values: .setCookie] = [
                UICookies.header(UICookies.session, id, path: "/ui", maxAge: nil, secure: secure),
                UICookies.header(UICookies.login, "", path: "/ui/login", maxAge: 0, secure: secure),
            ]
            return UIHTML.redirect(next, headers: headers)
        }

        onUI(router, .post, "/ui/logout") { [self] request, ui in
            uiSessions.remove(ui.sessionId)
            var headers = HTTPFields()
            headers[.setCookie] = UICookies.header(UICookies.session, "", path: "/ui", maxAge: 0, secure: UICookies.isSecure(request))
            return UIHTML.redirect("/ui/login", headers: headers)
        }
    }

    /// The connection's peer address (what the login limit is kept per).
    static func clientAddress(_ context: ServerContext) -> String {
        context.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Where to go after login: a dashboard path (never another site), else the overview.
    static func dashboardNext(_ raw: String?) -> String {
        guard let raw, raw == "/ui" || raw.hasPrefix("/ui/") || raw.hasPrefix("/ui?"), !raw.contains("//"), !raw.contains("\\"),
              raw.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else { return "/ui" }
        return raw
    }

    static func loginPage(token: String, next: String, error: String?) -> String {
        var body = "<div class=\"login\">\n<h1>Log in</h1>\n"
        if let error { body += "<p class=\"error\" role=\"alert\" id=\"login-error\">\(UIHTML.escape(error))</p>\n" }
        body += """
        <form method="post" action="/ui/login">
        <input type="hidden" name="csrf" value="\(UIHTML.escape(token))">
        <input type="hidden" name="next" value="\(UIHTML.escape(next))">
        <label for="credential">API key or JWT</label>
        <input type="password" id="credential" name="credential" autocomplete="current-password" required autofocus aria-describedby="credential-help">
        <p id="credential-help">The credential is checked like an <code>Authorization: Bearer</code> header and exchanged for a session cookie; it is not stored.</p>
        <button type="submit">Log in</button>
        </form>
        </div>
        """
        return UIHTML.page(title: "Log in", section: nil, viewer: nil, body: body)
    }
}
