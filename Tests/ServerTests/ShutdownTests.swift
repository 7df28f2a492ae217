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

    /// Waits until `runId`'s job is running and its run is in flight here.
    static func waitUntilRunning(_ server: NovaServer, _ runId: String) async throws {
        for _ in 0..<12_000 {
            if server.runs.snapshot(runId: runId)?.status == .running { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("run \(runId) never started")
    }

    @Test func runsFinishWithinTheGracePeriod() async throws {
        let server = try await F.server()
        let (runs, worker) = (server.runs, try #require(server.worker))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            let a = try await server.enqueueRun(Self.sleepPlan(200))
            let b = try await server.enqueueRun(Self.sleepPlan(100))
            try await Self.waitUntilRunning(server, a)
            try await Self.waitUntilRunning(server, b)
            // A generous grace: shutdown returns as soon as both runs ended, and on a loaded
            // machine (the whole test suite in parallel on two cores) they may take seconds.
            worker.stop()
            let report = await runs.shutdown(grace: .seconds(120))
            #expect(report.interrupted == 0)
            #expect(report.abandoned.isEmpty)
            try await group.waitForAll()
            for id in [a, b] {
                let doc = try await server.host.episodes!.show(runId: id).document
                #expect(doc["status"] == "succeeded", "\(doc.serialized())")
            }
            // No new runs once shutdown began.
            await #expect(throws: RunSubmitError.notAccepting) {
                _ = try await runs.execute(RunRequest(plan: Self.sleepPlan(1), inputs: [:], principal: "alice", role: "user"))
            }
        }
    }

    /// A queued run still running when the grace period ends goes back to the queue (nothing
    /// recorded); the next worker runs it as attempt 2, whose episode says so, and the job's
    /// history shows both attempts.
    @Test func queuedRunsBeyondTheGracePeriodGoBackToTheQueue() async throws {
        let data = F.tempDir("data")
        let first = try await F.server(dataDirectory: data)
        let slow = try await first.enqueueRun(Self.sleepPlan(3_000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            let worker = try #require(first.worker)
            group.addTask { await worker.run() }
            try await Self.waitUntilRunning(first, slow)
            worker.stop()
            let report = await first.runs.shutdown(grace: .milliseconds(100))
            #expect(report.interrupted == 1)
            try await group.waitForAll()
        }
        await #expect(throws: (any Error).self) { _ = try await first.host.episodes!.show(runId: slow) }
        let released = try #require(try await first.queue!.job(id: slow))
        #expect(released.state == .retryable && released.attempts.map(\.outcome) == ["interrupted"])

        let second = try await F.server(dataDirectory: data)
        try await withThrowingTaskGroup(of: Void.self) { group in
            let worker = try #require(second.worker)
            group.addTask { await worker.run() }
            for _ in 0..<12_000 {
                if try await second.queue!.job(id: slow)?.state.isFinal == true { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            worker.stop()
            await second.runs.shutdown(grace: .seconds(60))
            try await group.waitForAll()
        }
        let job = try #require(try await second.queue!.job(id: slow))
        #expect(job.state == .succeeded && job.attempts.map(\.outcome) == ["interrupted", "succeeded"])
        let doc = try await second.host.episodes!.show(runId: slow).document
        #expect(doc["status"] == "succeeded")
        #expect(doc["job"]?["attempt"] == 2 && doc["job"]?["id"] == .string(slow))
        #expect(try await second.host.episodes!.verify().isIntact)
    }

    /// The whole application under a ServiceGroup: a graceful shutdown lets the HTTP server
    /// finish and the queued run complete.
    @Test func serviceGroupGracefulShutdown() async throws {
        let server = try await F.server(config: { $0.shutdownGraceSeconds = 60 })
        let app = server.application(host: "127.0.0.1", port: 0)
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let id = try await server.enqueueRun(Self.sleepPlan(300))
            try await Self.waitUntilRunning(server, id)
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
                "nova_runs_in_flight 0", "nova_mcp_sessions 0",
            ] {
                #expect(text.contains(needle), "missing \(needle)")
            }
            // The gauge counts the loaded drivers, the built-in ones (agents, memory, state) included.
            let drivers = try await client.get("/v1/drivers", F.adminKey).json["drivers"]?.arrayValue ?? []
            let loaded = drivers.filter { $0["state"] == "loaded" }.count
            #expect(loaded >= 1 && text.contains("nova_drivers_loaded \(loaded)"), "\(loaded) loaded: \(drivers.map { "\($0["name"] ?? .null) \($0["state"] ?? .null)" })")
        }
    }

    @Test func logsAreJSONLinesWithChannelAndRequestId() async throws {
        let capture = LogCapture()
        let logger = Logger(label: "nova-test") { JSONLogHandler(label: $0, destination: .memory(capture), level: .info) }
        try await F.server(logger: logger).withClient { client in
            _ = try await client.get("/v1/tools", F.aliceKey, [("X-Request-ID", "req-42")])
            _ = try await Self.mcpDenied(client)
            _ = try await client.post("/tools/echo.fail", F.aliceKey, [:], [("X-Request-ID", "req-43")])
        }
        let entries = capture.entries
        let request = entries.first { $0["request_id"] == "req-42" && $0["message"] == "request" }
        #expect(request?["channel"] == "system_log")
        #expect(request?["status"] == "200")
        #expect(request?["principal"] == "alice")
        #expect(request?["ts"]?.stringValue?.hasSuffix("Z") == true)
        let model = entries.first { $0["channel"] == "model_instruction" }
        #expect(model?["message"]?.stringValue?.contains("denied by policy") == true)
        // Lines written while a request is handled, not only its access line, name the request
        // and who made it.
        #expect(model?["request_id"]?.stringValue?.isEmpty == false && model?["principal"] == "alice", "\(model ?? .null)")
        let denied = entries.first { $0["message"] == "tool call denied" }
        #expect(denied?["request_id"] == "req-43" && denied?["principal"] == "alice", "\(denied ?? .null)")
        #expect(entries.allSatisfy { $0["hb.request.id"] == nil })
        for e in entries { #expect(LogChannel(rawValue: e["channel"]?.stringValue ?? "") != nil) }
    }

    static func mcpDenied(_ client: any TestClientProtocol) async throws -> TestResponse {
        let ini = try await MCPTests.initialize(client, F.aliceKey)
        let session = ini.headers[HTTPField.Name("Mcp-Session-Id")!] ?? ""
        return try await MCPTests.rpc(client, F.aliceKey, session: session, id: 2, method: "tools/call", params: ["name": "echo.fail"])
    }
}
