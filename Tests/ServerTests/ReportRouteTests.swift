import Foundation
import Host
import HostServer
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Testing

/// `GET /v1/reports/status` over a real socket: JSON by default, Markdown and HTML by `Accept`,
/// a non-admin caller sees their own runs, bad windows and unknown agents are refused; the store
/// gauges on `/metrics`.
@Suite struct ReportRouteTests {
    typealias F = ServerFixtures

    static let echoPlan: JSONValue = ["name": "hi", "steps": [["id": "a", "call": "echo.echo", "input": ["x": 1]]]]
    static let failPlan: JSONValue = ["name": "oops", "steps": [["id": "f", "call": "echo.fail", "input": [:]]]]

    @Test func statusReportNegotiatesJSONMarkdownAndHTML() async throws {
        try await F.server().withClient(.live) { client in
            for plan in [Self.echoPlan, Self.echoPlan, Self.failPlan] {
                let id = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": plan]).json["run_id"]?.stringValue)
                _ = try await client.waitForRun(id, F.aliceKey)
            }
            let bobs = try #require(try await client.post("/v1/runs", F.bobKey, ["plan": Self.echoPlan]).json["run_id"]?.stringValue)
            _ = try await client.waitForRun(bobs, F.bobKey)

            // JSON by default: alice sees her three runs, one denied by a rule.
            let r = try await client.get("/v1/reports/status?since=24h", F.aliceKey)
            #expect(r.status == .ok, "\(r.text)")
            #expect(r.headers[.contentType]?.hasPrefix("application/json") == true)
            let report = r.json
            #expect(report["principal"] == "alice")
            #expect(report["runs"]?["total"] == 3)
            #expect(report["runs"]?["by_status"] == ["succeeded": 2, "denied": 1])
            #expect(report["denials"]?[0]?["rule"] == "no-fail-for-users")
            #expect(report["tools"]?[0]?["tool"] == "echo.echo" && report["tools"]?[0]?["calls"] == 2)
            #expect(report["jobs"]?["dlq_depth"] == 0)

            // An admin sees everyone's.
            #expect(try await client.get("/v1/reports/status", F.adminKey).json["runs"]?["total"] == 4)

            // Markdown and HTML by Accept.
            let md = try await client.get("/v1/reports/status?since=1h", F.aliceKey, [("Accept", "text/markdown")])
            #expect(md.status == .ok)
            #expect(md.headers[.contentType]?.hasPrefix("text/markdown") == true)
            #expect(md.text.hasPrefix("# Status report") && md.text.contains("| no-fail-for-users | 1 | echo.fail |"), "\(md.text)")
            let html = try await client.get("/v1/reports/status", F.aliceKey, [("Accept", "text/html,application/xhtml+xml;q=0.9")])
            #expect(html.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(html.text.contains("<svg") && !html.text.contains("<script"))
            // JSON preferred by quality.
            let q = try await client.get("/v1/reports/status", F.aliceKey, [("Accept", "text/markdown;q=0.5, application/json")])
            #expect(q.headers[.contentType]?.hasPrefix("application/json") == true)

            // Refusals.
            #expect(try await client.get("/v1/reports/status?since=forever", F.aliceKey).status == .badRequest)
            #expect(try await client.get("/v1/reports/status?agent=nobody", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/reports/status", nil).status == .unauthorized)

            // The store's gauges.
            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains("nova_recorded_runs{status=\"succeeded\"} 3"), "\(metrics)")
            #expect(metrics.contains("nova_recorded_runs{status=\"denied\"} 1"))
            #expect(metrics.contains("nova_jobs_dead_letter 0"))
            #expect(metrics.contains("nova_jobs{state=\"dead\"} 0"))
        }
    }
}
