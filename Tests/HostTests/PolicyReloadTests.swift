import Foundation
import Testing
@testable import Host
import JSON

/// Issue 10 item 11: the policy is re-read on demand (SIGHUP, `POST /v1/policy/reload`); a bad
/// file keeps the old profile; runs in flight keep the profile they started with; episodes say
/// which profile decided each call.
@Suite("Policy reload")
struct PolicyReloadTests {
    static let allowEcho = #"{"principals": {"uma": "user"}, "rules": [{"id": "echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"]}]}"#
    static let denyAll = #"{"principals": {"uma": "user"}, "rules": []}"#

    func host(policy text: String, data: Bool = false) throws -> (NovaHost, policyFile: String, dir: String) {
        let dir = Fixtures.tempDir("policy-reload")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        let file = dir + "/policy.json"
        Fixtures.write(text, to: file)
        let paths = HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: file)
        let episodes = data ? try EpisodeLog(dataDirectory: dir + "/data") : nil
        return (try NovaHost(paths: paths, episodes: episodes), file, dir)
    }

    func call(_ run: String) -> GateRequest {
        GateRequest(runId: run, principal: "uma", tool: "echo.echo", input: .object([:]), annotations: nil)
    }

    @Test func newRunsUseTheNewProfileAndRunsInFlightKeepTheirs() throws {
        let (nova, file, _) = try host(policy: Self.allowEcho)
        let before = nova.policy.decide(call("in-flight"))
        #expect(before.allowed && before.profileHash == nova.policyStatus.hash)

        Fixtures.write(Self.denyAll, to: file)
        let report = nova.reloadPolicy()
        #expect(report.outcome == .reloaded && report.previousHash == before.profileHash && report.hash != before.profileHash)
        #expect(nova.policyStatus.hash == report.hash && nova.policyStatus.reloadError == nil)

        // The run that started before the reload goes on under the profile it started with.
        let pinned = nova.policy.decide(call("in-flight"))
        #expect(pinned.allowed && pinned.profileHash == before.profileHash)
        // A run that starts now is decided by the new profile.
        let fresh = nova.policy.decide(call("new"))
        #expect(!fresh.allowed && fresh.ruleId == "default-deny" && fresh.profileHash == report.hash)
        // Once the old run ends, its id means nothing any more.
        nova.policy.endRun("in-flight")
        #expect(!nova.policy.decide(call("in-flight")).allowed)
    }

    @Test func aRoleBoundBeforeTheReloadPinsTheRun() throws {
        let (nova, file, _) = try host(policy: Self.allowEcho)
        try nova.policy.bindRole("user", toRun: "bound")
        Fixtures.write(Self.denyAll, to: file)
        #expect(nova.reloadPolicy().outcome == .reloaded)
        #expect(nova.policy.decide(call("bound")).allowed)
    }

    @Test func anInvalidFileKeepsTheOldProfileAndIsReported() throws {
        let (nova, file, _) = try host(policy: Self.allowEcho)
        let hash = nova.policyStatus.hash
        for (text, expected) in [("{ not json", "not valid JSON"),
                                 (#"{"rules": [{"id": "x", "effect": "perhaps"}]}"#, "rules[0].effect"),
                                 (#"{"principals": {"uma": "nobody-role"}}"#, "unknown role")] {
            Fixtures.write(text, to: file)
            let report = nova.reloadPolicy()
            #expect(report.outcome == .failed && report.hash == hash, "\(text)")
            #expect(report.error?.contains(expected) == true, "\(report.error ?? "no error")")
            #expect(nova.policyStatus.reloadError == report.error && nova.policyStatus.hash == hash)
            #expect(nova.policy.decide(call("r-\(text.count)")).allowed)
        }
        try FileManager.default.removeItem(atPath: file)
        #expect(nova.reloadPolicy().error?.contains("cannot read policy file") == true)
        // A later good reload clears the error.
        Fixtures.write(Self.denyAll, to: file)
        #expect(nova.reloadPolicy().outcome == .reloaded && nova.policyStatus.reloadError == nil)
    }

    @Test func aCheckerCanRefuseTheNewProfile() throws {
        let (nova, file, _) = try host(policy: Self.allowEcho)
        Fixtures.write(Self.denyAll, to: file)
        let report = nova.reloadPolicy { _ in ["api key 'k': role 'gone' is not a role of the policy"] }
        #expect(report.outcome == .failed && report.error?.contains("role 'gone'") == true)
        #expect(nova.policy.decide(call("r")).allowed)
    }

    @Test func theSameProfileReformattedIsUnchanged() throws {
        let (nova, file, _) = try host(policy: Self.allowEcho)
        let hash = nova.policyStatus.hash
        let reformatted = try JSONValue.parse(Array(Self.allowEcho.utf8)).serialized(pretty: true)
        Fixtures.write(reformatted, to: file)
        let report = nova.reloadPolicy()
        #expect(report.outcome == .unchanged && report.hash == hash)
    }

    @Test func theEpisodeRecordsWhichProfileDecidedEachCall() async throws {
        let (nova, _, _) = try host(policy: Self.allowEcho, data: true)
        let plan = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#))
        let (record, ref, error) = await nova.run(plan, inputs: [:], principal: "uma")
        #expect(record.status == .succeeded && ref != nil && error == nil)
        let episode = try #require(try nova.episodes?.show(runId: record.runId))
        let decision = episode.document["steps"]?[0]?["attempts"]?[0]?["decision"]
        #expect(decision?["policy"]?.stringValue == nova.policyStatus.hash)
        #expect(nova.policyStatus.hash.hasPrefix("sha256:") && nova.policyStatus.hash.count == 7 + 64)
    }
}

/// Issue 11.1: the one run pipeline (prepare → bind inputs → validate → run → redact → record).
@Suite("Run pipeline")
struct RunPipelineTests {
    func host(_ dir: String) throws -> NovaHost {
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(#"{"principals": {"uma": "user"}, "rules": [{"id": "all", "effect": "allow", "tools": ["*"]}]}"#, to: dir + "/policy.json")
        return try NovaHost(paths: HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: dir + "/policy.json"),
                            episodes: EpisodeLog(dataDirectory: dir + "/data"))
    }

    func plan(_ text: String) throws -> Plan { try Plan.parse(JSONValue.parse(text)) }

    @Test func thePlanDocumentInTheEpisodeIsRedacted() async throws {
        let nova = try host(Fixtures.tempDir("pipeline"))
        let p = try plan(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"password": "hunter2", "headers": {"Authorization": "Bearer s3cret"}, "x": 1}}]}"#)
        let request = try await nova.pipeline.prepare(RunSubmission(plan: p, principal: "uma", origin: "test"))
        let result = await nova.pipeline.execute(request)
        #expect(result.record.status == .succeeded && result.episode != nil)
        let stored = try #require(try nova.episodes?.show(runId: result.record.runId)).document
        // The plan document and the recorded inputs lose their secrets (echo's output is its
        // input: outputs are what the caller asked for, recorded as returned).
        for part in [stored["plan"], stored["inputs"], stored["steps"]?[0]?["attempts"]?[0]?["input"]] {
            let text = part?.serialized() ?? ""
            #expect(!text.contains("hunter2") && !text.contains("s3cret"), "\(text)")
        }
        #expect(stored["plan"]?["steps"]?[0]?["input"]?["x"] == 1)
        #expect(stored["plan"]?["steps"]?[0]?["input"]?["password"] == Redaction.marker)
    }

    @Test func aReferenceThatDoesNotResolveFailsItsStep() async throws {
        let nova = try host(Fixtures.tempDir("pipeline"))
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
        let nova = try host(Fixtures.tempDir("pipeline"))
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
}
