import Foundation
import HostServer
import HummingbirdTesting
import JSON
import Testing

/// A call the client gives up on is recorded `cancelled` (run, episode, metric), never as a
/// server shutdown (`interrupted`): over a real socket for REST, by `notifications/cancelled`
/// for MCP.
@Suite struct CancelTests {
    typealias F = ServerFixtures

    /// Polls `GET /v1/runs?status=…` until a run of `tool` is listed (up to 60 s).
    static func waitForRun(_ client: any TestClientProtocol, status: String, tool: String = "echo.sleep") async throws -> JSONValue? {
        for _ in 0..<6000 {
            let runs = try await client.get("/v1/runs?status=\(status)", F.adminKey).json["runs"]?.arrayValue ?? []
            if let run = runs.first(where: { $0["plan_name"]?.stringValue == "tool:\(tool)" }) { return run }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("runs: \(try await client.get("/v1/runs", F.adminKey).text)")
        return nil
    }

    @Test func restClientThatDisconnectsIsRecordedCancelled() async throws {
        try await F.server(config: { $0.toolTimeoutMs = 30_000 }).withClient(.live) { client in
            let port = try #require(client.port)
            try RawHTTP.sendAndClose(port: port, ["POST /tools/echo.sleep HTTP/1.1", "Host: 127.0.0.1:\(port)",
                                                  "Authorization: Bearer \(F.aliceKey)", "Content-Type: application/json"],
                                     body: #"{"ms": 25000}"#)
            let run = try #require(try await Self.waitForRun(client, status: "cancelled"),
                                   "no cancelled run of origin tool")
            #expect(run["status"] == "cancelled")
            let id = try #require(run["run_id"]?.stringValue)
            let detail = try await client.get("/v1/runs/\(id)", F.adminKey).json
            #expect(detail["status"] == "cancelled", "\(detail)")
            #expect(detail["error"]?.stringValue?.contains("shut down") != true)
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains(#"nova_runs_total{origin="tool",status="cancelled"} 1"#), "\(metrics)")
            #expect(Self.interruptedSeries(metrics).isEmpty, "\(Self.interruptedSeries(metrics))")
        }
    }

    @Test func mcpNotificationsCancelledIsRecordedCancelled() async throws {
        try await F.server(config: { $0.toolTimeoutMs = 30_000 }).withClient(.live) { client in
            let ini = try await MCPTests.initialize(client, F.aliceKey)
            let session = try #require(ini.headers[.init("Mcp-Session-Id")!])
            // The call on a connection of its own (the test client has one connection).
            let port = try #require(client.port)
            async let call = RawHTTP.exchange(port: port, [
                "POST /mcp HTTP/1.1", "Host: 127.0.0.1:\(port)", "Authorization: Bearer \(F.aliceKey)", "Content-Type: application/json",
                "Accept: application/json, text/event-stream", "Mcp-Session-Id: \(session)", "MCP-Protocol-Version: 2025-06-18",
            ], body: #"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo.sleep","arguments":{"ms":25000}}}"#)
            // Cancel once the call is running.
            var running = false
            for _ in 0..<6000 where !running {
                let runs = try await client.get("/v1/runs?status=running", F.adminKey).json["runs"]?.arrayValue ?? []
                running = runs.contains { $0["plan_name"]?.stringValue == "tool:echo.sleep" }
                if !running { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(running)
            let note = try await client.post("/mcp", F.aliceKey,
                                             ["jsonrpc": "2.0", "method": "notifications/cancelled", "params": ["requestId": 7, "reason": "user"]],
                                             [MCPTests.accept, ("Mcp-Session-Id", session), ("MCP-Protocol-Version", "2025-06-18")])
            #expect(note.status == .accepted)
            let reply = try await call
            #expect(reply.status == 200 && reply.text.contains("cancelled") && !reply.text.contains("shutting_down"), "\(reply.text)")
            let run = try #require(try await Self.waitForRun(client, status: "cancelled"), "no cancelled mcp run")
            #expect(run["status"] == "cancelled")
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains(#"nova_runs_total{origin="mcp",status="cancelled"} 1"#))
            #expect(Self.interruptedSeries(metrics).isEmpty, "\(Self.interruptedSeries(metrics))")
        }
    }

    /// Series that count an interrupted run (a gauge of the store at 0 counts none).
    static func interruptedSeries(_ metrics: String) -> [Substring] {
        metrics.split(separator: "\n").filter { $0.contains(#"status="interrupted""#) && !$0.hasSuffix(" 0") }
    }
}
