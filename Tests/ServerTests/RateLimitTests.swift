import Foundation
import HostServer
import HummingbirdTesting
import JSON
import Testing

/// An exhausted rate limit is "try later", not "forbidden": 429 with `Retry-After` on REST
/// (over a real socket), and an MCP result that says when to retry (issue 10.14).
@Suite struct RateLimitTests {
    typealias F = ServerFixtures

    /// One call per principal, refilling one token every 100 s.
    static let policy = """
    {
      "roles": { "admin": {}, "user": {}, "service": {} },
      "principals": { "admin": "admin", "alice": "user", "bob": "user", "ci": "service" },
      "rules": [ { "id": "users-echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"] } ],
      "rate_limits": [ { "id": "slow", "scope": "principal", "capacity": 1, "refill_per_second": 0.01 } ]
    }
    """

    @Test func restAnswers429WithRetryAfter() async throws {
        try await F.server(policy: Self.policy).withClient(.live) { client in
            let port = try #require(client.port)
            let head = ["POST /tools/echo.echo HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(F.aliceKey)",
                        "Content-Type: application/json"]
            #expect(try await RawHTTP.exchange(port: port, head, body: "{}").status == 200)
            let limited = try await RawHTTP.exchange(port: port, head, body: "{}")
            #expect(limited.status == 429, "\(limited.text)")
            let retry = limited.text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("retry-after:") }
                .flatMap { Int($0.dropFirst("retry-after:".count).trimmingCharacters(in: .whitespaces)) }
            // The bucket refills one token per 100 s: the wait is at most 100 s (less by however
            // long the machine took between the calls), and the header is the body's
            // milliseconds rounded up to whole seconds.
            let body = try JSONValue.parse(String(limited.text[limited.text.range(of: "\r\n\r\n")!.upperBound...]))
            let ms = try #require(body["error"]?["retry_after_ms"]?.intValue ?? body["retry_after_ms"]?.intValue, "\(limited.text)")
            #expect(ms > 0 && ms <= 100_000 && retry == (ms + 999) / 1000, "\(limited.text)")
            #expect(limited.text.contains(#""code":"rate_limited""#))
        }
    }

    @Test func mcpResultSaysWhenToRetry() async throws {
        try await F.server(policy: Self.policy).withClient(.live) { client in
            let ini = try await MCPTests.initialize(client, F.aliceKey)
            let session = try #require(ini.headers[.init("Mcp-Session-Id")!])
            let first = try await MCPTests.rpc(client, F.aliceKey, session: session, id: 2, method: "tools/call",
                                               params: ["name": "echo.echo", "arguments": [:]])
            #expect(first.json["result"]?["isError"] == false)
            let second = try await MCPTests.rpc(client, F.aliceKey, session: session, id: 3, method: "tools/call",
                                                params: ["name": "echo.echo", "arguments": [:]])
            #expect(second.json["result"]?["isError"] == true)
            #expect(second.json["result"]?["content"]?[0]?["text"]?.stringValue?.hasPrefix("rate_limited") == true, "\(second.text)")
            let ms = second.json["result"]?["structuredContent"]?["retry_after_ms"]?.intValue ?? 0
            #expect(ms > 90_000 && ms <= 100_000, "\(second.text)")
        }
    }
}
