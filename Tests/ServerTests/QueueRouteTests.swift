import Foundation
import Host
import HostServer
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import Testing

/// `POST /v1/runs` through the durable queue, `/v1/runs/{id}/cancel` across hosts, and the
/// `/v1/jobs` routes — over a real socket.
@Suite struct QueueRouteTests {
    typealias F = ServerFixtures

    static let sleepPlan: JSONValue = ["name": "nap", "steps": [["id": "nap", "call": "echo.sleep", "input": ["ms": 30_000]]]]
    static let echoPlan: JSONValue = ["name": "hi", "steps": [["id": "a", "call": "echo.echo", "input": ["x": 1]]]]

    @Test func aQueuedRunIsCancelledBeforeItStarts() async throws {
        // This server only accepts runs: nothing takes them from the queue.
        try await F.server(config: { $0.worker = nil }).withClient(.live) { client in
            let r = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan])
            #expect(r.status == .accepted)
            let id = try #require(r.json["run_id"]?.stringValue)
            #expect(try await client.get("/v1/runs/\(id)", F.aliceKey).json["status"] == "queued")
            #expect(try await client.get("/v1/runs/\(id)", F.bobKey).status == .notFound)
            #expect(try await client.post("/v1/runs/\(id)/cancel", F.bobKey).status == .notFound)
            let c = try await client.post("/v1/runs/\(id)/cancel", F.aliceKey)
            #expect(c.status == .accepted && c.json["status"] == "cancelled")
            let run = try await client.get("/v1/runs/\(id)", F.aliceKey).json
            #expect(run["status"] == "cancelled" && run["job"]?["state"] == "cancelled")
            let again = try await client.post("/v1/runs/\(id)/cancel", F.aliceKey)
            #expect(again.status == .conflict && again.errorCode == "already_finished")
        }
    }

    @Test func badRunRequestsAreRefusedBeforeTheyAreQueued() async throws {
        try await F.server(config: { $0.worker = nil }).withClient(.live) { client in
            let q = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan, "queue": "nope"])
            #expect(q.status == .unprocessableContent && q.errorCode == "unknown_queue")
            #expect(q.json["error"]?["message"]?.stringValue?.contains("default") == true)
            let p = try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan, "priority": "high"])
            #expect(p.status == .unprocessableContent)
            #expect(try await client.get("/v1/jobs", F.adminKey).json["total"] == 0, "nothing was queued")
        }
    }

    @Test func jobRoutesScopeToTheCallerAndReserveRetryAndDiscardForAdmins() async throws {
        try await F.server(config: { $0.worker = nil }).withClient(.live) { client in
            let a = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan]).json["run_id"]?.stringValue)
            let b = try #require(try await client.post("/v1/runs", F.bobKey, ["plan": Self.echoPlan, "priority": 5]).json["run_id"]?.stringValue)
            let mine = try await client.get("/v1/jobs", F.aliceKey).json
            #expect(mine["total"] == 1 && mine["jobs"]?[0]?["id"] == .string(a))
            let all = try await client.get("/v1/jobs?state=available&kind=run", F.adminKey).json
            #expect(all["total"] == 2)
            #expect(try await client.get("/v1/jobs/\(b)", F.adminKey).json["priority"] == 5)
            #expect(try await client.get("/v1/jobs/\(b)", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/jobs?state=bogus", F.adminKey).status == .badRequest)
            #expect(try await client.get("/v1/jobs?queue=Bad%20Name", F.adminKey).status == .badRequest)

            // Discarding a pending job is refused; cancel it first.
            let pending = try await client.execute(uri: "/v1/jobs/\(a)", method: .delete, headers: Req.bearer(F.adminKey))
            #expect(pending.status == .conflict && pending.errorCode == "job_not_finished")
            let cancel = try await client.post("/v1/jobs/\(a)/cancel", F.aliceKey)
            #expect(cancel.status == .accepted && cancel.json["state"] == "cancelled")
            // Retry and discard need an admin role.
            #expect(try await client.post("/v1/jobs/\(a)/retry", F.aliceKey).status == .forbidden)
            let retried = try await client.post("/v1/jobs/\(a)/retry", F.adminKey)
            #expect(retried.status == .ok && retried.json["state"] == "available")
            #expect(try await client.post("/v1/jobs/\(a)/retry", F.adminKey).status == .conflict)
            _ = try await client.post("/v1/jobs/\(a)/cancel", F.adminKey)
            #expect(try await client.execute(uri: "/v1/jobs/\(a)", method: .delete, headers: Req.bearer(F.aliceKey)).status == .forbidden)
            #expect(try await client.execute(uri: "/v1/jobs/\(a)", method: .delete, headers: Req.bearer(F.adminKey)).status == .noContent)
            #expect(try await client.get("/v1/jobs/\(a)", F.adminKey).status == .notFound)
            #expect(try await client.post("/v1/jobs/none/retry", F.adminKey).status == .notFound)
        }
    }

    /// Server A accepts a run; server B (another process on the same data directory, so no
    /// shared in-process signal) runs it; cancelling through A reaches B's worker through the
    /// job, and the run is recorded `cancelled`.
    @Test func cancelReachesARunOnAnotherHost() async throws {
        let data = F.tempDir("data")
        let accepting = try await F.server(config: { $0.worker = nil }, dataDirectory: data)
        var options = JobWorkerOptions(leaseMs: 6_000)  // heartbeats (which carry the cancel) every 2 s; a shorter lease expired under CI load
        options.pollMs = 50
        let working = try await F.server(config: { $0.worker = options }, dataDirectory: data)
        let worker = try #require(working.worker)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker.run() }
            try await accepting.withClient(.live) { client in
                let id = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": Self.sleepPlan]).json["run_id"]?.stringValue)
                try await Wait.until("the run starts on B") { working.runs.snapshot(runId: id)?.status == .running }
                #expect(try await client.get("/v1/runs/\(id)", F.aliceKey).json["status"] == "running")
                let c = try await client.post("/v1/runs/\(id)/cancel", F.aliceKey)
                #expect(c.status == .accepted && c.json["status"] == "cancelling")
                try await Wait.until("the run is recorded") { try await client.get("/v1/runs/\(id)", F.aliceKey).json["episode"] != .null }
                let run = try await client.get("/v1/runs/\(id)", F.aliceKey).json
                #expect(run["status"] == "cancelled", "\(run.serialized())")
                try await Wait.until("the job ends") { try await accepting.queue!.job(id: id)?.state == .cancelled }
                #expect(try await accepting.queue!.job(id: id)?.attempts.map(\.outcome) == ["cancelled"])
            }
            worker.stop()
            await working.runs.shutdown(grace: .seconds(30))
            try await group.waitForAll()
        }
    }

    /// A cancel that reaches the worker between the dequeue and the run's start (the
    /// heartbeat passes it on) stops the run as it starts; it is not lost.
    @Test func aCancelThatArrivesBeforeTheRunStartsStopsIt() async throws {
        let server = try await F.server()
        let id = RunId.make()
        #expect(server.runs.cancel(runId: id) == .unknown)
        #expect(server.runs.cancel(runId: id, beforeStart: true) == .cancelling)
        let request = RunRequest(plan: try ShutdownTests.sleepPlan(30_000), inputs: [:], principal: "alice", role: "user")
        let snap = try await server.runs.execute(request, runId: id, job: RunJobAttempt(jobId: id, attempt: 1, worker: "w"))
        #expect(snap.status == .cancelled && snap.cancelRequested, "\(snap.status)")
        #expect(try await server.host.episodes!.show(runId: id).document["status"] == "cancelled")
    }

    /// Once a queued run is recorded, its job keeps the redacted inputs, as the episode does.
    @Test func aRecordedRunsJobHoldsNoSecrets() async throws {
        try await F.server().withClient(.live) { client in
            let plan: JSONValue = ["name": "secret", "inputs": ["password": ["type": "string"]],
                                   "steps": [["id": "a", "call": "echo.echo", "input": ["len": "${inputs.password}"]]]]
            let id = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": plan, "inputs": ["password": "hunter2-secret"]]).json["run_id"]?.stringValue)
            #expect(try await client.get("/v1/jobs/\(id)", F.adminKey).text.contains("hunter2-secret"), "queued: the payload holds what a worker needs")
            let done = try await client.waitForRun(id, F.aliceKey)
            #expect(done["status"] == "succeeded", "\(done.serialized())")
            try await Wait.until("the job is done") { try await client.get("/v1/jobs/\(id)", F.adminKey).json["state"] == "succeeded" }
            let job = try await client.get("/v1/jobs/\(id)", F.adminKey).text
            #expect(!job.contains("hunter2-secret"), "\(job)")
        }
    }

    /// A job whose payload is not a run (written by something else, or damaged) is dead at
    /// once with a clear error, and the run says so.
    @Test func aMalformedRunJobIsDeadWithItsReason() async throws {
        let server = try await F.server()
        try await server.withClient(.live) { client in
            let spec = JobSpec(kind: RunJob.kind, payload: ["plan": 1, "principal": "alice"], maxAttempts: 5)
            let id = try await server.queue!.enqueue(spec).job.id
            try await Wait.until("the job is dead") { try await server.queue!.job(id: id)?.state == .dead }
            let job = try #require(try await server.queue!.job(id: id))
            #expect(job.attempt == 1 && job.lastError?.contains("malformed run job") == true)
            let run = try await client.get("/v1/runs/\(id)", F.aliceKey).json
            #expect(run["status"] == "failed" && run["error"]?.stringValue?.contains("plan") == true, "\(run.serialized())")
        }
    }
}
