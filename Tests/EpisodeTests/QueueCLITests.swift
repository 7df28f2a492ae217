import Foundation
import Testing
import Host
import JSON

/// `nova-host jobs …` and `nova-host runs …` on a data directory's SQLite store: output,
/// refusals and exit codes (0 done · 1 not there / store failed · 2 invalid usage or refused).
@Suite struct QueueCLITests {
    static func novaHost(_ args: [String]) async throws -> (code: Int32, out: String, err: String) {
        let r = try await ProcessRunner.run(TestPaths.novaHost, args)
        return (r.status, r.stdout, r.stderr)
    }

    @Test func jobsAndRunsCommands() async throws {
        let data = EpisodeFixtures.tempDir("queue-cli")
        defer { EpisodeFixtures.remove(data) }
        _ = try await EpisodeLog.open(dataDirectory: data)  // creates <data>/nova.sqlite
        let store = try SQLiteStore(path: data + "/" + SQLiteStore.defaultFileName)
        let plan = try Plan.parse(["name": "queued-plan", "steps": [["id": "a", "call": "text.upper", "input": ["text": "x"]]]])
        let payload = RunJob.payload(RunSubmission(plan: plan, principal: "uma", origin: "test"), fingerprint: nil, submittedAt: Timestamps.now())
        let id = try await store.enqueue(JobSpec(kind: RunJob.kind, payload: payload)).job.id

        let listed = try await Self.novaHost(["jobs", "list", "--data", data, "--json"])
        let listedJSON = try JSONValue.parse(listed.out)
        #expect(listed.code == 0 && listedJSON["total"] == 1, "\(listed)")
        let table = try await Self.novaHost(["jobs", "list", "--data", data])
        #expect(table.code == 0 && table.out.contains(id) && table.out.contains("available"), "\(table)")
        let run = try await Self.novaHost(["runs", "show", id, "--data", data])
        #expect(run.code == 0, "\(run)")
        let view = try JSONValue.parse(run.out)
        #expect(view["status"] == "queued" && view["plan_name"] == "queued-plan" && view["principal"] == "uma", "\(run.out)")
        let runs = try await Self.novaHost(["runs", "list", "--status", "queued", "--data", data, "--json"])
        let runsJSON = try JSONValue.parse(runs.out)
        #expect(runs.code == 0 && runsJSON.arrayValue?.count == 1, "\(runs)")

        // Refused changes and bad usage exit 2; what is not there exits 1.
        let discardPending = try await Self.novaHost(["jobs", "discard", id, "--data", data])
        #expect(discardPending.code == 2 && discardPending.err.contains("cancel it first"), "\(discardPending)")
        let cancelled = try await Self.novaHost(["runs", "cancel", id, "--data", data])
        #expect(cancelled.code == 0 && cancelled.out.contains("cancelled before it ran"), "\(cancelled)")
        let again = try await Self.novaHost(["jobs", "cancel", id, "--data", data])
        #expect(again.code == 2 && again.err.contains("already finished (cancelled)"), "\(again)")
        let retried = try await Self.novaHost(["jobs", "retry", id, "--data", data, "--json"])
        let retriedJSON = try JSONValue.parse(retried.out)
        #expect(retried.code == 0 && retriedJSON["state"] == "available", "\(retried)")
        #expect(try await Self.novaHost(["jobs", "cancel", id, "--data", data]).code == 0)
        let discarded = try await Self.novaHost(["jobs", "discard", id, "--data", data])
        #expect(discarded.code == 0, "\(discarded)")
        #expect(try await Self.novaHost(["jobs", "show", id, "--data", data]).code == 1)
        #expect(try await Self.novaHost(["runs", "show", id, "--data", data]).code == 1)

        for bad in [["jobs", "list", "--state", "bogus"], ["jobs", "list", "--queue", "Bad Name"], ["runs", "list", "--status", "nope"],
                    ["worker", "--queues", "Bad Name"], ["worker", "--concurrency", "0"]] {
            let r = try await Self.novaHost(bad + ["--data", data])
            #expect(r.code == 2 && r.err.contains("error:"), "\(bad): \(r)")
        }
    }
}
