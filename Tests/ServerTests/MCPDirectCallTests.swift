import Foundation
import HTTPTypes
import HummingbirdTesting
import JSON
import MCP
import NIOCore
import Testing
@testable import HostServer

/// `tools/call` answered by the gateway from its own parse (`MCPDirectToolCall`), not by the
/// SDK's server: the same answers the SDK gives, and the JSON-RPC error behaviour of
/// `MCPPreflight` in front of it (parse error, invalid request, invalid params, batches, ids of
/// every kind, notifications, cancellation in `CancelTests`).
@Suite struct MCPDirectCallTests {
    typealias F = ServerFixtures

    static func message(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    // MARK: The parse

    @Test func onlyToolsCallRequestsAreDirect() throws {
        let call = try #require(MCPDirectToolCall(try Self.message(
            #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo.echo","arguments":{"text":"hi","n":12345678901234567890}}}"#)))
        #expect(call.id == .int(7))
        #expect(call.name == "echo.echo")
        #expect(call.arguments["text"] == .string("hi"))
        // Numbers stay exact (the SDK's Value would have made this a Double).
        if case .bigInt? = call.arguments["n"] {} else { Issue.record("not kept exact: \(String(describing: call.arguments["n"]))") }
        for id in [#""abc""#, "-3", "2.5", "0"] {
            let c = MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"x.y"}}"#))
            #expect(c?.id == (try Self.message(id)), "id \(id)")
            #expect(c?.arguments.isEmpty == true)
        }
        #expect(MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x.y","arguments":null}}"#))?
            .arguments.isEmpty == true)
        // Not direct: a notification, another method, a response, no name.
        #expect(MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x.y"}}"#)) == nil)
        #expect(MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)) == nil)
        #expect(MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","id":1,"result":{}}"#)) == nil)
        #expect(MCPDirectToolCall(try Self.message(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#)) == nil)
    }

    @Test func cancelledNotificationNamesItsRequest() throws {
        #expect(MCPDirectToolCall.cancelledRequestId(try Self.message(
            #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"r-1","reason":"user"}}"#)) == "r-1")
        #expect(MCPDirectToolCall.cancelledRequestId(try Self.message(
            #"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}"#)) == 4)
        #expect(MCPDirectToolCall.cancelledRequestId(try Self.message(
            #"{"jsonrpc":"2.0","id":1,"method":"notifications/cancelled","params":{"requestId":4}}"#)) == nil)
        #expect(MCPDirectToolCall.cancelledRequestId(try Self.message(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)) == nil)
    }

    // MARK: The answer is the SDK's

    /// What the SDK's server writes for the same result, parsed.
    static func sdkEncoding<T: Encodable>(_ value: T) throws -> JSONValue {
        try JSONValue.parse(Array(try JSONEncoder().encode(value)))
    }

    @Test func answersEncodeAsTheSDKEncodesThem() throws {
        let answers: [MCPToolServer.CallAnswer] = [
            .init(text: #"{"text":"hi"}"#, structured: ["text": "hi", "n": 2.5, "list": [1, true, .null]], isError: false),
            .init(text: "denied by policy (rule r): no", structured: nil, isError: true),
            .init(text: "rate_limited: slow down; retry after 250 ms", structured: ["error": "rate_limited", "retry_after_ms": 250], isError: true),
        ]
        for answer in answers {
            let sdk = CallTool.response(id: .number(3), result: CallTool.Result(
                content: [.text(text: answer.text, annotations: nil, _meta: nil)],
                structuredContent: answer.structured.map(MCPToolServer.value), isError: answer.isError))
            #expect(MCPDirectToolCall.response(id: 3, answer: answer) == (try Self.sdkEncoding(sdk)))
        }
        let unknown = MCPError.invalidParams("Unknown tool: echo.nope (no such tool)")
        #expect(MCPDirectToolCall.errorResponse(id: "a", unknown) == (try Self.sdkEncoding(CallTool.response(id: .string("a"), error: unknown))))
    }

    // MARK: Over HTTP

    static func open(_ client: any TestClientProtocol, version: String = "2025-06-18") async throws -> String {
        let ini = try await client.post("/mcp", F.aliceKey, [
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": ["protocolVersion": .string(version), "capabilities": [:], "clientInfo": ["name": "test", "version": "1"]],
        ], [MCPTests.accept, ("Host", "127.0.0.1:8787")])
        #expect(ini.status == .ok, "\(ini.text)")
        return try #require(ini.headers[HTTPField.Name("Mcp-Session-Id")!])
    }

    /// POSTs `body` as it is to the session.
    static func post(_ client: any TestClientProtocol, session: String, version: String = "2025-06-18", _ body: String) async throws -> TestResponse {
        try await client.execute(uri: "/mcp", method: .post,
                                 headers: Req.jsonHeaders(F.aliceKey, [MCPTests.accept, ("Mcp-Session-Id", session),
                                                                       ("MCP-Protocol-Version", version), ("Host", "127.0.0.1:8787")]),
                                 body: ByteBuffer(string: body))
    }

    @Test func callsAnswerWithTheRequestIdAsSent() async throws {
        try await F.server().withClient(.live) { client in
            let session = try await Self.open(client)
            for id in [#""req-1""#, "9007199254740993", "-7", "2.5"] {
                let r = try await Self.post(client, session: session,
                                            #"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"echo.echo","arguments":{"text":"hi"}}}"#)
                #expect(r.status == .ok)
                #expect(r.text.contains(#""id":\#(id)"#), "\(r.text)")
                let result = r.json["result"]
                #expect(result?["isError"] == false)
                #expect(result?["structuredContent"] == ["text": "hi"])
                #expect(result?["content"] == [["type": "text", "text": #"{"text":"hi"}"#]])
            }
            // A denied call is a result with isError; an unknown tool a JSON-RPC error.
            let denied = try await Self.post(client, session: session, #"{"jsonrpc":"2.0","id":"d","method":"tools/call","params":{"name":"echo.fail"}}"#)
            #expect(denied.json["result"]?["isError"] == true)
            #expect(denied.json["result"]?["content"]?[0]?["text"]?.stringValue?.hasPrefix("denied by policy") == true, "\(denied.text)")
            let unknown = try await Self.post(client, session: session, #"{"jsonrpc":"2.0","id":"u","method":"tools/call","params":{"name":"echo.nope"}}"#)
            #expect(unknown.json["id"] == "u")
            #expect(unknown.json["error"]?["code"] == -32602)
            #expect(unknown.json["error"]?["data"]?["detail"]?.stringValue?.hasPrefix("Unknown tool: echo.nope") == true, "\(unknown.text)")
            // The run is recorded with origin mcp.
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains(#"nova_runs_total{origin="mcp",status="succeeded"} 4"#), "\(metrics)")
        }
    }

    @Test func jsonRPCErrorsBeforeTheCall() async throws {
        try await F.server().withClient(.live) { client in
            let session = try await Self.open(client)
            func expectError(_ body: String, code: Int, id: JSONValue, status: HTTPTypes.HTTPResponse.Status = .ok) async throws {
                let r = try await Self.post(client, session: session, body)
                #expect(r.status == status, "\(body): \(r.text)")
                #expect(r.json["error"]?["code"] == .int(code), "\(body): \(r.text)")
                #expect(r.json["id"] == id, "\(body): \(r.text)")
            }
            try await expectError(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","#, code: -32700, id: .null, status: .badRequest)
            try await expectError(#"{"jsonrpc":"1.0","id":2,"method":"tools/call","params":{"name":"echo.echo"}}"#, code: -32600, id: 2)
            try await expectError(#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"echo.echo"}}"#, code: -32600, id: .null,
                                  status: .badRequest)
            try await expectError(#"{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"echo.echo"}}"#, code: -32600, id: .null,
                                  status: .badRequest)
            try await expectError(#"{"jsonrpc":"2.0","id":3,"method":7}"#, code: -32600, id: 3)
            try await expectError(#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":{}}}"#, code: -32602, id: 4)
            try await expectError(#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo.echo","arguments":[1]}}"#, code: -32602, id: 5)
            try await expectError(#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":["echo.echo"]}"#, code: -32602, id: 6)
            try await expectError(#"[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo.echo"}}]"#, code: -32600, id: .null,
                                  status: .badRequest)
            // A tools/call without an id is a notification: accepted, nothing answered, nothing run.
            let note = try await Self.post(client, session: session, #"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo.echo","arguments":{"text":"x"}}}"#)
            #expect(note.status == .accepted)
            #expect(note.body.readableBytes == 0)
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(!metrics.contains(#"nova_runs_total{origin="mcp""#), "\(metrics)")
        }
    }

    @Test func batchesMixDirectCallsWithTheSDKsAnswers() async throws {
        try await F.server().withClient(.live) { client in
            let session = try await Self.open(client, version: "2025-03-26")
            let r = try await Self.post(client, session: session, version: "2025-03-26", """
                [{"jsonrpc":"2.0","id":"c","method":"tools/call","params":{"name":"echo.echo","arguments":{"text":"b"}}},
                 {"jsonrpc":"2.0","id":2,"method":"tools/list"},
                 {"jsonrpc":"2.0","method":"notifications/initialized"},
                 {"jsonrpc":"2.0","id":3,"method":"tools/call","params":{}}]
                """)
            #expect(r.status == .ok, "\(r.text)")
            let answers = r.json.arrayValue ?? []
            #expect(answers.count == 3, "\(r.text)")
            let byId = Dictionary(answers.map { ($0["id"] ?? .null, $0) }, uniquingKeysWith: { a, _ in a })
            #expect(byId["c"]?["result"]?["structuredContent"] == ["text": "b"])
            #expect(byId[2]?["result"]?["tools"]?.arrayValue?.isEmpty == false)
            #expect(byId[3]?["error"]?["code"] == -32602)
        }
    }

    /// Two calls in flight with the same id (a client mistake) are both answered: the direct path
    /// keys nothing by id but cancellation.
    @Test func concurrentCallsWithOneIdAreBothAnswered() async throws {
        try await F.server().withClient(.live) { client in
            let session = try await Self.open(client)
            let port = try #require(client.port)
            let head = ["POST /mcp HTTP/1.1", "Host: 127.0.0.1:\(port)", "Authorization: Bearer \(F.aliceKey)", "Content-Type: application/json",
                        "Accept: application/json, text/event-stream", "Mcp-Session-Id: \(session)", "MCP-Protocol-Version: 2025-06-18"]
            async let a = RawHTTP.exchange(port: port, head, body: #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo.sleep","arguments":{"ms":300}}}"#)
            async let b = RawHTTP.exchange(port: port, head, body: #"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo.sleep","arguments":{"ms":300}}}"#)
            for r in try await [a, b] {
                #expect(r.status == 200 && r.text.contains(#""id":5"#) && r.text.contains(#""isError":false"#), "\(r.text)")
            }
        }
    }
}
