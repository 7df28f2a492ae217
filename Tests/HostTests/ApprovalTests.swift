import Foundation
import Testing
import Host
@testable import Runs
import JSON

/// Issue 16.3: approvals bound to one exact call.
@Suite("Approvals")
struct ApprovalTests {
    static func policy(expires: Int = 3600, selfApproval: Bool = false) -> String {
        """
        {"roles": ["admin", "user", "approver"],
         "principals": {"uma": "user", "ada": "admin", "amy": "approver"},
         "rules": [{"id": "careful-echo", "effect": "require_approval", "roles": ["user", "admin"], "tools": ["echo.echo"]},
                   {"id": "rest", "effect": "allow", "tools": ["*"]}],
         "approvals": {"approver_roles": ["admin", "approver"], "self_approval": \(selfApproval), "expires_in_seconds": \(expires)}}
        """
    }

    func host(_ dir: String, policy: String = ApprovalTests.policy()) async throws -> NovaHost {
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(policy, to: dir + "/policy.json")
        return try NovaHost(paths: HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: dir + "/policy.json"),
                            episodes: await EpisodeLog.open(dataDirectory: dir + "/data"))
    }

    func start(_ nova: NovaHost, _ plan: String, principal: String = "uma") async throws -> Task<RunResult, Never> {
        let request = try await nova.pipeline.prepare(RunSubmission(plan: try Plan.parse(JSONValue.parse(plan)), principal: principal, origin: "test"))
        let pipeline = nova.pipeline
        return Task { await pipeline.execute(request) }
    }

    /// Waits (polling the store, without a time bound: the test runner's timeout is the bound)
    /// until `count` requests with `status` exist.
    func requests(_ service: ApprovalService, _ status: ApprovalStatus = .pending, count: Int = 1) async throws -> [ApprovalRequest] {
        while true {
            let list = try await service.list(status: status)
            if list.count >= count { return list }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    @Test func approvingReleasesThatCallOnlyAndAChangedInputNeedsItsOwnApproval() async throws {
        let nova = try await host(Fixtures.tempDir("approve"))
        let service = ApprovalService(store: try #require(nova.approvalStore), policy: nova.policy)
        let task = try await start(nova, #"{"steps": [{"id": "a", "call": "echo.echo", "input": {"amount": 10}}, {"id": "b", "call": "echo.echo", "depends_on": ["a"], "input": {"amount": 11}}, {"id": "c", "call": "echo.version", "depends_on": ["b"]}]}"#)
        let first = try await requests(service)[0]
        #expect(first.tool == "echo.echo" && first.stepId == "a" && first.rule == "careful-echo" && first.principal == "uma")
        #expect(first.input == ["amount": 10] && first.inputDigest == "sha256:" + SHA256.hex(JSONValue.object(["amount": 10]).canonicalBytes()))
        let approved = try await service.decide(first.id, approve: true, principal: "amy", role: nil, comment: "fine")
        #expect(approved.status == .approved && approved.decidedBy == "amy")
        // Step b calls the same tool with another input: a new request; deny it.
        let second = try await requests(service)[0]
        #expect(second.id != first.id && second.stepId == "b" && second.input == ["amount": 11])
        _ = try await service.decide(second.id, approve: false, principal: "ada", role: nil, comment: "too much")
        let result = await task.value
        #expect(result.record.status == .denied)
        #expect(result.record.steps.map(\.status) == [.succeeded, .denied, .skipped])
        #expect(result.record.steps[1].reason?.contains("denied by ada: too much") == true, "\(result.record.steps[1].reason ?? "")")
        // Both decisions, with who, when and the comment, are in the episode.
        let doc = try #require(try await nova.episodes?.show(runId: result.record.runId)).document
        let a = doc["steps"]?[0]?["attempts"]?[0]
        #expect(a?["approval"]?["decided_by"] == "amy" && a?["approval"]?["comment"] == "fine" && a?["approval"]?["status"] == "approved")
        #expect(a?["decision"]?["decision"] == "allow" && a?["output"] == ["amount": 10])
        #expect(doc["steps"]?[1]?["attempts"]?[0]?["approval"]?["decided_by"] == "ada")
        #expect(doc["steps"]?[1]?["attempts"]?[0]?["approval"]?["decided_at"]?.stringValue?.isEmpty == false)
        // A decided request cannot be decided again.
        await #expect(throws: ApprovalDecisionError.self) { try await service.decide(first.id, approve: false, principal: "ada", role: nil, comment: nil) }
    }

    @Test func whoMayDecideIsThePolicysCall() async throws {
        let nova = try await host(Fixtures.tempDir("who"))
        let service = ApprovalService(store: try #require(nova.approvalStore), policy: nova.policy)
        let task = try await start(nova, #"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#, principal: "ada")
        let req = try await requests(service)[0]
        // A user may not decide; the requester (an admin) may not approve its own call.
        do { _ = try await service.decide(req.id, approve: true, principal: "uma", role: nil, comment: nil); Issue.record("a user decided") } catch {
            guard case .forbidden(let m) = error else { Issue.record("\(error)"); return }
            #expect(m.contains("approver_roles"))
        }
        do { _ = try await service.decide(req.id, approve: true, principal: "ada", role: nil, comment: nil); Issue.record("self-approval passed") } catch {
            guard case .forbidden(let m) = error else { Issue.record("\(error)"); return }
            #expect(m.contains("its own call"))
        }
        _ = try await service.decide(req.id, approve: true, principal: "amy", role: nil, comment: nil)
        #expect(await task.value.record.status == .succeeded)
        // With self_approval allowed, the requester may.
        let lenient = try await host(Fixtures.tempDir("who2"), policy: Self.policy(selfApproval: true))
        let s2 = ApprovalService(store: try #require(lenient.approvalStore), policy: lenient.policy)
        let t2 = try await start(lenient, #"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 2}}]}"#, principal: "ada")
        _ = try await s2.decide(try await requests(s2)[0].id, approve: true, principal: "ada", role: nil, comment: nil)
        #expect(await t2.value.record.status == .succeeded)
    }

    @Test func anExpiredRequestFailsTheStepAndCannotBeApprovedLater() async throws {
        let nova = try await host(Fixtures.tempDir("expire"), policy: Self.policy(expires: 1))
        let service = ApprovalService(store: try #require(nova.approvalStore), policy: nova.policy)
        let task = try await start(nova, #"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#)
        let result = await task.value
        #expect(result.record.status == .failed && result.record.steps[0].reason?.contains("expired") == true, "\(result.record.steps[0].reason ?? "")")
        let expired = try await service.list(status: .expired)
        #expect(expired.count == 1)
        do { _ = try await service.decide(expired[0].id, approve: true, principal: "amy", role: nil, comment: nil); Issue.record("approved after expiry") } catch {
            guard case .notPending(let a) = error else { Issue.record("\(error)"); return }
            #expect(a.status == .expired)
        }
    }

    @Test func aStepFlagAsksEvenWhenThePolicyAllowsAndACancelWhileWaitingIsRecordedCancelled() async throws {
        let nova = try await host(Fixtures.tempDir("flag"))
        let service = ApprovalService(store: try #require(nova.approvalStore), policy: nova.policy)
        let task = try await start(nova, #"{"steps": [{"id": "v", "call": "echo.version", "approval": true}]}"#)
        let req = try await requests(service)[0]
        #expect(req.rule == "step:approval" && req.tool == "echo.version")
        task.cancel()
        let result = await task.value
        #expect(result.record.status == .cancelled && result.record.steps[0].reason?.contains("waiting for approval") == true)
    }

    @Test func theProfilesApprovalsSectionIsChecked() throws {
        for bad in [#"{"roles": ["admin"], "approvals": {"approver_roles": ["ghost"]}}"#, #"{"approvals": {"expires_in_seconds": 0}}"#,
                    #"{"approvals": {"who": 1}}"#, #"{"rules": [{"id": "x", "effect": "maybe"}]}"#] {
            #expect(throws: PolicyError.self, "\(bad)") { try PolicyProfile(json: JSONValue.parse(bad)) }
        }
        let p = try PolicyProfile(json: JSONValue.parse(Self.policy()))
        #expect(p.approvals.approverRoles == ["admin", "approver"] && !p.approvals.selfApproval)
        let engine = PolicyEngine(profile: p)
        let d = engine.decide(GateRequest(runId: "r", principal: "uma", tool: "echo.echo", input: [:], annotations: nil))
        #expect(!d.allowed && d.requiresApproval && d.ruleId == "careful-echo" && d.json["decision"] == "require_approval")
        var approved = GateRequest(runId: "r", principal: "uma", tool: "echo.echo", input: [:], annotations: nil)
        approved.approved = true
        #expect(engine.decide(approved).allowed)
    }
}
