import Foundation
import Host
import HostServer
import HTTPTypes
import HummingbirdTesting
import JSON
import Testing

/// The MCP gateway over streamable HTTP on a real loopback socket (`.live`: the DNS-rebinding
/// check must see `Host` as it arrives over TCP), speaking JSON-RPC by hand (the real Python SDK
/// client runs against `nova-host serve` in Tests/server/run-e2e.sh).
@Suite struct MCPTests {
    typealias F = ServerFixtures

    static let accept = ("Accept", "application/json, text/event-stream")

    static func initialize(_ client: any TestClientProtocol, _ key: String, origin: String? = nil) async throws -> TestResponse {
        var more = [accept, ("Host", "127.0.0.1:8787")]
        if let origin { more.append(("Origin", origin)) }
        return try await client.post("/mcp", key, [
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "test", "version": "1"]],
        ], more)
    }

    static func rpc(_ client: any TestClientProtocol, _ key: String, session: String, id: Int, method: String,
                    params: JSONValue = [:]) async throws -> TestResponse {
        try await client.post("/mcp", key, ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params],
                              [accept, ("Mcp-Session-Id", session), ("MCP-Protocol-Version", "2025-06-18"), ("Host", "127.0.0.1:8787")])
    }

    @Test func sessionListCallDenyAndClose() async throws {
        let server = try await F.server()
        try await server.withClient(.live) { client in
            let ini = try await Self.initialize(client, F.aliceKey)
            #expect(ini.status == .ok, "\(ini.text)")
            let session = try #require(ini.headers[HTTPField.Name("Mcp-Session-Id")!])
            #expect(ini.json["result"]?["serverInfo"]?["name"] == "nova-host")
            #expect(ini.json["result"]?["capabilities"]?["tools"] != nil)
            let note = try await client.post("/mcp", F.aliceKey, ["jsonrpc": "2.0", "method": "notifications/initialized"],
                                             [Self.accept, ("Mcp-Session-Id", session), ("Host", "127.0.0.1:8787")])
            #expect(note.status == .accepted)

            let list = try await Self.rpc(client, F.aliceKey, session: session, id: 2, method: "tools/list")
            #expect(list.status == .ok)
            let tools = list.json["result"]?["tools"]?.arrayValue ?? []
            // Exactly the tools alice's role may use (as GET /v1/tools says), so never echo.fail.
            let rest = try await client.get("/v1/tools", F.aliceKey).json["tools"]?.arrayValue ?? []
            let allowed = Set(rest.filter { $0["allowed"] == true }.compactMap { $0["id"]?.stringValue })
            #expect(Set(tools.compactMap { $0["name"]?.stringValue }) == allowed)
            #expect(allowed.contains("echo.echo") && allowed.contains("echo.sleep") && !allowed.contains("echo.fail"))
            let sleep = tools.first { $0["name"] == "echo.sleep" }
            #expect(sleep?["inputSchema"]?["properties"]?["ms"] != nil)
            #expect(sleep?["outputSchema"]?["type"] == "object")
            #expect(sleep?["annotations"]?["readOnlyHint"] == true)

            let call = try await Self.rpc(client, F.aliceKey, session: session, id: 3, method: "tools/call",
                                          params: ["name": "echo.echo", "arguments": ["text": "hi"]])
            #expect(call.json["result"]?["isError"] == false)
            #expect(call.json["result"]?["structuredContent"] == ["text": "hi"])
            #expect(call.json["result"]?["content"]?[0]?["type"] == "text")

            let denied = try await Self.rpc(client, F.aliceKey, session: session, id: 4, method: "tools/call",
                                            params: ["name": "echo.fail", "arguments": [:]])
            #expect(denied.json["result"]?["isError"] == true)
            #expect(denied.json["result"]?["content"]?[0]?["text"]?.stringValue?.contains("echo.fail is for admins") == true)

            let unknown = try await Self.rpc(client, F.aliceKey, session: session, id: 5, method: "tools/call",
                                             params: ["name": "echo.nope", "arguments": [:]])
            #expect(unknown.json["error"]?["code"] == -32602)

            // Calls through MCP are runs with episodes, in the caller's name.
            let runs = try await client.get("/v1/runs", F.aliceKey)
            #expect(runs.json["total"] == 2)

            // Another principal cannot use the session.
            let hijack = try await Self.rpc(client, F.bobKey, session: session, id: 6, method: "tools/list")
            #expect(hijack.status == .notFound)
            #expect(try await Self.rpc(client, F.aliceKey, session: "nope", id: 7, method: "tools/list").status == .notFound)

            let close = try await client.execute(uri: "/mcp", method: .delete,
                                                 headers: Req.bearer(F.aliceKey, [("Mcp-Session-Id", session), ("Host", "127.0.0.1:8787")]))
            #expect(close.status == .ok)
            #expect(try await Self.rpc(client, F.aliceKey, session: session, id: 8, method: "tools/list").status == .notFound)
        }
    }

    @Test func adminSeesEveryToolAndStructuredOutput() async throws {
        try await F.server().withClient(.live) { client in
            let ini = try await Self.initialize(client, F.adminKey)
            let session = try #require(ini.headers[HTTPField.Name("Mcp-Session-Id")!])
            let list = try await Self.rpc(client, F.adminKey, session: session, id: 2, method: "tools/list")
            let all = try await client.get("/v1/tools", F.adminKey).json["tools"]?.arrayValue?.count
            #expect(list.json["result"]?["tools"]?.arrayValue?.count == all)
            let sleep = try await Self.rpc(client, F.adminKey, session: session, id: 3, method: "tools/call",
                                           params: ["name": "echo.sleep", "arguments": ["ms": 1]])
            #expect(sleep.json["result"]?["structuredContent"] == ["slept_ms": 1])
            let fail = try await Self.rpc(client, F.adminKey, session: session, id: 4, method: "tools/call",
                                          params: ["name": "echo.fail", "arguments": [:]])
            #expect(fail.json["result"]?["isError"] == true)
            #expect(fail.json["result"]?["content"]?[0]?["text"]?.stringValue?.hasPrefix("tool_error") == true)
        }
    }

    /// DNS-rebinding protection as it happens over TCP: the one `Host` header a browser sends
    /// (which HTTP/1 parsing turns into the request's authority) must be checked (421), on
    /// `initialize` and on a request of an open session.
    @Test func hostHeaderCheckedOverTCP() async throws {
        try await F.server().withClient(.live) { client in
            let port = try #require(client.port)
            let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
            func post(host: String, session: String? = nil, body: String = initialize) async throws -> (status: Int, text: String) {
                var head = ["POST /mcp HTTP/1.1", "Host: \(host)", "Authorization: Bearer \(F.aliceKey)",
                            "Content-Type: application/json", "Accept: application/json, text/event-stream"]
                if let session { head += ["Mcp-Session-Id: \(session)", "MCP-Protocol-Version: 2025-06-18"] }
                return try await RawHTTP.exchange(port: port, head, body: body)
            }
            let evil = try await post(host: "evil.example")
            #expect(evil.status == 421, "\(evil.text)")
            let good = try await post(host: "127.0.0.1:\(port)")
            #expect(good.status == 200, "\(good.text)")
            let session = try #require(good.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("mcp-session-id:") }
                .map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) })
            let list = #"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#
            #expect(try await post(host: "evil.example:\(port)", session: session, body: list).status == 421)
            #expect(try await post(host: "localhost:\(port)", session: session, body: list).status == 200)
        }
    }

    /// A session's `tools/call` is accepted or refused by its headers exactly as the validation
    /// pipeline decides, whether the quick check recognises the request or defers to the
    /// pipeline (each variant below differs from the usual request in one field), over TCP.
    @Test func sessionRequestHeadersDecideAsThePipelineDoes() async throws {
        try await F.server().withClient(.live) { client in
            let port = try #require(client.port)
            let initialize = #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#
            let usual: [(String, String)] = [("Host", "127.0.0.1:\(port)"), ("Authorization", "Bearer \(F.aliceKey)"),
                                             ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")]
            func post(_ fields: [(String, String)], body: String) async throws -> (status: Int, text: String) {
                try await RawHTTP.exchange(port: port, ["POST /mcp HTTP/1.1"] + fields.map { "\($0.0): \($0.1)" }, body: body)
            }
            let opened = try await post(usual, body: initialize)
            let session = try #require(opened.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("mcp-session-id:") }
                .map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) })
            let base = usual + [("Mcp-Session-Id", session), ("MCP-Protocol-Version", "2025-06-18")]
            func with(_ name: String, _ value: String?) -> [(String, String)] {
                base.filter { $0.0 != name } + (value.map { [(name, $0)] } ?? [])
            }
            let cases: [(fields: [(String, String)], status: Int)] = [
                (base, 200),
                (with("Accept", "application/json"), 200),
                (with("Accept", "text/event-stream,  application/json;q=0.9"), 200),
                (with("Accept", "text/html"), 406),
                (with("Accept", "text/html, text/event-stream"), 406),
                (with("Accept", nil), 406),
                (with("Content-Type", "application/json; charset=utf-8"), 200),
                (with("Content-Type", "text/plain"), 415),
                (with("MCP-Protocol-Version", nil), 200),
                (with("MCP-Protocol-Version", "1999-01-01"), 400),
                (with("Host", "LOCALHOST:\(port)"), 200),
                (with("Host", "evil.example:\(port)"), 421),
                (base + [("Origin", "http://localhost:5173")], 200),
                (base + [("Origin", "https://evil.example")], 403),
            ]
            for (i, c) in cases.enumerated() {
                let call = #"{"jsonrpc":"2.0","id":\#(i + 10),"method":"tools/call","params":{"name":"echo.echo","arguments":{"n":\#(i)}}}"#
                let r = try await post(c.fields, body: call)
                #expect(r.status == c.status, "\(c.fields.suffix(2)): \(r.text.suffix(300))")
                if c.status == 200 { #expect(r.text.contains(#""n":\#(i)"#), "\(r.text.suffix(300))") }
            }
        }
    }

    @Test func transportErrors() async throws {
        try await F.server().withClient(.live) { client in
            #expect(try await Self.initialize(client, "nova_wrong").status == .unauthorized)
            let evil = try await Self.initialize(client, F.aliceKey, origin: "https://evil.example")
            #expect(evil.status == .forbidden)
            #expect(evil.json["error"]?["message"]?.stringValue?.contains("Origin") == true)
            let local = try await Self.initialize(client, F.aliceKey, origin: "http://localhost:5173")
            #expect(local.status == .ok)
            let configured = try await Self.initialize(client, F.aliceKey, origin: "https://app.example.com")
            #expect(configured.status == .ok)
            let rebinding = try await client.post("/mcp", F.aliceKey, [
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]],
            ], [Self.accept, ("Host", "attacker.example:80")])
            #expect(rebinding.status.code == 421)
            let noSession = try await client.post("/mcp", F.aliceKey, ["jsonrpc": "2.0", "id": 2, "method": "tools/list"],
                                                  [Self.accept, ("Host", "127.0.0.1:8787")])
            #expect(noSession.status == .badRequest)
            let get = try await client.get("/mcp", F.aliceKey, [("Accept", "text/event-stream")])
            #expect(get.status == .methodNotAllowed)
            let badAccept = try await client.post("/mcp", F.aliceKey, [
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": ["protocolVersion": "2025-06-18", "capabilities": [:], "clientInfo": ["name": "t", "version": "1"]],
            ], [("Accept", "text/html"), ("Host", "127.0.0.1:8787")])
            #expect(badAccept.status.code == 406)
            let del = try await client.execute(uri: "/mcp", method: .delete, headers: Req.bearer(F.aliceKey))
            #expect(del.status == .badRequest)
        }
    }
}
