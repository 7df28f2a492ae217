import Foundation
import Host
@testable import HostServer
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import NIOCore
import Synchronization
import Testing

/// The dashboard's sessions and CSRF protection: the session store on its own (expiry with a
/// fake clock, capacity, token comparison), then login, CSRF and logout over a real socket.
@Suite struct DashboardTests {
    typealias F = ServerFixtures

    @Test func sessionsExpireWhenIdleAndAtTheirAbsoluteLifetime() {
        let clock = Mutex<UInt64>(1_000)
        let store = UISessionStore(idle: .seconds(10), absolute: .seconds(30), capacity: 3, now: { clock.withLock { $0 } })
        let caller = Caller(principal: "alice", role: "user", method: .apiKey(id: "a"), isAdmin: false)
        let (id, csrf) = store.create(for: caller)
        #expect(UISessionStore.isWellFormed(id) && UISessionStore.isWellFormed(csrf) && id != csrf)
        #expect(store.session(id)?.caller == caller)
        clock.withLock { $0 += 9_000_000_000 }
        #expect(store.session(id) != nil, "used within the idle timeout")
        clock.withLock { $0 += 9_000_000_000 }
        #expect(store.session(id) != nil, "each use restarts the idle clock")
        clock.withLock { $0 += 11_000_000_000 }
        #expect(store.session(id) == nil, "idle for longer than the timeout")
        let (other, _) = store.create(for: caller)
        for _ in 0..<4 {
            clock.withLock { $0 += 8_000_000_000 }
            _ = store.session(other)
        }
        #expect(store.session(other) == nil, "past the absolute lifetime even when used")
        #expect(store.session(nil) == nil && store.session("zz") == nil && store.session(String(repeating: "A", count: 64)) == nil)
    }

    @Test func theLeastRecentlyUsedSessionGoesAtCapacityAndLogoutRemoves() {
        let clock = Mutex<UInt64>(1)
        let store = UISessionStore(capacity: 2, now: { clock.withLock { $0 += 1; return $0 } })
        let caller = Caller(principal: "bob", role: "user", method: .apiKey(id: "b"), isAdmin: false)
        let a = store.create(for: caller).id, b = store.create(for: caller).id
        _ = store.session(a)
        let c = store.create(for: caller).id
        #expect(store.session(b) == nil && store.session(a) != nil && store.session(c) != nil)
        store.remove(a)
        #expect(store.session(a) == nil && store.count == 1)
    }

    @Test func tokensCompareExactly() {
        let t = UISessionStore.randomToken()
        #expect(UISessionStore.tokensMatch(t, t))
        #expect(!UISessionStore.tokensMatch(t, String(t.dropLast()) + (t.last == "0" ? "1" : "0")))
        #expect(!UISessionStore.tokensMatch("", ""))
        #expect(!UISessionStore.tokensMatch(t, t + "0"))
        #expect(UIForm("a=1&b=two+words&c=%C3%A9&a=2&d")["b"] == "two words")
        #expect(UIForm("a=1&a=2&c=%C3%A9&bad=%zz")["a"] == "1" && UIForm("c=%C3%A9")["c"] == "é" && UIForm("bad=%zz")["bad"] == "%zz")
    }

    /// The value of `name` in the response's Set-Cookie headers.
    static func cookie(_ r: TestResponse, _ name: String) -> (value: String, attributes: String)? {
        for line in r.headers[values: .setCookie] where line.hasPrefix(name + "=") {
            let value = line.dropFirst(name.count + 1).prefix { $0 != ";" }
            return (String(value), line)
        }
        return nil
    }

    static func form(_ fields: [String: String], cookie: String?, more: [(String, String)] = []) -> (HTTPFields, ByteBuffer) {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = fields.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&")
        var pairs = [("Content-Type", "application/x-www-form-urlencoded")] + more
        if let cookie { pairs.append(("Cookie", cookie)) }
        return (Req.headers(pairs), ByteBuffer(string: body))
    }

    /// Logs in with `credential`; returns the session cookie and the page's CSRF token.
    static func login(_ client: any TestClientProtocol, _ credential: String, next: String = "/ui", session: String? = nil,
                      more: [(String, String)] = []) async throws -> (cookie: String, csrf: String, response: TestResponse) {
        let page = try await client.execute(uri: "/ui/login", method: .get, headers: [:])
        let loginCSRF = try #require(cookie(page, UICookies.login)).value
        #expect(page.text.contains("value=\"\(loginCSRF)\""))
        let (h, b) = form(["csrf": loginCSRF, "credential": credential, "next": next], cookie: "\(UICookies.login)=\(loginCSRF)" + (session.map { "; " + $0 } ?? ""), more: more)
        let r = try await client.execute(uri: "/ui/login", method: .post, headers: h, body: b)
        guard let session = cookie(r, UICookies.session) else { return ("", "", r) }
        let overview = try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", "nova_session=\(session.value)")]))
        let csrf = overview.text.range(of: #"name="csrf" value="([0-9a-f]{64})""#, options: .regularExpression)
            .map { String(overview.text[$0].suffix(65).prefix(64)) } ?? ""
        return ("nova_session=\(session.value)", csrf, r)
    }

    @Test func loginCSRFAndLogoutOverASocket() async throws {
        try await F.server().withClient(.live) { client in
            // No session: pages redirect to the login page, posts are refused.
            let anonymous = try await client.execute(uri: "/ui/runs?status=failed", method: .get, headers: [:])
            #expect(anonymous.status == .seeOther && anonymous.headers[.location] == "/ui/login?next=%2Fui%2Fruns%3Fstatus%3Dfailed")
            #expect(anonymous.headers[.contentSecurityPolicy]?.contains("script-src 'self'") == true)

            // A login post without the login form's token is refused; a wrong key is 401.
            let (h0, b0) = Self.form(["credential": F.aliceKey], cookie: nil)
            #expect(try await client.execute(uri: "/ui/login", method: .post, headers: h0, body: b0).status == .forbidden)
            let wrong = try await Self.login(client, "nope")
            #expect(wrong.response.status == .unauthorized && wrong.cookie.isEmpty && wrong.response.text.contains("not accepted"))

            // Alice logs in: a session cookie scoped to /ui, HttpOnly, SameSite=Strict, not Secure over plain HTTP.
            let alice = try await Self.login(client, F.aliceKey, next: "//evil.example/")
            #expect(alice.response.status == .seeOther && alice.response.headers[.location] == "/ui", "next never leaves the dashboard")
            let attrs = try #require(Self.cookie(alice.response, UICookies.session)).attributes
            #expect(attrs.contains("Path=/ui") && attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict") && !attrs.contains("Secure"))
            #expect(alice.csrf.count == 64)
            let page = try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", alice.cookie)]))
            #expect(page.status == .ok && page.text.contains("alice"))
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"))
            #expect(!page.text.contains("reload-drivers"), "a user has no reload button")

            // Logging in again from the same browser replaces its session.
            let again = try await Self.login(client, F.aliceKey, session: alice.cookie)
            #expect(!again.cookie.isEmpty && again.cookie != alice.cookie)
            #expect(try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", again.cookie)])).status == .ok)
            #expect(try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", alice.cookie)])).status == .seeOther)
            let current = again

            // Behind a TLS proxy the cookie is Secure.
            let secure = try await Self.login(client, F.aliceKey, more: [("X-Forwarded-Proto", "https")])
            #expect(try #require(Self.cookie(secure.response, UICookies.session)).attributes.contains("; Secure"))

            // A state-changing post needs the session's CSRF token (field or header).
            let (h1, b1) = Self.form([:], cookie: current.cookie)
            #expect(try await client.execute(uri: "/ui/drivers/reload", method: .post, headers: h1, body: b1).status == .forbidden)
            let (h2, b2) = Self.form(["csrf": secure.csrf], cookie: current.cookie)
            #expect(try await client.execute(uri: "/ui/drivers/reload", method: .post, headers: h2, body: b2).status == .forbidden,
                    "another session's token does not count")
            let (h3, b3) = Self.form(["csrf": current.csrf], cookie: current.cookie)
            #expect(try await client.execute(uri: "/ui/drivers/reload", method: .post, headers: h3, body: b3).status == .forbidden,
                    "a valid token, but a user may not reload drivers")

            // An admin (by JWT) may; the token can come as a header.
            let admin = try await Self.login(client, Tokens.hs256(Tokens.claims(sub: "admin", role: "admin")))
            #expect(admin.response.status == .seeOther && !admin.cookie.isEmpty)
            let (h4, b4) = Self.form([:], cookie: admin.cookie, more: [("X-CSRF-Token", admin.csrf)])
            let reloaded = try await client.execute(uri: "/ui/drivers/reload", method: .post, headers: h4, body: b4)
            #expect(reloaded.status == .seeOther && reloaded.headers[.location] == "/ui?notice=drivers_reloaded")

            // Logout needs the token too, then the session is gone.
            let (h5, b5) = Self.form([:], cookie: current.cookie)
            #expect(try await client.execute(uri: "/ui/logout", method: .post, headers: h5, body: b5).status == .forbidden)
            let (h6, b6) = Self.form(["csrf": current.csrf], cookie: current.cookie)
            let out = try await client.execute(uri: "/ui/logout", method: .post, headers: h6, body: b6)
            #expect(out.status == .seeOther && Self.cookie(out, UICookies.session)?.attributes.contains("Max-Age=0") == true)
            #expect(try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", current.cookie)])).status == .seeOther)
            // A bearer credential does not stand in for a session on /ui.
            #expect(try await client.get("/ui", F.aliceKey).status == .seeOther)
        }
    }

    @Test func theLoginLimiterRefusesPastItsBurstAndRefills() {
        let clock = Mutex<UInt64>(1_000)
        let limiter = UILoginLimiter(capacity: 3, refillSeconds: 10, maxAddresses: 2, now: { clock.withLock { $0 } })
        for _ in 0..<2 { limiter.recordFailure("10.0.0.1") }
        #expect(limiter.retryAfter("10.0.0.1") == nil, "two failures of three allowed")
        limiter.recordFailure("10.0.0.1")
        #expect(limiter.retryAfter("10.0.0.1") == 10, "no token left: one refills in 10 s")
        #expect(limiter.retryAfter("10.0.0.2") == nil, "another address is not limited")
        clock.withLock { $0 += 4_000_000_000 }
        #expect(limiter.retryAfter("10.0.0.1") == 6)
        clock.withLock { $0 += 6_000_000_000 }
        #expect(limiter.retryAfter("10.0.0.1") == nil, "a token refilled")
        limiter.recordFailure("10.0.0.1")
        #expect(limiter.retryAfter("10.0.0.1") == 10)
        // Past maxAddresses, buckets that limit nothing go first; a limited one stays.
        limiter.recordFailure("10.0.0.2")
        clock.withLock { $0 += 60_000_000_000 }
        for _ in 0..<3 { limiter.recordFailure("10.0.0.3") }
        limiter.recordFailure("10.0.0.4")
        #expect(limiter.retryAfter("10.0.0.3") == 10, "the limited address is still limited after pruning")
    }

    /// Posts a login form with its token (from the login page) and `credential`.
    static func postLogin(_ client: any TestClientProtocol, _ credential: String) async throws -> TestResponse {
        let page = try await client.execute(uri: "/ui/login", method: .get, headers: [:])
        let token = try #require(cookie(page, UICookies.login)).value
        let (h, b) = form(["csrf": token, "credential": credential], cookie: "\(UICookies.login)=\(token)")
        return try await client.execute(uri: "/ui/login", method: .post, headers: h, body: b)
    }

    @Test func failedLoginsAreLimitedPerAddressOverASocket() async throws {
        let server = try await F.server()
        try await server.withClient(.live) { client in
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<10 { statuses.append(try await Self.postLogin(client, "wrong-\(UUID().uuidString)").status) }
            #expect(statuses.allSatisfy { $0 == .unauthorized }, "\(statuses)")
            let limited = try await Self.postLogin(client, "wrong-again")
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 > 0, "Retry-After in seconds")
            #expect(limited.text.contains("Too many failed logins") && limited.headers[.contentSecurityPolicy] != nil)
            #expect(limited.headers[.setCookie] == nil, "no session")
            let right = try await Self.postLogin(client, F.aliceKey)
            #expect(right.status == .tooManyRequests && Self.cookie(right, UICookies.session) == nil, "while limited the right key is refused too")
            let audit = try await client.get("/v1/audit?action=auth.failure&limit=100", F.adminKey)
            #expect(audit.status == .ok, "the REST API is not limited by the dashboard's login limit")
            let entries = try JSONValue.parse(audit.text)["entries"]?.arrayValue ?? []
            #expect(entries.filter { $0.serialized().contains("too many failed logins") }.count == 2, "every refused try is audited")
            #expect(entries.count == 12)
        }
    }

    @Test func newDashboardPostsNeedTheCSRFToken() async throws {
        try await F.server().withClient(.live) { client in
            // An agent of alice's, a subscription with no dead letters.
            let agent = try await client.post("/v1/agents", F.adminKey, ["name": "csrf-agent", "principal": "alice"])
            #expect(agent.status == .created)
            let agentId = try #require(try JSONValue.parse(agent.text)["id"]?.stringValue)
            #expect(try await client.post("/v1/topics", F.adminKey, ["name": "csrf.events"]).status == .created)
            #expect(try await client.post("/v1/subscriptions", F.adminKey, ["id": "csrf-sub", "topic": "csrf.events"]).status == .created)
            let alice = try await Self.login(client, F.aliceKey)
            let admin = try await Self.login(client, F.adminKey)
            #expect(!alice.csrf.isEmpty && !admin.csrf.isEmpty)

            // A goal: refused without the token (nothing queued), accepted with it.
            let goal: [String: String] = ["goal": "from the form", "plan": #"{"name": "csrf-plan", "steps": [{"id": "s", "call": "echo.echo", "input": {}}]}"#]
            let (h0, b0) = Self.form(goal, cookie: alice.cookie)
            #expect(try await client.execute(uri: "/ui/agents/\(agentId)/goals", method: .post, headers: h0, body: b0).status == .forbidden)
            let (h1, b1) = Self.form(goal.merging(["csrf": admin.csrf]) { $1 }, cookie: alice.cookie)
            #expect(try await client.execute(uri: "/ui/agents/\(agentId)/goals", method: .post, headers: h1, body: b1).status == .forbidden,
                    "another session's token does not count")
            let goals0 = try JSONValue.parse(try await client.get("/v1/agents/\(agentId)/runs", F.aliceKey).text)["items"]?.arrayValue ?? []
            #expect(goals0.isEmpty, "the refused posts queued nothing")
            let (h2, b2) = Self.form(goal.merging(["csrf": alice.csrf, "idempotency_key": "form-1"]) { $1 }, cookie: alice.cookie)
            let ok = try await client.execute(uri: "/ui/agents/\(agentId)/goals", method: .post, headers: h2, body: b2)
            #expect(ok.status == .seeOther && ok.headers[.location] == "/ui/agents/\(agentId)?notice=goal_submitted")
            let again = try await client.execute(uri: "/ui/agents/\(agentId)/goals", method: .post, headers: h2, body: b2)
            #expect(again.status == .seeOther)
            let goals = try JSONValue.parse(try await client.get("/v1/agents/\(agentId)/runs", F.aliceKey).text)["items"]?.arrayValue ?? []
            #expect(goals.count == 1 && goals.first?["goal"]?.stringValue == "from the form", "a resubmitted form makes no second goal")
            let (h3, b3) = Self.form(["csrf": alice.csrf, "goal": "bad", "plan": "{not json"], cookie: alice.cookie)
            let bad = try await client.execute(uri: "/ui/agents/\(agentId)/goals", method: .post, headers: h3, body: b3)
            #expect(bad.status == .unprocessableContent && bad.text.contains("not valid JSON"))

            // Dead letters: replay and purge need the token; alice's policy does not allow them (403).
            for action in ["replay", "purge"] {
                let path = "/ui/jobs/subscriptions/csrf-sub/dlq/\(action)"
                let (h, b) = Self.form(["confirm": "yes"], cookie: admin.cookie)
                #expect(try await client.execute(uri: path, method: .post, headers: h, body: b).status == .forbidden)
                let (ha, ba) = Self.form(["confirm": "yes", "csrf": alice.csrf], cookie: alice.cookie)
                #expect(try await client.execute(uri: path, method: .post, headers: ha, body: ba).status == .forbidden)
                let (hc, bc) = Self.form(["csrf": admin.csrf], cookie: admin.cookie)
                let confirm = try await client.execute(uri: path, method: .post, headers: hc, body: bc)
                #expect(confirm.status == .ok && confirm.text.contains("id=\"confirm\""), "first a confirmation page")
                let (hd, bd) = Self.form(["confirm": "yes", "csrf": admin.csrf], cookie: admin.cookie)
                let done = try await client.execute(uri: path, method: .post, headers: hd, body: bd)
                #expect(done.status == .seeOther && done.headers[.location] == "/ui/jobs/subscriptions/csrf-sub?notice=dlq_\(action == "replay" ? "replayed" : "purged")")
            }
            let (hm, bm) = Self.form(["csrf": admin.csrf], cookie: admin.cookie)
            #expect(try await client.execute(uri: "/ui/jobs/subscriptions/nope/dlq/replay", method: .post, headers: hm, body: bm).status == .notFound)
        }
    }

    @Test func aPolicyReloadThatTakesARoleAwayEndsTheSession() async throws {
        let server = try await F.server(policy: F.policy)
        let policyFile = try #require(server.host.paths.policyFile)
        try await server.withClient(.live) { client in
            // carol is not listed in the policy: her token's admin role stands.
            let carol = try await Self.login(client, Tokens.hs256(Tokens.claims(sub: "carol", role: "admin")))
            let alice = try await Self.login(client, F.aliceKey)
            let drivers = try await client.execute(uri: "/ui/drivers", method: .get, headers: Req.headers([("Cookie", carol.cookie)]))
            #expect(drivers.status == .ok && drivers.text.contains("reload-drivers"))
            // The policy now lists carol as a user.
            let demoted = F.policy.replacingOccurrences(of: #""ci": "service""#, with: #""ci": "service", "carol": "user""#)
            #expect(demoted != F.policy)
            try demoted.write(toFile: policyFile, atomically: true, encoding: .utf8)
            #expect(server.reloadPolicy().outcome != .failed)
            let after = try await client.execute(uri: "/ui/drivers", method: .get, headers: Req.headers([("Cookie", carol.cookie)]))
            #expect(after.status == .unauthorized && after.text.contains("Your session has ended") && after.text.contains("carol"),
                    "no stale admin: the session ended")
            let (h, b) = Self.form(["csrf": carol.csrf], cookie: carol.cookie)
            #expect(try await client.execute(uri: "/ui/drivers/reload", method: .post, headers: h, body: b).status != .seeOther)
            let gone = try await client.execute(uri: "/ui/drivers", method: .get, headers: Req.headers([("Cookie", carol.cookie)]))
            #expect(gone.status == .seeOther, "the ended session is removed: log in again")
            #expect(try await client.execute(uri: "/ui", method: .get, headers: Req.headers([("Cookie", alice.cookie)])).status == .ok,
                    "an API key's session, which the reload does not change, goes on")
        }
    }

    @Test func embeddedAssetsMatchTheirFiles() async throws {
        try await F.server().withClient(.live) { client in
            for name in ["app.js", "app.css"] {
                let file = try String(contentsOfFile: F.root + "/Sources/HostServer/UI/assets/" + name, encoding: .utf8)
                let r = try await client.execute(uri: "/ui/assets/\(name)", method: .get, headers: [:])
                #expect(r.status == .ok)
                #expect(r.text.trimmingCharacters(in: .whitespacesAndNewlines) == file.trimmingCharacters(in: .whitespacesAndNewlines),
                        "run scripts/embed-ui-assets.py after editing \(name)")
            }
        }
    }
}
