import Foundation
import Host
import JSON
import Testing

/// Issue 16.1: `nova-host orchestrate` (phases of agents' goals, report, checklist) and
/// `nova-host blueprints apply`, through the real binary on a data directory.
@Suite struct OrchestrateCLITests {
    static func novaHost(_ args: [String], data: String) async throws -> (code: Int32, out: String, err: String) {
        try await AgentCLITests.novaHost(args, data: data)
    }

    @Test func phasesRunInOrderWriteAReportAndStopAtAFailedGoal() async throws {
        let data = EpisodeFixtures.tempDir("orchestrate")
        defer { EpisodeFixtures.remove(data) }
        for (name, tools) in [("shouter", "text.upper"), ("echoer", "echo.echo"), ("writer", "echo.fail")] {
            let created = try await Self.novaHost(["agents", "create", name, "--principal", "local", "--tools", tools], data: data)
            #expect(created.code == 0, "\(created)")
        }
        let file = data + "/release.yaml"
        try """
            name: release-check
            description: Two phases.
            phases:
              - name: shout
                goals:
                  - {agent: shouter, goal: "Shout hi", plan: {steps: [{id: a, call: text.upper, input: {text: hi}}]}}
                  - {agent: shouter, goal: "Shout yo", plan: {steps: [{id: a, call: text.upper, input: {text: yo}}]}}
              - name: echo
                goals:
                  - {agent: echoer, goal: "Echo", plan: {steps: [{id: a, call: echo.echo, input: {done: true}}]}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let run = try await Self.novaHost(["orchestrate", file, "--parallel", "--reports", data + "/reports", "--json"], data: data)
        #expect(run.code == 0, "\(run)")
        let result = try JSONValue.parse(run.out)
        #expect(result["completed"] == true && result["goals"]?.arrayValue?.map { $0["status"] } == ["completed", "completed", "completed"], "\(result)")
        let reportPath = try #require(result["report"]?.stringValue)
        let report = try String(contentsOfFile: reportPath, encoding: .utf8)
        #expect(report.contains("# Orchestration `release-check`") && report.contains("Phase shout (2/2)") && report.contains("Phase echo (1/1)"), "\(report)")
        #expect(report.components(separatedBy: "- [x]").count == 4, "\(report)")
        // The checklist reads where each goal stands; running it again resumes (no new goals).
        let checklist = try await Self.novaHost(["orchestrate", file, "--checklist"], data: data)
        #expect(checklist.code == 0 && checklist.out.components(separatedBy: "- [x]").count == 4, "\(checklist)")
        let again = try await Self.novaHost(["orchestrate", file, "--json", "--reports", data + "/reports"], data: data)
        #expect(try JSONValue.parse(again.out)["goals"]?[0]?["goal_id"] == result["goals"]?[0]?["goal_id"], "\(again)")

        // A goal that does not complete stops the orchestration: the next phase never starts.
        let failing = data + "/failing.json"
        try #"{"name": "stops", "phases": [{"name": "write", "goals": [{"agent": "writer", "goal": "write", "plan": {"steps": [{"id": "w", "call": "echo.fail", "input": {}}]}}]}, {"name": "after", "goals": [{"agent": "echoer", "goal": "never", "plan": {"steps": [{"id": "a", "call": "echo.echo", "input": {}}]}}]}]}"#
            .write(toFile: failing, atomically: true, encoding: .utf8)
        let stopped = try await Self.novaHost(["orchestrate", failing, "--json", "--reports", data + "/reports"], data: data)
        #expect(stopped.code == 1, "\(stopped)")
        let s = try JSONValue.parse(stopped.out)
        #expect(s["goals"]?[0]?["status"] == "failed" && s["goals"]?[1]?["status"] == "not started", "\(s)")
        let outstanding = try await Self.novaHost(["orchestrate", failing, "--checklist"], data: data)
        #expect(outstanding.code == 1 && outstanding.out.contains("- [!] write") && outstanding.out.contains("- [ ] after"), "\(outstanding)")

        // Invalid documents name the field.
        let bad = data + "/bad.json"
        try #"{"name": "Bad Name", "phases": [{"name": "p", "goals": [{"goal": "no agent"}]}]}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await Self.novaHost(["orchestrate", bad], data: data)
        #expect(refused.code == 2 && refused.err.contains("name") && refused.err.contains("phases[0].goals[0].agent"), "\(refused)")
    }

    @Test func aBlueprintBecomesAnAgentAndATemplateVersion() async throws {
        let data = EpisodeFixtures.tempDir("blueprint-apply")
        defer { EpisodeFixtures.remove(data) }
        let listed = try await ProcessRunner.run(TestPaths.novaHost, ["blueprints", "list", "--json", "--blueprints", TestPaths.root + "/blueprints"])
        let names = try JSONValue.parse(listed.stdout)["blueprints"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        #expect(names.count >= 20 && names.contains("reviewer"), "\(listed)")
        let applied = try await Self.novaHost(["blueprints", "apply", "reviewer", "--name", "rev-1", "--principal", "reviewer-bot", "--json",
                                         "--blueprints", TestPaths.root + "/blueprints", "--param", "diff_file=pr.diff"], data: data)
        #expect(applied.code == 0, "\(applied)")
        let out = try JSONValue.parse(applied.out)
        #expect(out["agent"]?["name"] == "rev-1" && out["agent"]?["role"] == "agent" && out["agent"]?["labels"]?["blueprint"] == "reviewer")
        #expect(out["agent"]?["tools"]?.arrayValue?.contains("shell.exec") == true && out["policy"]?["rules"]?.arrayValue?.isEmpty == false)
        #expect(out["template"]?["params"]?["diff_file"] == "pr.diff")
        let templates = try JSONValue.parse(try await Self.novaHost(["templates", "list", "--json"], data: data).out)
        #expect(templates["templates"]?.arrayValue?.contains { $0["name"] == "reviewer" && $0["source"] == "blueprint:reviewer" } == true, "\(templates)")
        // Every shipped blueprint checks out against the drivers and the built-in tools (the
        // network drivers need a DSN and an endpoint to be created; nothing connects).
        var env = ProcessInfo.processInfo.environment
        env["NOVA_PG_DSN"] = "postgres://nova@127.0.0.1:1/nova"
        env["NOVA_GRAPHQL_ENDPOINT"] = "http://127.0.0.1:1/graphql"
        let validated = try await ProcessRunner.run(TestPaths.novaHost, ["templates", "validate", TestPaths.root + "/blueprints", "--json", "--data", data,
                                                                           "--drivers", TestPaths.root + "/drivers", "--policy", TestPaths.root + "/configs/policy.default.json"],
                                                      environment: env)
        #expect(validated.status == 0, "\(validated.stdout.prefix(2000)) \(validated.stderr)")
        #expect(try JSONValue.parse(validated.stdout)["results"]?.arrayValue?.count == names.count)
        // Without the postgres DSN the same check fails, naming the step and the driver.
        let unconfigured = try await Self.novaHost(["templates", "validate", TestPaths.root + "/blueprints/dba-readonly.yaml"], data: data)
        #expect(unconfigured.code == 2 && unconfigured.out.contains("driver 'postgres' refused its configuration"), "\(unconfigured)")
        // Params that do not fit are refused with the field.
        let badParams = try await Self.novaHost(["blueprints", "apply", "reviewer", "--principal", "x", "--param", "diff_file=", "--blueprints", TestPaths.root + "/blueprints"], data: data)
        #expect(badParams.code == 2 && badParams.err.contains("params.diff_file"), "\(badParams)")
    }
}
