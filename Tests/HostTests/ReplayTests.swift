import Foundation
import Host
import JSON
import Testing

/// `nova-host episodes replay` through the real binary: decisions re-derived against a changed
/// profile (allowed → denied, denied → allowed, with the rule ids), nothing on the unchanged
/// one, a folder of exported episodes, and `--rerun` linked with `replay_of`.
@Suite struct ReplayTests {
    /// v1: echo.echo allowed, echo.fail denied.
    static let v1 = """
    { "roles": { "user": {} }, "principals": { "local": "user" },
      "rules": [
        { "id": "no-fail", "effect": "deny", "roles": ["user"], "tools": ["echo.fail"], "reason": "echo.fail is off" },
        { "id": "echo-allowed", "effect": "allow", "roles": ["user"], "tools": ["echo.echo"] } ] }
    """
    /// v2: echo.echo denied by a new rule before the allow.
    static let v2 = """
    { "roles": { "user": {} }, "principals": { "local": "user" },
      "rules": [
        { "id": "no-echo", "effect": "deny", "roles": ["user"], "tools": ["echo.echo"], "reason": "echo is frozen" },
        { "id": "no-fail", "effect": "deny", "roles": ["user"], "tools": ["echo.fail"], "reason": "echo.fail is off" },
        { "id": "echo-allowed", "effect": "allow", "roles": ["user"], "tools": ["echo.echo"] } ] }
    """
    /// v3: echo.fail allowed too.
    static let v3 = """
    { "roles": { "user": {} }, "principals": { "local": "user" },
      "rules": [
        { "id": "fail-allowed", "effect": "allow", "roles": ["user"], "tools": ["echo.fail"] },
        { "id": "echo-allowed", "effect": "allow", "roles": ["user"], "tools": ["echo.echo"] } ] }
    """

    /// v4: echo.echo waits for a person's approval.
    static let v4 = """
    { "roles": { "user": {} }, "principals": { "local": "user" },
      "rules": [
        { "id": "no-fail", "effect": "deny", "roles": ["user"], "tools": ["echo.fail"], "reason": "echo.fail is off" },
        { "id": "echo-approval", "effect": "require_approval", "roles": ["user"], "tools": ["echo.echo"] } ] }
    """

    struct Env {
        let dir: String
        var drivers: String { dir + "/drivers" }
        var data: String { dir + "/data" }
        func policy(_ name: String) -> String { dir + "/\(name).json" }

        init() throws {
            dir = Fixtures.tempDir("replay")
            try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
            try Fixtures.buildEcho(into: dir + "/drivers")
            Fixtures.write(ReplayTests.v1, to: dir + "/v1.json")
            Fixtures.write(ReplayTests.v2, to: dir + "/v2.json")
            Fixtures.write(ReplayTests.v3, to: dir + "/v3.json")
            Fixtures.write(ReplayTests.v4, to: dir + "/v4.json")
        }

        func nova(_ args: [String], policy: String = "v1") async throws -> ProcessResult {
            try await ProcessRunner.run(TestPaths.novaHost, args + ["--data", data, "--drivers", drivers, "--policy", self.policy(policy)])
        }

        /// `nova-host episodes show ID --json` on the data directory.
        func show(_ id: String) async throws -> ProcessResult {
            try await ProcessRunner.run(TestPaths.novaHost, ["episodes", "show", id, "--json", "--data", data])
        }

        /// Runs `plan` (JSON text) under v1 and returns its run id.
        func run(_ plan: String, name: String, inputs: [String] = []) async throws -> String {
            let path = dir + "/\(name).plan.json"
            Fixtures.write(plan, to: path)
            let r = try await nova(["run", path, "--json"] + inputs.flatMap { ["--input", $0] })
            return try #require(try JSONValue.parse(r.stdout)["run_id"]?.stringValue, "\(r)")
        }
    }

    /// a → b, both echo.echo: succeeds under v1.
    static let echoPlan = #"{"name": "echoes", "steps": [{"id": "a", "call": "echo.echo", "input": {"message": "hi"}}, {"id": "b", "call": "echo.echo", "input": {"message": "${steps.a.output.message}"}}]}"#
    /// x (echo.fail) then y (echo.echo): denied at x under v1.
    static let failPlan = #"{"name": "fails", "steps": [{"id": "x", "call": "echo.fail", "input": {}}, {"id": "y", "call": "echo.echo", "input": {"message": "after"}, "depends_on": ["x"]}]}"#

    @Test func replayNamesChangedDecisionsAndNothingOnTheSamePolicy() async throws {
        let env = try Env()
        defer { TestPaths.remove(env.dir) }
        let ok = try await env.run(Self.echoPlan, name: "echoes")
        let denied = try await env.run(Self.failPlan, name: "fails")

        // Unchanged policy: no difference, exit 0.
        for id in [ok, denied] {
            let same = try await env.nova(["episodes", "replay", id])
            #expect(same.status == 0, "\(same)")
            #expect(same.stdout.contains("no difference"), "\(same)")
        }

        // allowed → denied, named by rule, with the steps it would change.
        let nowDenied = try await env.nova(["episodes", "replay", ok, "--json"], policy: "v2")
        #expect(nowDenied.status == 1, "\(nowDenied)")
        let report = try JSONValue.parse(nowDenied.stdout)
        let diffs = report["differences"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(diffs.contains { $0.hasPrefix("call 1 `echo.echo` (step a) was allowed by rule echo-allowed, would now be denied by rule no-echo: echo is frozen") },
                "\(diffs)")
        #expect(report["calls"]?[0]?["change"] == "now_denied")
        #expect(report["replayed_status"] == "denied")
        let steps = report["steps"]?.arrayValue ?? []
        #expect(steps.contains { $0["id"] == "a" && $0["replayed"] == "would be denied" }, "\(steps)")
        #expect(steps.contains { $0["id"] == "b" && $0["replayed"] == "would be skipped" }, "\(steps)")
        // The text form says the same in words.
        let text = try await env.nova(["episodes", "replay", ok], policy: "v2")
        #expect(text.status == 1 && text.stdout.contains("would now be denied by rule no-echo"), "\(text)")

        // denied → allowed: the step would run, and the step its denial skipped too.
        let nowAllowed = try await env.nova(["episodes", "replay", denied, "--json"], policy: "v3")
        #expect(nowAllowed.status == 1, "\(nowAllowed)")
        let r2 = try JSONValue.parse(nowAllowed.stdout)
        let d2 = r2["differences"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(d2.contains { $0.hasPrefix("call 1 `echo.fail` (step x) was denied by rule no-fail, would now be allowed by rule fail-allowed") }, "\(d2)")
        let s2 = r2["steps"]?.arrayValue ?? []
        #expect(s2.contains { $0["id"] == "x" && $0["replayed"] == "would run" }, "\(s2)")
        #expect(s2.contains { $0["id"] == "y" && $0["replayed"] == "would run"
                    && ($0["note"]?.stringValue ?? "").contains("allowed by rule echo-allowed") }, "\(s2)")
        #expect(r2["replayed_status"] == "unknown")

        // allowed → would wait for a person's approval.
        let approval = try await env.nova(["episodes", "replay", ok, "--json"], policy: "v4")
        #expect(approval.status == 1, "\(approval)")
        let r3 = try JSONValue.parse(approval.stdout)
        #expect(r3["calls"]?[0]?["change"] == "now_requires_approval", "\(r3)")
        #expect(r3["calls"]?[0]?["replayed"]?["decision"] == "require_approval")
        let firstDifference = r3["differences"]?[0]?.stringValue ?? ""
        #expect(firstDifference.contains("would now wait for a person's approval (rule echo-approval)"), "\(r3)")
        #expect(r3["steps"]?.arrayValue?.contains { $0["id"] == "a" && $0["replayed"] == "would wait for approval" } == true, "\(r3)")

        // Bad usage: exit 2.
        #expect(try await env.nova(["episodes", "replay", "no-such-run"]).status == 2)
    }

    @Test func replayAFolderOfExportedEpisodes() async throws {
        let env = try Env()
        defer { TestPaths.remove(env.dir) }
        let folder = env.dir + "/exported"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, plan) in [("echoes", Self.echoPlan), ("fails", Self.failPlan)] {
            let id = try await env.run(plan, name: name)
            let shown = try await env.show(id)
            #expect(shown.status == 0, "\(shown)")
            Fixtures.write(shown.stdout, to: folder + "/\(name).json")
        }
        // A folder replays without the data directory.
        let same = try await ProcessRunner.run(TestPaths.novaHost, ["episodes", "replay", folder, "--drivers", env.drivers, "--policy", env.policy("v1"),
                                                                      "--data", env.dir + "/elsewhere"])
        #expect(same.status == 0, "\(same)")
        #expect(same.stdout.contains("2 episodes replayed, 0 with differences"), "\(same)")

        let changed = try await env.nova(["episodes", "replay", folder, "--json"], policy: "v2")
        #expect(changed.status == 1, "\(changed)")
        let out = try JSONValue.parse(changed.stdout)
        #expect(out["replayed"] == 2)
        #expect(out["differing"] == 1)
        let differing = out["episodes"]?.arrayValue?.filter { $0["identical"] == false } ?? []
        #expect(differing.count == 1 && differing[0]["source"]?.stringValue?.hasSuffix("echoes.json") == true, "\(out)")
    }

    @Test func rerunLinksTheNewRunAndRefusesRedactedInputs() async throws {
        let env = try Env()
        defer { TestPaths.remove(env.dir) }
        let original = try await env.run(Self.echoPlan, name: "echoes")
        let rerun = try await env.nova(["episodes", "replay", original, "--rerun", "--json"])
        #expect(rerun.status == 0, "\(rerun)")
        let link = try JSONValue.parse(rerun.stdout)
        #expect(link["replay_of"]?.stringValue == original)
        #expect(link["status"] == "succeeded")
        let newId = try #require(link["run_id"]?.stringValue)
        #expect(newId != original)
        let shown = try JSONValue.parse(try await env.show(newId).stdout)
        #expect(shown["replay_of"]?.stringValue == original)
        #expect(shown["inputs"] == (try JSONValue.parse(try await env.show(original).stdout))["inputs"])

        // A secret input was redacted when recorded: it cannot be rerun.
        let secretPlan = #"{"name": "secret", "inputs": {"password": {"type": "string"}}, "steps": [{"id": "a", "call": "echo.echo", "input": {"message": "x"}}]}"#
        let secret = try await env.run(secretPlan, name: "secret", inputs: ["password=hunter2"])
        let refused = try await env.nova(["episodes", "replay", secret, "--rerun"])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stderr.contains("redacted secrets (password)"), "\(refused)")
    }
}
