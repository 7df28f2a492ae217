import Foundation
import Testing
import Host
@testable import Runs
import JSON

/// Issue 10 item 11: the policy is re-read on demand (SIGHUP, `POST /v1/policy/reload`); a bad
/// file keeps the old profile; runs in flight keep the profile they started with; episodes say
/// which profile decided each call.
@Suite("Policy reload")
struct PolicyReloadTests {
    static let allowEcho = #"{"principals": {"uma": "user"}, "rules": [{"id": "echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"]}]}"#
    static let denyAll = #"{"principals": {"uma": "user"}, "rules": []}"#

    func host(policy text: String, data: Bool = false) async throws -> (NovaHost, policyFile: String, dir: String) {
        let dir = Fixtures.tempDir("policy-reload")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        let file = dir + "/policy.json"
        Fixtures.write(text, to: file)
        let paths = HostPaths(driversDirectory: dir + "/drivers", dataDirectory: dir + "/data", policyFile: file)
        let episodes = data ? try await EpisodeLog.open(dataDirectory: dir + "/data") : nil
        return (try NovaHost(paths: paths, episodes: episodes), file, dir)
    }

    func call(_ run: String) -> GateRequest {
        GateRequest(runId: run, principal: "uma", tool: "echo.echo", input: .object([:]), annotations: nil)
    }

    @Test func newRunsUseTheNewProfileAndRunsInFlightKeepTheirs() async throws {
        let (nova, file, _) = try await host(policy: Self.allowEcho)
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

    @Test func aRoleBoundBeforeTheReloadPinsTheRun() async throws {
        let (nova, file, _) = try await host(policy: Self.allowEcho)
        try nova.policy.bindRole("user", toRun: "bound")
        Fixtures.write(Self.denyAll, to: file)
        #expect(nova.reloadPolicy().outcome == .reloaded)
        #expect(nova.policy.decide(call("bound")).allowed)
    }

    @Test func anInvalidFileKeepsTheOldProfileAndIsReported() async throws {
        let (nova, file, _) = try await host(policy: Self.allowEcho)
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

    @Test func aCheckerCanRefuseTheNewProfile() async throws {
        let (nova, file, _) = try await host(policy: Self.allowEcho)
        Fixtures.write(Self.denyAll, to: file)
        let report = nova.reloadPolicy { _ in ["api key 'k': role 'gone' is not a role of the policy"] }
        #expect(report.outcome == .failed && report.error?.contains("role 'gone'") == true)
        #expect(nova.policy.decide(call("r")).allowed)
    }

    @Test func theSameProfileReformattedIsUnchanged() async throws {
        let (nova, file, _) = try await host(policy: Self.allowEcho)
        let hash = nova.policyStatus.hash
        let reformatted = try JSONValue.parse(Array(Self.allowEcho.utf8)).serialized(pretty: true)
        Fixtures.write(reformatted, to: file)
        let report = nova.reloadPolicy()
        #expect(report.outcome == .unchanged && report.hash == hash)
    }

    @Test func theEpisodeRecordsWhichProfileDecidedEachCall() async throws {
        let (nova, _, _) = try await host(policy: Self.allowEcho, data: true)
        let plan = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"x": 1}}]}"#))
        let (record, ref, error) = await nova.run(plan, inputs: [:], principal: "uma")
        #expect(record.status == .succeeded && ref != nil && error == nil)
        let episode = try #require(try await nova.episodes?.show(runId: record.runId))
        let decision = episode.document["steps"]?[0]?["attempts"]?[0]?["decision"]
        #expect(decision?["policy"]?.stringValue == nova.policyStatus.hash)
        #expect(nova.policyStatus.hash.hasPrefix("sha256:") && nova.policyStatus.hash.count == 7 + 64)
    }
}
