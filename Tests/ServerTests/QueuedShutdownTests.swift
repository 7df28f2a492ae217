import Foundation
import Host
import HostServer
import JSON
import Testing

/// A run still queued when the grace period ends is interrupted, never started afterwards.
@Suite struct QueuedShutdownTests {
    @Test func queuedRunsAreInterruptedNotStartedLater() async throws {
        let server = try await ServerFixtures.server()
        let runs = server.runs
        let queued = try await runs.submit(RunRequest(plan: ShutdownTests.sleepPlan(100), inputs: [:], principal: "alice", role: "user")).snapshot
        // Nothing consumes the queue yet: the grace period ends with the run still queued.
        let shutdown = Task { await runs.shutdown(grace: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(300))
        await runs.run()
        let report = await shutdown.value
        #expect(report.interrupted == 1)
        let e = try await server.host.episodes!.show(runId: queued.runId)
        #expect(e.document["status"] == "interrupted", "\(e.document.serialized())")
        #expect(e.document["steps"]?[0]?["status"] != "succeeded")
    }
}
