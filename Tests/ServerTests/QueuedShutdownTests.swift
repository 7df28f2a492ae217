import Foundation
import Host
import HostServer
import JSON
import Testing

/// A direct run (a `/tools` call, MCP) still in flight when the grace period ends is recorded
/// `interrupted`; it is not queued, so nothing runs it again.
@Suite struct DirectRunShutdownTests {
    @Test func directRunsBeyondTheGracePeriodAreRecordedInterrupted() async throws {
        let server = try await ServerFixtures.server()
        let runs = server.runs
        let runId = RunId.make()
        let request = RunRequest(plan: try ShutdownTests.sleepPlan(10_000), inputs: [:], principal: "alice", role: "user", origin: "tool")
        let run = Task { try await runs.execute(request, runId: runId) }
        for _ in 0..<12_000 {
            if runs.inFlightCount > 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        let report = await runs.shutdown(grace: .milliseconds(50))
        #expect(report.interrupted == 1)
        let snap = try await run.value
        #expect(snap.status == .interrupted && !snap.released)
        let e = try await server.host.episodes!.show(runId: runId)
        #expect(e.document["status"] == "interrupted", "\(e.document.serialized())")
        #expect(e.document["error"]?.stringValue?.contains("shut down") == true)
        #expect(try await server.host.episodes!.verify().isIntact)
    }
}
