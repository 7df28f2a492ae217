import Foundation
import Host
import HostServer
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import JSON
import Logging
import ServiceLifecycle
import Testing

/// Graceful shutdown: in-flight runs finish within the grace period, or are recorded as
/// interrupted; no run is lost.
@Suite struct ShutdownTests {
    typealias F = ServerFixtures

    static func sleepPlan(_ ms: Int) throws -> Plan {
        try Plan.parse(["name": "nap", "steps": [["id": "nap", "call": "echo.sleep", "input": ["ms": .int(ms)]]]])
    }

    @Test func runsFinishWithinTheGracePeriod() async throws {
        let server = try await F.server()
        let runs = server.runs
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runs.run() }
            let a = try await runs.submit(RunRequest(plan: Self.sleepPlan(200), inputs: [:], principal: "alice", role: "user")).snapshot
            let b = try await runs.submit(RunRequest(plan: Self.sleepPlan(100), inputs: [:], principal: "alice", role: "user")).snapshot
            try await Task.sleep(for: .milliseconds(20))
            // A generous grace: shutdown returns as soon as both runs ended, and on a loaded
            // machine (the whole test suite in parallel on two cores) they may not even have
            // started for seconds.
            let report = await runs.shutdown(grace: .seconds(120))
            #expect(report.inFlightAtStart == 2)
            #expect(report.interrupted == 0)
            #expect(report.abandoned.isEmpty)
            for id in [a.runId, b.runId] {
                let doc = try await server.host.episodes!.show(runId: id).document
                #expect(doc["status"] == "succeeded", "\(doc.serialized())")
            }
            // No new runs once shutdown began.
            await #expect(throws: RunSubmitError.notAccepting) {
                _ = try await runs.submit(RunRequest(plan: Self.sleepPlan(1), inputs: [:], principal: "alice", role: "user"))
            }
            try await group.waitForAll()
        }
    }

    @Test func runsBeyondTheGracePeriodAreRecordedInterrupted() async throws {
        let server = try await F.server()
        let runs = server.runs
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runs.run() }
            // The echo driver is serialized: the quick run goes first and ends before the slow one starts.
            let quick = try await runs.submit(RunRequest(plan: Self.sleepPlan(20), inputs: [:], principal: "alice", role: "user")).snapshot
            for _ in 0..<12_000 where runs.snapshot(runId: quick.runId)?.status == .running { try await Task.sleep(for: .milliseconds(10)) }
            let slow = try await runs.submit(RunRequest(plan: Self.sleepPlan(10_000), inputs: [:], principal: "alice", role: "user")).snapshot
            try await Task.sleep(for: .milliseconds(20))
            // The 10 s run is recorded interrupted, not waited for (had shutdown waited, its
            // episode would say succeeded).
            let report = await runs.shutdown(grace: .milliseconds(300))
            #expect(report.interrupted == 1)
            let e = try await server.host.episodes!.show(runId: slow.runId)
            #expect(e.document["status"] == "interrupted")
            #expect(e.document["error"]?.stringValue?.contains("shut down") == true)
            #expect(try await server.host.episodes!.show(runId: quick.runId).document["status"] == "succeeded")
            #expect(try await server.host.episodes!.verify().isIntact)
            try await group.waitForAll()
        }
    }

    /// The whole application under a ServiceGroup: a graceful shutdown lets the HTTP server
    /// finish and the background run complete.
    @Test func serviceGroupGracefulShutdown() async throws {
        let server = try await F.server(config: { $0.shutdownGraceSeconds = 5 })
        let app = server.application(host: "127.0.0.1", port: 0)
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Submit directly (the app's HTTP port is not needed for this check).
            var snap: RunSnapshot?
            for _ in 0..<200 {
                if let s = try? await server.runs.submit(RunRequest(plan: Self.sleepPlan(300), inputs: [:], principal: "alice", role: "user")).snapshot {
                    snap = s
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let id = try #require(snap?.runId)
            try await Task.sleep(for: .milliseconds(50))
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(try await server.host.episodes!.show(runId: id).document["status"] == "succeeded")
            #expect(server.runs.inFlightCount == 0)
        }
    }
}

/// Metrics and JSON logs.
@Suite struct ObservabilityTests {
    typealias F = ServerFixtures

    @Test func metricsCoverRequestsToolsPolicyEpisodesAndGauges() async throws {
        try await F.server().withClient { client in
            _ = try await client.post("/tools/echo.echo", F.aliceKey, [:])
            _ = try await client.post("/tools/echo.fail", F.aliceKey, [:])
            _ = try await client.post("/tools/echo.fail", F.adminKey, [:])
            _ = try await client.get("/v1/tools", F.aliceKey)
            let text = try await client.get("/metrics", F.adminKey).text
            for needle in [
                #"nova_http_requests_total{route="/tools/{toolId}",method="POST",status="200"} 1"#,
                #"nova_http_requests_total{route="/tools/{toolId}",method="POST",status="403"} 1"#,
                #"nova_tool_calls_total{driver="echo",tool="echo",outcome="ok"} 1"#,
                #"nova_tool_calls_total{driver="echo",tool="fail",outcome="tool"} 1"#,
                #"nova_policy_decisions_total{outcome="deny",rule="no-fail-for-users"} 1"#,
                #"nova_policy_decisions_total{outcome="allow",rule="users-echo"} 1"#,
                "nova_episode_write_duration_seconds_count 3",
                #"nova_runs_total{origin="tool",status="succeeded"} 1"#,
                "nova_tool_call_duration_seconds_bucket", "nova_step_duration_seconds_bucket",
                "nova_runs_in_flight 0", "nova_drivers_loaded 1", "nova_mcp_sessions 0",
            ] {
                #expect(text.contains(needle), "missing \(needle)")
            }
        }
    }

    @Test func logsAreJSONLinesWithChannelAndRequestId() async throws {
        let capture = LogCapture()
        let logger = Logger(label: "nova-test") { JSONLogHandler(label: $0, destination: .memory(capture), level: .info) }
        try await F.server(logger: logger).withClient { client in
            _ = try await client.get("/v1/tools", F.aliceKey, [("X-Request-ID", "req-42")])
            _ = try await Self.mcpDenied(client)
        }
        let entries = capture.entries
        let request = entries.first { $0["request_id"] == "req-42" && $0["message"] == "request" }
        #expect(request?["channel"] == "system_log")
        #expect(request?["status"] == "200")
        #expect(request?["principal"] == "alice")
        #expect(request?["ts"]?.stringValue?.hasSuffix("Z") == true)
        let model = entries.first { $0["channel"] == "model_instruction" }
        #expect(model?["message"]?.stringValue?.contains("denied by policy") == true)
        for e in entries { #expect(LogChannel(rawValue: e["channel"]?.stringValue ?? "") != nil) }
    }

    static func mcpDenied(_ client: any TestClientProtocol) async throws -> TestResponse {
        let ini = try await MCPTests.initialize(client, F.aliceKey)
        let session = ini.headers[HTTPField.Name("Mcp-Session-Id")!] ?? ""
        return try await MCPTests.rpc(client, F.aliceKey, session: session, id: 2, method: "tools/call", params: ["name": "echo.fail"])
    }
}
