import Foundation
import Host
import HostServer
import HTTPTypes
import HummingbirdTesting
import JSON
import NIOCore
import Testing

/// Every route and its error paths, in process.
@Suite struct RouteTests {
    typealias F = ServerFixtures

    // MARK: System

    @Test func healthIsPublicWithSecurityHeadersAndRequestId() async throws {
        try await F.server().withClient { client in
            let r = try await client.get("/health", nil)
            #expect(r.status == .ok)
            #expect(r.json == ["status": "ok"])
            #expect(r.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
            #expect(r.headers[.xContentTypeOptions] == "nosniff")
            #expect(r.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            let generated = r.headers[HTTPField.Name("X-Request-ID")!] ?? ""
            #expect(generated.count == 24)
            // A sane client id is echoed; a weird one is replaced.
            let echoed = try await client.get("/health", nil, [("X-Request-ID", "trace-123:abc")])
            #expect(echoed.headers[HTTPField.Name("X-Request-ID")!] == "trace-123:abc")
            let replaced = try await client.get("/health", nil, [("X-Request-ID", "bad id with spaces")])
            #expect(replaced.headers[HTTPField.Name("X-Request-ID")!] != "bad id with spaces")
        }
    }

    @Test func versionIsPublic() async throws {
        try await F.server().withClient { client in
            let r = try await client.get("/version", nil)
            #expect(r.status == .ok)
            #expect(r.json["name"] == "nova-host")
            #expect(r.json["abi"]?.stringValue == ABIVersion.host.description)
            #expect(r.json["mcp_protocol_versions"]?.arrayValue?.isEmpty == false)
        }
    }

    @Test func readyNeedsCredentialsAndChecksStoreAndDrivers() async throws {
        try await F.server().withClient { client in
            let anon = try await client.get("/ready", nil)
            #expect(anon.status == .unauthorized)
            #expect(anon.errorCode == "unauthorized")
            #expect(anon.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            let r = try await client.get("/ready", F.aliceKey)
            #expect(r.status == .ok)
            #expect(r.json["checks"] == ["store": "ok", "drivers": "ok", "runs": "ok"])
        }
        try await F.server(driversDir: "/nonexistent/drivers").withClient { client in
            let r = try await client.get("/ready", F.aliceKey)
            #expect(r.status == .serviceUnavailable)
            #expect(r.errorCode == "not_ready")
            #expect(r.json["error"]?["checks"]?["drivers"]?.stringValue?.contains("missing") == true)
        }
        // ready.public: an anonymous probe gets the status, never the checks (they name paths).
        try await F.server(config: { $0.readyPublic = true }).withClient { client in
            let anon = try await client.get("/ready", nil)
            #expect(anon.status == .ok && anon.json == ["status": "ready"], "\(anon.json)")
            #expect(try await client.get("/ready", F.aliceKey).json["checks"] == ["store": "ok", "drivers": "ok", "runs": "ok"])
        }
        try await F.server(config: { $0.readyPublic = true }, driversDir: "/nonexistent/drivers").withClient { client in
            let anon = try await client.get("/ready", nil)
            #expect(anon.status == .serviceUnavailable && anon.errorCode == "not_ready")
            #expect(anon.json["error"]?["checks"] == nil && anon.json["error"]?["message"] == "not ready", "\(anon.json)")
        }
    }

    @Test func metricsArePrivateUnlessConfiguredPublic() async throws {
        try await F.server().withClient { client in
            #expect(try await client.get("/metrics", nil).status == .unauthorized)
            _ = try await client.post("/tools/echo.echo", F.aliceKey, ["x": 1])
            let r = try await client.get("/metrics", F.aliceKey)
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(r.text.contains("nova_http_requests_total"))
            #expect(r.text.contains(#"nova_tool_calls_total{driver="echo",tool="echo",outcome="ok"} 1"#))
        }
        try await F.server(config: { $0.metricsPublic = true }).withClient { client in
            let r = try await client.get("/metrics", nil)
            #expect(r.status == .ok)
        }
    }

    @Test func unknownRouteIs404AndWrongMethodIs405() async throws {
        try await F.server().withClient { client in
            let r = try await client.get("/nope", F.aliceKey)
            #expect(r.status == .notFound)
            #expect(r.errorCode == "not_found")
            #expect(r.json["error"]?["request_id"]?.stringValue == r.headers[HTTPField.Name("X-Request-ID")!])
            let m = try await client.execute(uri: "/health", method: .delete)
            #expect(m.status == .methodNotAllowed)
            #expect(m.headers[.allow] == "GET")
            let p = try await client.execute(uri: "/v1/runs/abc", method: .put)
            #expect(p.status == .methodNotAllowed)
        }
    }

    /// Over a real socket: a body without `Content-Type` is 415; `GET /v1/drivers/reload` is
    /// 405 with `Allow: POST` (the literal segment shadows `GET /v1/drivers/{name}`); the
    /// episode-write failure counter is exported as 0 before any failure.
    @Test func contentTypeAllowAndZeroCountersOverTCP() async throws {
        try await F.server().withClient(.live) { client in
            let port = try #require(client.port)
            let noType = try await RawHTTP.exchange(port: port, ["POST /tools/echo.echo HTTP/1.1", "Host: 127.0.0.1",
                                                           "Authorization: Bearer \(F.aliceKey)"], body: #"{"text":"hi"}"#)
            #expect(noType.status == 415, "\(noType.text)")
            #expect(noType.text.contains("unsupported_media_type"))
            let reload = try await RawHTTP.exchange(port: port, ["GET /v1/drivers/reload HTTP/1.1", "Host: 127.0.0.1",
                                                           "Authorization: Bearer \(F.adminKey)"])
            #expect(reload.status == 405, "\(reload.text)")
            let allow = reload.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("allow:") }
            #expect(allow.map { $0.dropFirst(6).trimmingCharacters(in: .whitespaces) } == "POST", "\(reload.text)")
            #expect(reload.text.contains("(allowed: POST)"))
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains("nova_episode_write_failures_total 0"), "\(metrics)")
        }
    }

    // MARK: Tools

    @Test func listToolsShowsWhatTheRoleMayUse() async throws {
        try await F.server().withClient { client in
            #expect(try await client.get("/v1/tools", nil).status == .unauthorized)
            func allowed(_ key: String) async throws -> [String: Bool] {
                let r = try await client.get("/v1/tools", key)
                #expect(r.status == .ok)
                var out: [String: Bool] = [:]
                for t in r.json["tools"]?.arrayValue ?? [] { out[t["id"]!.stringValue!] = t["allowed"]?.boolValue }
                return out
            }
            let admin = try await allowed(F.adminKey), alice = try await allowed(F.aliceKey), ci = try await allowed(F.ciKey)
            #expect(admin["echo.echo"] == true && admin["echo.fail"] == true && admin["echo.sleep"] == true)
            #expect(admin.values.allSatisfy { $0 })
            #expect(alice["echo.echo"] == true && alice["echo.fail"] == false && alice["echo.sleep"] == true)
            #expect(ci["echo.echo"] == true && ci["echo.fail"] == false && ci["echo.sleep"] == false)
            let r = try await client.get("/v1/tools", F.aliceKey)
            let sleep = r.json["tools"]?.arrayValue?.first { $0["id"] == "echo.sleep" }
            #expect(sleep?["input_schema"]?["type"] == "object")
            #expect(sleep?["output_schema"]?["type"] == "object")
            #expect(sleep?["annotations"]?["readOnlyHint"] == true)
        }
    }

    @Test func callToolSucceedsAndWritesAnEpisode() async throws {
        let server = try await F.server()
        try await server.withClient { client in
            let r = try await client.post("/tools/echo.echo", F.aliceKey, ["message": "hi", "n": 3, "template": "${inputs.secret}"])
            #expect(r.status == .ok)
            // The input is passed literally: strings are never read as templates.
            #expect(r.json["output"] == ["message": "hi", "n": 3, "template": "${inputs.secret}"])
            // Also deep inside arrays and objects, next to strings with a lone "$" or "{".
            let nested: JSONValue = ["list": ["$", "{", "a$b{c", ["deep": "x${inputs.secret}y"]], "plain": "$$"]
            #expect(try await client.post("/tools/echo.echo", F.aliceKey, nested).json["output"] == nested)
            #expect(r.json["status"] == "succeeded")
            let runId = try #require(r.json["run_id"]?.stringValue)
            #expect(r.headers[HTTPField.Name("X-Run-ID")!] == runId)
            #expect(r.json["episode"]?["seq"] == 1)
            let episode = try await server.host.episodes!.show(runId: runId)
            #expect(episode.problem == nil)
            #expect(episode.document["principal"] == "alice")
            #expect(episode.document["steps"]?[0]?["attempts"]?[0]?["decision"]?["rule"] == "users-echo")
            // An empty body is {}.
            let empty = try await client.execute(uri: "/tools/echo.echo", method: .post, headers: Req.bearer(F.aliceKey))
            #expect(empty.status == .ok)
            #expect(empty.json["output"] == [:])
        }
    }

    @Test func callToolErrors() async throws {
        try await F.server().withClient { client in
            #expect(try await client.post("/tools/echo.echo", nil, [:]).status == .unauthorized)
            let denied = try await client.post("/tools/echo.fail", F.aliceKey, [:])
            #expect(denied.status == .forbidden)
            #expect(denied.errorCode == "denied")
            #expect(denied.json["error"]?["message"] == "echo.fail is for admins")
            #expect(denied.json["error"]?["rule"] == "no-fail-for-users")
            #expect(denied.json["error"]?["run_id"]?.stringValue != nil)
            let defaultDeny = try await client.post("/tools/echo.sleep", F.ciKey, ["ms": 1])
            #expect(defaultDeny.status == .forbidden)
            #expect(defaultDeny.json["error"]?["rule"] == "default-deny")
            let unknownTool = try await client.post("/tools/echo.nope", F.aliceKey, [:])
            #expect(unknownTool.status == .notFound)
            #expect(unknownTool.errorCode == "unknown_tool")
            #expect(try await client.post("/tools/nodriver.x", F.aliceKey, [:]).errorCode == "unknown_tool")
            #expect(try await client.post("/tools/notanid", F.aliceKey, [:]).status == .notFound)
            let badInput = try await client.post("/tools/echo.sleep", F.aliceKey, ["ms": "soon"])
            #expect(badInput.status == .unprocessableContent)
            #expect(badInput.errorCode == "invalid_input")
            let toolError = try await client.post("/tools/echo.fail", F.adminKey, [:])
            #expect(toolError.status == .unprocessableContent)
            #expect(toolError.errorCode == "tool_error")
            let deadline = try await client.post("/tools/echo.sleep", F.adminKey, ["ms": 5000])
            #expect(deadline.status == .gatewayTimeout)
            #expect(deadline.errorCode == "deadline")
            let notJSON = try await client.execute(uri: "/tools/echo.echo", method: .post, headers: Req.jsonHeaders(F.aliceKey),
                                                   body: ByteBuffer(string: "{not json"))
            #expect(notJSON.status == .badRequest)
            #expect(notJSON.errorCode == "invalid_json")
            let wrongType = try await client.execute(uri: "/tools/echo.echo", method: .post,
                                                     headers: Req.bearer(F.aliceKey, [("Content-Type", "text/plain")]),
                                                     body: ByteBuffer(string: "{}"))
            #expect(wrongType.status == .unsupportedMediaType)
            let big = try await client.post("/tools/echo.echo", F.aliceKey, ["x": .string(String(repeating: "a", count: 70_000))])
            #expect(big.status == .contentTooLarge)
            #expect(big.errorCode == "payload_too_large")
        }
    }

    // MARK: Runs

    static let plan: JSONValue = [
        "name": "greet",
        "inputs": ["who": ["type": "string"]],
        "steps": [["id": "hello", "call": "echo.echo", "input": ["greeting": "hello ${inputs.who}"]]],
    ]

    @Test func createRunPollAndReadItsEpisode() async throws {
        try await F.server().withClient { client in
            let r = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": "nova"]])
            #expect(r.status == .accepted)
            let id = try #require(r.json["run_id"]?.stringValue)
            #expect(r.headers[.location] == "/v1/runs/\(id)")
            #expect(r.json["status"] == "queued", "answered once the job is committed, before any worker took it")
            #expect(r.json["job"]?["state"] == "available")
            let done = try await client.waitForRun(id, F.aliceKey)
            #expect(done["status"] == "succeeded")
            #expect(done["output"] == ["greeting": "hello nova"])
            #expect(done["steps"]?[0]?["status"] == "succeeded")
            let e = try await client.get("/v1/episodes/\(id)", F.aliceKey)
            #expect(e.status == .ok)
            #expect(e.json["intact"] == true)
            #expect(e.json["document"]?["principal"] == "alice")
            #expect(try await client.get("/v1/episodes/\(id)", F.bobKey).status == .notFound)
            #expect(try await client.get("/v1/episodes/\(id)", F.adminKey).status == .ok)
            #expect(try await client.get("/v1/episodes/r-none", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/episodes/..%2Fetc", F.aliceKey).status == .notFound)
        }
    }

    @Test func createRunErrors() async throws {
        try await F.server().withClient { client in
            #expect(try await client.post("/v1/runs", nil, ["plan": Self.plan]).status == .unauthorized)
            let noPlan = try await client.post("/v1/runs", F.aliceKey, [:])
            #expect(noPlan.status == .unprocessableContent)
            #expect(noPlan.errorCode == "invalid_plan")
            let badPlan = try await client.post("/v1/runs", F.aliceKey, ["plan": ["steps": "no"]])
            #expect(badPlan.errorCode == "invalid_plan")
            #expect(badPlan.json["error"]?["details"]?.arrayValue?.isEmpty == false)
            let unknownTool = try await client.post("/v1/runs", F.aliceKey, ["plan": ["steps": [["id": "a", "call": "echo.nope"]]]])
            #expect(unknownTool.status == .unprocessableContent)
            #expect(unknownTool.json["error"]?["details"]?[0]?["step"] == "a")
            let missingInput = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan])
            #expect(missingInput.errorCode == "invalid_inputs")
            let extra = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": "x"], "evil": true])
            #expect(extra.status == .badRequest)
            let parallel = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": "x"], "parallelism": 0])
            #expect(parallel.status == .unprocessableContent)
            #expect(try await client.post("/v1/runs", F.aliceKey, .array([])).status == .badRequest)
        }
    }

    @Test func deniedRunEndsDenied() async throws {
        try await F.server().withClient { client in
            let r = try await client.post("/v1/runs", F.aliceKey, ["plan": ["steps": [["id": "f", "call": "echo.fail"]]]])
            #expect(r.status == .accepted)
            let done = try await client.waitForRun(r.json["run_id"]!.stringValue!, F.aliceKey)
            #expect(done["status"] == "denied")
            #expect(done["error"]?.stringValue?.contains("echo.fail is for admins") == true)
        }
    }

    @Test func idempotencyKeyReplaysAndConflicts() async throws {
        try await F.server().withClient { client in
            let body: JSONValue = ["plan": Self.plan, "inputs": ["who": "once"]]
            let first = try await client.post("/v1/runs", F.aliceKey, body, [("Idempotency-Key", "k-1")])
            #expect(first.status == .accepted)
            let again = try await client.post("/v1/runs", F.aliceKey, body, [("Idempotency-Key", "k-1")])
            #expect(again.status == .accepted)
            #expect(again.json["run_id"] == first.json["run_id"])
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let conflict = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": "twice"]], [("Idempotency-Key", "k-1")])
            #expect(conflict.status == .conflict)
            #expect(conflict.errorCode == "idempotency_conflict")
            // Keys are per principal: bob's k-1 is another run.
            let bob = try await client.post("/v1/runs", F.bobKey, body, [("Idempotency-Key", "k-1")])
            #expect(bob.json["run_id"] != first.json["run_id"])
            #expect(try await client.post("/v1/runs", F.aliceKey, body, [("Idempotency-Key", "bad key")]).status == .badRequest)
        }
    }

    @Test func listRunsPaginatesFiltersAndScopesToThePrincipal() async throws {
        try await F.server().withClient { client in
            var ids: [String] = []
            for i in 0..<5 {
                let r = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": .string("n\(i)")]])
                ids.append(r.json["run_id"]!.stringValue!)
            }
            for id in ids { _ = try await client.waitForRun(id, F.aliceKey) }
            _ = try await client.post("/tools/echo.echo", F.bobKey, [:])
            let page1 = try await client.get("/v1/runs?limit=2", F.aliceKey)
            #expect(page1.status == .ok)
            #expect(page1.json["runs"]?.arrayValue?.count == 2)
            #expect(page1.json["total"] == 5)
            #expect(page1.json["next_offset"] == 2)
            #expect(page1.json["runs"]?[0]?["run_id"]?.stringValue == ids[4])
            let page3 = try await client.get("/v1/runs?limit=2&offset=4", F.aliceKey)
            #expect(page3.json["runs"]?.arrayValue?.count == 1)
            #expect(page3.json["next_offset"] == .null)
            #expect(try await client.get("/v1/runs?status=failed", F.aliceKey).json["total"] == 0)
            #expect(try await client.get("/v1/runs?status=succeeded", F.aliceKey).json["total"] == 5)
            // Non-admins see only their own; asking for someone else's is refused.
            #expect(try await client.get("/v1/runs?principal=bob", F.aliceKey).status == .forbidden)
            #expect(try await client.get("/v1/runs", F.bobKey).json["total"] == 1)
            #expect(try await client.get("/v1/runs", F.adminKey).json["total"] == 6)
            #expect(try await client.get("/v1/runs?principal=bob", F.adminKey).json["total"] == 1)
            for bad in ["limit=0", "limit=x", "offset=-1", "status=weird", "principal="] {
                let r = try await client.get("/v1/runs?\(bad)", F.adminKey)
                #expect(r.status == .badRequest, "\(bad)")
                #expect(r.errorCode == "invalid_parameter")
            }
        }
    }

    @Test func getRunIsScopedAndUnknownIs404() async throws {
        try await F.server().withClient { client in
            let r = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.plan, "inputs": ["who": "x"]])
            let id = r.json["run_id"]!.stringValue!
            _ = try await client.waitForRun(id, F.aliceKey)
            #expect(try await client.get("/v1/runs/\(id)", F.bobKey).status == .notFound)
            #expect(try await client.get("/v1/runs/\(id)", F.adminKey).status == .ok)
            #expect(try await client.get("/v1/runs/r000", F.aliceKey).errorCode == "not_found")
            #expect(try await client.get("/v1/runs/\(id)", nil).status == .unauthorized)
        }
    }

    @Test func cancelStopsARunInFlight() async throws {
        try await F.server().withClient { client in
            let plan: JSONValue = ["steps": [["id": "nap", "call": "echo.sleep", "input": ["ms": 30_000]]]]  // still sleeping when the cancel comes, however loaded the machine
            let r = try await client.post("/v1/runs", F.aliceKey, ["plan": plan])
            let id = r.json["run_id"]!.stringValue!
            // Running: a worker has taken its job (a queued one would be cancelled outright).
            for _ in 0..<12_000 {
                if try await client.get("/v1/runs/\(id)", F.aliceKey).json["status"] == "running" { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(try await client.post("/v1/runs/\(id)/cancel", F.bobKey).status == .notFound)
            let c = try await client.post("/v1/runs/\(id)/cancel", F.aliceKey)
            #expect(c.status == .accepted)
            #expect(c.json == ["run_id": .string(id), "status": "cancelling"])
            let done = try await client.waitForRun(id, F.aliceKey)
            #expect(done["status"] == "cancelled")
            #expect(done["cancel_requested"] == true)
            let again = try await client.post("/v1/runs/\(id)/cancel", F.aliceKey)
            #expect(again.status == .conflict)
            #expect(again.errorCode == "already_finished")
            #expect(try await client.post("/v1/runs/r-unknown/cancel", F.aliceKey).status == .notFound)
        }
    }

    // MARK: Drivers

    @Test func driversListShowAndReload() async throws {
        try await F.server().withClient { client in
            let list = try await client.get("/v1/drivers", F.aliceKey)
            #expect(list.status == .ok)
            // The drivers directory's echo, beside the host's built-in drivers (agents, memory, state).
            let listed = list.json["drivers"]?.arrayValue ?? []
            let echoEntry = listed.first { $0["name"] == "echo" }
            #expect(echoEntry != nil && echoEntry?["path"] == nil, "\(listed)")
            let names = Set(listed.compactMap { $0["name"]?.stringValue })
            #expect(names.isSuperset(of: ["echo", "agents", "memory", "state"]), "\(names)")
            #expect(list.json["drivers_directory"] == nil)
            #expect(try await client.get("/v1/drivers", F.adminKey).json["drivers_directory"]?.stringValue != nil)
            let echo = try await client.get("/v1/drivers/echo", F.aliceKey)
            #expect(echo.status == .ok)
            #expect(echo.json["state"] == "loaded")
            #expect(echo.json["tools"]?.arrayValue?.contains { $0["id"] == "echo.sleep" } == true)
            #expect(echo.json["tools"]?[0]?["input_schema"] != nil)
            #expect(try await client.get("/v1/drivers/nope", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/drivers/NOPE..", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/drivers", nil).status == .unauthorized)
            let reload = try await client.post("/v1/drivers/reload", F.aliceKey)
            #expect(reload.status == .forbidden)
            let admin = try await client.post("/v1/drivers/reload", F.adminKey)
            #expect(admin.status == .ok || admin.status == .notImplemented)
        }
    }

    // MARK: CORS

    @Test func corsPreflightAndHeaders() async throws {
        try await F.server().withClient { client in
            let pre = try await client.execute(uri: "/v1/tools", method: .options,
                                               headers: Req.headers([("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "GET")]))
            #expect(pre.status == .noContent)
            #expect(pre.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(pre.headers[.accessControlAllowHeaders]?.contains("Authorization") == true)
            let evil = try await client.execute(uri: "/v1/tools", method: .options,
                                                headers: Req.headers([("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")]))
            #expect(evil.status == .forbidden)
            #expect(evil.headers[.accessControlAllowOrigin] == nil)
            let simple = try await client.get("/v1/tools", F.aliceKey, [("Origin", "https://app.example.com")])
            #expect(simple.headers[.accessControlAllowOrigin] == "https://app.example.com")
            #expect(simple.headers[.vary]?.contains("Origin") == true)
            let other = try await client.get("/v1/tools", F.aliceKey, [("Origin", "https://evil.example")])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
        }
    }
}
