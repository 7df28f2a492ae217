import Foundation
import Testing
import Host
@testable import Runs
import JSON
import Episodes

/// Issue 11.1: the one run pipeline (prepare → bind inputs → validate → run → redact → record).
@Suite("Run pipeline")
struct RunPipelineTests {
    func host(_ dir: String) async throws -> NovaHost {
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(#"{"principals": {"uma": "user"}, "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}"#, to: dir + "/policy.json")
        return try NovaHost(paths: HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: dir + "/policy.json"),
                            episodes: await EpisodeLog.open(dataDirectory: dir + "/data"))
    }

    func plan(_ text: String) throws -> Plan { try Plan.parse(JSONValue.parse(text)) }

    @Test func thePlanDocumentInTheEpisodeIsRedacted() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"password": "hunter2", "headers": {"Authorization": "Bearer s3cret"}, "x": 1}}]}"#)
        let request = try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test"))
        let result = await nova.pipeline.execute(request)
        #expect(result.record.status == .succeeded && result.episode != nil)
        let stored = try #require(try await nova.episodes?.show(runId: result.record.runId)).document
        // The plan document and the recorded inputs lose their secrets (echo's output is its
        // input: outputs are what the caller asked for, recorded as returned).
        for part in [stored["plan"], stored["inputs"], stored["steps"]?[0]?["attempts"]?[0]?["input"]] {
            let text = part?.serialized() ?? ""
            #expect(!text.contains("hunter2") && !text.contains("s3cret"), "\(text)")
        }
        #expect(stored["plan"]?["steps"]?[0]?["input"]?["x"] == 1)
        #expect(stored["plan"]?["steps"]?[0]?["input"]?["password"] == Redaction.marker)
    }

    /// Secret keys by name (case and `-`/`_` ignored; "token" only as a suffix), at any depth,
    /// replaced in place; a value without secrets comes back as nil (nothing copied).
    @Test func redactionFindsSecretKeysAndCopiesNothingWithoutThem() throws {
        for key in ["password", "Pass-Word", "api_token", "X-API-Key", "Cookie", "db_dsn", "client_secret", "PRIVATE_KEY"] {
            #expect(Redaction.isSecretKey(key), "\(key)")
        }
        for key in ["", "tok", "max_tokens", "description", "passage", "x"] {
            #expect(!Redaction.isSecretKey(key), "\(key)")
        }
        let clean = try JSONValue.parse(#"{"a": 1, "b": [{"x": "y"}, 2], "c": {"d": null}}"#)
        #expect(Redaction.redacted(clean) == nil)
        #expect(Redaction.redact(clean) == clean)
        let secret = try JSONValue.parse(#"{"z": 1, "password": "p", "a": [{"api_token": "t", "n": 2}, 3], "k": 4, "m": {"k": 5}}"#)
        let red = Redaction.redact(secret, extraKeys: ["k"])
        #expect(red.serialized() == #"{"z":1,"password":"[REDACTED]","a":[{"api_token":"[REDACTED]","n":2},3],"k":"[REDACTED]","m":{"k":5}}"#)
    }

    /// A tool's `x-secret` input fields are redacted from its step's input in the recorded
    /// plan document (only that step's: another step's field of the same name stays).
    @Test func aToolsSecretFieldsLeaveThePlanDocument() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"pin": 1234, "x": 1}}, {"id": "b", "call": "echo.echo", "input": {"pin": 5678}}]}"#)
        let request = try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test"))
        var record = await nova.pipeline.run(request, runId: RunId.make())
        #expect(RunPipeline.redact(record).plan == record.plan, "nothing secret yet")
        record.steps[0].secretInputFields = ["pin"]
        let red = RunPipeline.redact(record)
        #expect(red.plan["steps"]?[0]?["input"] == ["pin": Redaction.marker, "x": 1])
        #expect(red.plan["steps"]?[1]?["input"] == ["pin": 5678])
    }

    /// A run that is the only one in flight when it records commits its own episode (no
    /// hand-off to the committer thread and back); while another run is running, the episode
    /// goes through the committer. (With one processor nothing leads: `asyncWritersMayLead`.)
    @Test func aLoneRunCommitsItsOwnEpisode() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let log = try #require(nova.episodes?.episodes)
        let leads = EpisodeSegmentLog.asyncWritersMayLead ? 1 : 0
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#)
        for _ in 0..<3 {
            let result = await nova.pipeline.execute(try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test")))
            #expect(result.record.status == .succeeded && result.episode != nil)
        }
        #expect(log.leaderCommits == 3 * leads)
        // Another run in flight (counted as running for as long as this test holds it): queued.
        nova.activity.running.add(1, ordering: .relaxed)
        let result = await nova.pipeline.execute(try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test")))
        nova.activity.running.subtract(1, ordering: .relaxed)
        #expect(result.episode != nil)
        #expect(log.leaderCommits == 3 * leads, "a run's episode was committed by its own thread while another run was running")
        #expect(nova.activity.running.load(ordering: .relaxed) == 0 && nova.activity.recording.load(ordering: .relaxed) == 0)
    }

    /// The run manager keeps the last `finishedCapacity` finished runs, oldest out first, also
    /// after its ring of ids wraps around; a cancel before the run starts ends it `cancelled`.
    @Test func finishedRunsAreKeptUpToCapacityAndCancelsReachTheRun() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let runs = RunManager(host: nova, finishedCapacity: 3)
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#)
        var ids: [String] = []
        for _ in 0..<8 {
            let request = try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test"))
            ids.append(try await runs.execute(request).runId)
            let kept = ids.suffix(3), gone = ids.dropLast(3)
            #expect(kept.allSatisfy { runs.snapshot(runId: $0)?.status == .succeeded }, "\(ids.count) runs")
            #expect(gone.allSatisfy { runs.snapshot(runId: $0) == nil }, "\(ids.count) runs")
        }
        let slow = try plan(#"{"steps": [{"id": "a", "call": "echo.sleep", "input": {"ms": 10000}}]}"#)
        let id = RunId.make()
        #expect(runs.cancel(runId: id, beforeStart: true) == .cancelling)
        let request = try await nova.pipeline.prepare(RunSubmission(plan: slow, principal: "uma", origin: "test"))
        let snap = try await runs.execute(request, runId: id)
        #expect(snap.status == .cancelled)
        #expect(snap.record?.error?.contains("by the client") != true)
    }

    @Test func aReferenceThatDoesNotResolveFailsItsStep() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}, {"id": "b", "call": "echo.echo", "input": {"y": "${steps.a.output.missing}"}}]}"#)
        let result = await nova.pipeline.execute(try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test")))
        #expect(result.record.status == .failed)
        #expect(result.record.steps[1].status == .failed && result.record.steps[1].attempts.isEmpty)
        #expect(result.record.steps[1].reason?.contains("steps.a.output.missing: no such path in the value") == true, "\(result.record.steps[1].reason ?? "-")")
        let out = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}], "output": {"v": "${steps.a.output.nope}"}}"#)
        let r2 = await nova.pipeline.execute(try await nova.pipeline.prepare(RunSubmission(plan: out, principal: "uma", origin: "test")))
        #expect(r2.record.status == .failed && r2.record.error?.contains("field 'output'") == true, "\(r2.record.error ?? "-")")
    }

    @Test func prepareChecksInputsOptionsRoleAndToolsInOnePlace() async throws {
        let nova = try await host(Fixtures.tempDir("pipeline"))
        let p = try plan(#"{"inputs": {"n": {"type": "integer"}}, "steps": [{"id": "a", "call": "echo.echo", "input": {"n": "${inputs.n}"}}]}"#)
        func rejection(_ s: RunSubmission) async -> RunRejection? {
            do { _ = try await nova.pipeline.prepare(s); return nil } catch { return error }
        }
        for bad in [0, 65] {
            guard case .invalidOptions(let m)? = await rejection(RunSubmission(plan: p, inputs: ["n": 1], principal: "uma", parallelism: bad, origin: "t")) else {
                Issue.record("parallelism \(bad) accepted"); continue
            }
            #expect(m == "parallelism must be an integer from 1 to 64")
        }
        guard case .invalidInputs? = await rejection(RunSubmission(plan: p, inputs: ["n": "x"], principal: "uma", origin: "t")) else { Issue.record("bad input accepted"); return }
        guard case .unknownRole? = await rejection(RunSubmission(plan: p, inputs: ["n": 1], principal: "uma", role: "ghost", origin: "t")) else { Issue.record("unknown role accepted"); return }
        let unknownTool = try plan(#"{"steps": [{"id": "a", "call": "echo.nope", "input": {}}]}"#)
        guard case .invalidPlan? = await rejection(RunSubmission(plan: unknownTool, principal: "uma", origin: "t")) else { Issue.record("unknown tool accepted"); return }
        let ok = try await nova.pipeline.prepare(RunSubmission(plan: p, inputs: ["n": 2], principal: "uma", origin: "t"))
        #expect(ok.options.parallelism == RunPipeline.defaultParallelism && ok.inputs["n"] == 2)
    }

    /// Issue 10 items 19 and 20 through a driver: canonically equivalent member names stay two
    /// members and integers beyond 64 bits keep every digit — in the step output, the plan
    /// output and the episode stored on disk.
    @Test func toolInputsComeBackWithExactlyTheKeysAndNumbersThatWentIn() async throws {
        let dir = Fixtures.tempDir("pipeline")
        let nova = try await host(dir)
        let input = #"{"\u00e9": 1, "e\u0301": 2, "K": 3, "\u212a": 4, "big": 100000000000000000001, "neg": -18446744073709551617, "huge": 1e400}"#
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": "# + input + #"}], "output": {"v": "${steps.a.output}"}}"#)
        let result = await nova.pipeline.execute(try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test")))
        #expect(result.record.status == .succeeded, "\(result.record.error ?? "-")")
        let expected = try JSONValue.parse(input)
        #expect(expected.objectMembers?.count == 7)
        let output = try #require(result.record.steps[0].output)
        #expect(output == expected && output.objectMembers?.count == 7, "\(output.serialized())")
        #expect(output.serialized(sortedKeys: true) == expected.serialized(sortedKeys: true))
        #expect(output["big"]?.serialized() == "100000000000000000001" && output["neg"]?.serialized() == "-18446744073709551617")
        #expect(result.record.output?["v"] == expected)
        // Read back from disk, not from memory.
        let stored = try await EpisodeLog.open(dataDirectory: dir + "/data").show(runId: result.record.runId).document
        let recorded = try #require(stored["steps"]?[0]?["attempts"]?[0]?["output"])
        #expect(recorded.serialized(sortedKeys: true) == expected.serialized(sortedKeys: true), "\(recorded.serialized())")
    }
}
