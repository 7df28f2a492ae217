import Foundation
import Host
import HostServer
import HTTPTypes
import HummingbirdTesting
import JSON
import JWTKit
import Testing

/// The auth matrix (each role × representative endpoints and tools) and the JWT attacks.
@Suite struct AuthTests {
    typealias F = ServerFixtures

    /// Expected status per credential for representative requests.
    @Test func roleMatrix() async throws {
        struct Row {
            var name: String
            var method: HTTPRequest.Method
            var uri: String
            var body: JSONValue?
            /// Expected status for: admin, alice (user), ci (service), no credentials, wrong key.
            var expected: [Int]
        }
        let rows: [Row] = [
            Row(name: "health", method: .get, uri: "/health", expected: [200, 200, 200, 200, 200]),
            Row(name: "version", method: .get, uri: "/version", expected: [200, 200, 200, 200, 200]),
            Row(name: "ready", method: .get, uri: "/ready", expected: [200, 200, 200, 401, 401]),
            Row(name: "metrics", method: .get, uri: "/metrics", expected: [200, 200, 200, 401, 401]),
            Row(name: "tools", method: .get, uri: "/v1/tools", expected: [200, 200, 200, 401, 401]),
            Row(name: "drivers", method: .get, uri: "/v1/drivers", expected: [200, 200, 200, 401, 401]),
            Row(name: "runs", method: .get, uri: "/v1/runs", expected: [200, 200, 200, 401, 401]),
            Row(name: "runs of bob", method: .get, uri: "/v1/runs?principal=bob", expected: [200, 403, 403, 401, 401]),
            Row(name: "echo.echo", method: .post, uri: "/tools/echo.echo", body: [:], expected: [200, 200, 200, 401, 401]),
            Row(name: "echo.sleep", method: .post, uri: "/tools/echo.sleep", body: ["ms": 1], expected: [200, 200, 403, 401, 401]),
            Row(name: "echo.fail", method: .post, uri: "/tools/echo.fail", body: [:], expected: [422, 403, 403, 401, 401]),
            Row(name: "reload", method: .post, uri: "/v1/drivers/reload", expected: [-1, 403, 403, 401, 401]),
            Row(name: "mcp", method: .get, uri: "/mcp", expected: [405, 405, 405, 401, 401]),
        ]
        let creds: [String?] = [F.adminKey, F.aliceKey, F.ciKey, nil, "nova_not_a_key"]
        try await F.server().withClient { client in
            for row in rows {
                for (i, key) in creds.enumerated() {
                    let r: TestResponse
                    if row.method == .post {
                        r = try await client.post(row.uri, key, row.body)
                    } else {
                        r = try await client.get(row.uri, key)
                    }
                    let want = row.expected[i]
                    if want == -1 {
                        #expect(r.status.code == 200 || r.status.code == 501, "\(row.name) as \(key ?? "nobody")")
                    } else {
                        #expect(r.status.code == want, "\(row.name) as \(key ?? "nobody"): \(r.text)")
                    }
                    if want == 401 {
                        #expect(r.errorCode == (key == nil ? "unauthorized" : "invalid_api_key"))
                    }
                }
            }
        }
    }

    @Test func apiKeyHeaderAndBearerAreBothAccepted() async throws {
        try await F.server().withClient { client in
            #expect(try await client.get("/v1/tools", nil, [("X-API-Key", F.aliceKey)]).status == .ok)
            #expect(try await client.get("/v1/tools", F.aliceKey).status == .ok)
            let both = try await client.get("/v1/tools", F.aliceKey, [("X-API-Key", F.aliceKey)])
            #expect(both.status == .unauthorized)
            #expect(both.errorCode == "invalid_credentials")
            let basic = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", "Basic YTpi")]))
            #expect(basic.status == .unauthorized)
            #expect(basic.errorCode == "invalid_credentials")
        }
    }

    /// Every spelling of the bearer header the general parse accepts still authenticates (the
    /// usual `Bearer <key>` takes a shortcut), and the malformed ones are still refused, over a
    /// real socket.
    @Test func bearerHeaderSpellings() async throws {
        try await F.server().withClient(.live) { client in
            for header in ["Bearer \(F.aliceKey)", "bearer \(F.aliceKey)", "BEARER \(F.aliceKey)", "Bearer   \(F.aliceKey)",
                           "Bearer \(F.aliceKey)\t"] {
                let r = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", header)]))
                #expect(r.status == .ok, "\(header.debugDescription): \(r.status)")
            }
            let wrong = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", "Bearer \(F.aliceKey)x")]))
            #expect(wrong.errorCode == "invalid_api_key")
            let empty = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", "Bearer ")]))
            #expect(empty.status == .unauthorized)
            let scheme = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", "Bearerx \(F.aliceKey)")]))
            #expect(scheme.errorCode == "invalid_credentials")
            let tab = try await client.execute(uri: "/v1/tools", method: .get, headers: Req.headers([("Authorization", "Bearer\t\(F.aliceKey)")]))
            #expect(tab.errorCode == "invalid_credentials")
        }
    }

    /// Request ids the server makes are 24 hex digits and never repeat.
    @Test func requestIdsAreUnique() async throws {
        try await F.server().withClient(.live) { client in
            var seen = Set<String>()
            for _ in 0..<50 {
                let r = try await client.execute(uri: "/health", method: .get, headers: [:])
                let id = try #require(r.headers[HTTPField.Name("X-Request-ID")!])
                #expect(id.count == 24 && id.allSatisfy(\.isHexDigit), "\(id)")
                seen.insert(id)
            }
            #expect(seen.count == 50)
        }
    }

    /// The policy decides for the authenticated principal and role, whatever the request says.
    @Test func policyUsesTheAuthenticatedPrincipalAndRole() async throws {
        let server = try await F.server()
        try await server.withClient { client in
            // carol is not in the policy: her role comes from the token.
            let asUser = Tokens.hs256(Tokens.claims(sub: "carol", role: "user"))
            let ok = try await client.post("/tools/echo.echo", asUser, [:])
            #expect(ok.status == .ok)
            let ep = try await server.host.episodes!.show(runId: ok.json["run_id"]!.stringValue!)
            #expect(ep.document["principal"] == "carol")
            #expect(ep.document["steps"]?[0]?["attempts"]?[0]?["decision"]?["role"] == "user")
            #expect(try await client.post("/tools/echo.fail", asUser, [:]).status == .forbidden)
            // An admin token passes policy (echo.fail then fails as a tool).
            let asAdmin = Tokens.hs256(Tokens.claims(sub: "dave", role: "admin"))
            #expect(try await client.post("/tools/echo.fail", asAdmin, [:]).errorCode == "tool_error")
            // A role claim listing several roles: the first one the policy knows.
            let list = Tokens.hs256(Tokens.claims(sub: "erin", role: ["viewer", "service"]))
            #expect(try await client.post("/tools/echo.echo", list, [:]).status == .ok)
            #expect(try await client.post("/tools/echo.sleep", list, ["ms": 1]).status == .forbidden)
            // No role claim: the policy's role for a listed principal.
            let listed = Tokens.hs256(Tokens.claims(sub: "alice", role: nil))
            #expect(try await client.post("/tools/echo.sleep", listed, ["ms": 1]).status == .ok)
            // No role claim and an unknown principal: forbidden.
            let nobody = Tokens.hs256(Tokens.claims(sub: "zed", role: nil))
            #expect(try await client.post("/tools/echo.echo", nobody, [:]).status == .forbidden)
            // A role the policy does not have: forbidden.
            let unknownRole = Tokens.hs256(Tokens.claims(sub: "zed", role: "root"))
            #expect(try await client.post("/tools/echo.echo", unknownRole, [:]).status == .forbidden)
            // A token contradicting the policy's role for a listed principal: forbidden.
            let conflict = Tokens.hs256(Tokens.claims(sub: "alice", role: "admin"))
            let c = try await client.post("/tools/echo.fail", conflict, [:])
            #expect(c.status == .forbidden)
            #expect(c.json["error"]?["message"]?.stringValue?.contains("policy gives it role 'user'") == true)
        }
    }

    @Test func validTokensOfEveryAlgorithm() async throws {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: TestKeys.hsSecret), digestAlgorithm: .sha256, kid: "hs-1")
        await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivate), digestAlgorithm: .sha256, kid: "rs-1")
        await keys.add(eddsa: try EdDSA.PrivateKey(pem: TestKeys.edPrivate), kid: "ed-1")
        let payload = TestPayload(sub: "carol", role: "user", iss: F.issuer, aud: F.audience, exp: Date().timeIntervalSince1970 + 300)
        try await F.server().withClient { client in
            for kid in ["hs-1", "rs-1", "ed-1"] {
                let token = try await keys.sign(payload, kid: JWKIdentifier(string: kid))
                let r = try await client.get("/v1/runs", token)
                #expect(r.status == .ok, "\(kid): \(r.text)")
            }
        }
    }

    @Test func jwtAttacksAreRejected() async throws {
        let now = Date().timeIntervalSince1970
        let good = Tokens.claims()
        let rsaOther = JWTKeyCollection()
        await rsaOther.add(rsa: try Insecure.RSA.PrivateKey(pem: TestKeys.otherRSAPrivate), digestAlgorithm: .sha256, kid: "rs-1")
        let forged = try await rsaOther.sign(TestPayload(sub: "carol", role: "admin", iss: F.issuer, aud: F.audience, exp: now + 300),
                                             kid: "rs-1")
        let valid = Tokens.hs256(good)
        let parts = valid.split(separator: ".").map(String.init)
        let attacks: [(String, String)] = [
            ("alg none, empty signature", Tokens.unsigned(good)),
            ("alg none with kid", Tokens.unsigned(good, header: ["alg": "none", "kid": "hs-1"])),
            ("alg NONE", Tokens.unsigned(good, header: ["alg": "NONE", "kid": "hs-1"], signature: "AAAA")),
            ("empty signature, HS256", Tokens.unsigned(good, header: ["alg": "HS256", "kid": "hs-1"])),
            // Algorithm confusion: HS256 "signed" with the RSA public key as the HMAC secret.
            ("alg confusion (kid)", Tokens.hs256(good, header: ["alg": "HS256", "kid": "rs-1"], secret: Array(TestKeys.rsaPublic.utf8))),
            ("alg confusion (no kid)", Tokens.hs256(good, header: ["alg": "RS256"], secret: Array(TestKeys.rsaPublic.utf8))),
            ("expired", Tokens.hs256(Tokens.claims(exp: now - 120))),
            ("no exp", Tokens.hs256(Tokens.claims(exp: nil))),
            ("not yet valid", Tokens.hs256(Tokens.claims(extra: ["nbf": .double(now + 600)]))),
            ("issued in the future", Tokens.hs256(Tokens.claims(extra: ["iat": .double(now + 600)]))),
            ("wrong audience", Tokens.hs256(Tokens.claims(extra: ["aud": "someone-else"]))),
            ("wrong audience list", Tokens.hs256(Tokens.claims(extra: ["aud": ["a", "b"]]))),
            ("wrong issuer", Tokens.hs256(Tokens.claims(extra: ["iss": "https://evil.test/"]))),
            ("bad signature (wrong secret)", Tokens.hs256(good, secret: Array("another-secret-0123456789abcdef-xyz".utf8))),
            ("tampered payload", parts[0] + "." + Tokens.b64url(Tokens.claims(role: "admin").serializedBytes()) + "." + parts[2]),
            ("RS256 signed by another key", forged),
            ("unknown kid", Tokens.hs256(good, header: ["alg": "HS256", "kid": "nope"])),
            ("crit header", Tokens.hs256(good, header: ["alg": "HS256", "kid": "hs-1", "crit": ["exp"]])),
            ("odd typ", Tokens.hs256(good, header: ["alg": "HS256", "kid": "hs-1", "typ": "dpop+jwt"])),
            ("two parts", parts[0] + "." + parts[1]),
            ("garbage", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"),
        ]
        try await F.server().withClient { client in
            #expect(try await client.get("/v1/runs", valid).status == .ok)
            for (name, token) in attacks {
                let r = try await client.get("/v1/runs", token)
                #expect(r.status == .unauthorized, "\(name): \(r.status) \(r.text)")
                #expect(["invalid_token", "invalid_api_key"].contains(r.errorCode ?? ""), "\(name)")
                #expect(r.headers[.wwwAuthenticate]?.contains("invalid_token") == true, "\(name)")
            }
        }
    }

    @Test func noJWTSectionRefusesTokens() async throws {
        try await F.server(config: { $0.jwt = nil }).withClient { client in
            let r = try await client.get("/v1/runs", Tokens.hs256(Tokens.claims()))
            #expect(r.status == .unauthorized)
            #expect(r.errorCode == "invalid_token")
        }
    }

    @Test func apiKeyRoleMustAgreeWithThePolicy() async throws {
        await #expect(throws: HostConfigError.self) {
            _ = try await F.server(config: { $0.apiKeys.append(.init(id: "x", sha256: String(repeating: "a", count: 64), principal: "alice", role: "admin")) })
        }
        await #expect(throws: HostConfigError.self) {
            _ = try await F.server(config: { $0.apiKeys.append(.init(id: "y", sha256: String(repeating: "b", count: 64), principal: "zed", role: "root")) })
        }
        await #expect(throws: HostConfigError.self) {
            _ = try await F.server(config: { $0.jwt?.keys.append(.init(kid: "bad", algorithm: .rs256, publicKeyPEM: "not a pem")) })
        }
    }
}

/// A payload for signing test tokens with jwt-kit.
struct TestPayload: JWTPayload {
    var sub: String
    var role: String
    var iss: String
    var aud: String
    var exp: Double
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
