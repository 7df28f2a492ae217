import Foundation
import Host
import JSON
import Testing

/// `nova-host agents|goals|memory …` on a data directory: output, refusals and exit codes
/// (0 done · 1 not there · 2 invalid input, a stale version or a refused transition).
@Suite struct AgentCLITests {
    static func novaHost(_ args: [String], data: String) async throws -> (code: Int32, out: String, err: String) {
        let r = try await ProcessRunner.run(TestPaths.novaHost, args + ["--data", data, "--drivers", TestPaths.root + "/drivers",
                                                                          "--policy", TestPaths.root + "/configs/policy.default.json"])
        return (r.status, r.stdout, r.stderr)
    }

    @Test func agentsGoalsAndMemoryFromTheCommandLine() async throws {
        let data = EpisodeFixtures.tempDir("agent-cli")
        defer { EpisodeFixtures.remove(data) }
        let created = try await Self.novaHost(["agents", "create", "scout", "--principal", "local", "--tools", "text.upper", "--label", "team=blue", "--json"], data: data)
        #expect(created.code == 0, "\(created)")
        #expect(try JSONValue.parse(created.out)["version"] == 1)
        #expect(try await Self.novaHost(["agents", "create", "scout", "--principal", "local"], data: data).code == 2)
        #expect(try await Self.novaHost(["agents", "pause", "scout"], data: data).code == 0)
        let again = try await Self.novaHost(["agents", "pause", "scout"], data: data)
        #expect(again.code == 2 && again.err.contains("allowed: resume, stop, delete"), "\(again)")
        let stale = try await Self.novaHost(["agents", "update", "scout", "--set", #"{"description": "x"}"#, "--if-version", "1"], data: data)
        #expect(stale.code == 2 && stale.err.contains("version is now 2"), "\(stale)")
        #expect(try await Self.novaHost(["agents", "update", "scout", "--set", #"{"description": "x"}"#, "--if-version", "2"], data: data).code == 0)
        #expect(try await Self.novaHost(["agents", "show", "nobody"], data: data).code == 1)
        let versions = try JSONValue.parse(try await Self.novaHost(["agents", "versions", "scout", "--json"], data: data).out)
        #expect(versions["items"]?.arrayValue?.count == 3)

        let plan = #"{"steps": [{"id": "a", "call": "text.upper", "input": {"text": "hi"}}]}"#
        let goal = try await Self.novaHost(["goals", "submit", "scout", "shout", "--plan", plan, "--json"], data: data)
        #expect(goal.code == 0, "\(goal)")
        let goalId = try #require(try JSONValue.parse(goal.out)["id"]?.stringValue)
        #expect(try JSONValue.parse(try await Self.novaHost(["goals", "show", goalId, "--json"], data: data).out)["status"] == "pending")
        #expect(try await Self.novaHost(["goals", "submit", "scout", "no plan"], data: data).code == 2)
        #expect(try await Self.novaHost(["goals", "cancel", goalId], data: data).code == 0)
        #expect(try await Self.novaHost(["goals", "cancel", goalId], data: data).code == 2)

        #expect(try await Self.novaHost(["memory", "put", "scout", "the database migration failed", "--type", "observation"], data: data).code == 0)
        #expect(try await Self.novaHost(["memory", "put", "scout", "lunch"], data: data).code == 0)
        let recalled = try JSONValue.parse(try await Self.novaHost(["memory", "recall", "scout", "database", "--json"], data: data).out)
        #expect(recalled["items"]?.arrayValue?.map { $0["text"] } == ["the database migration failed"])
        // Web-search syntax with punctuation, as an agent writes it: read, never refused.
        let asked = try JSONValue.parse(try await Self.novaHost(["memory", "recall", "scout", "failed? (database", "--json"], data: data).out)
        #expect(asked["items"]?.arrayValue?.map { $0["text"] } == ["the database migration failed"])
        #expect(try await Self.novaHost(["memory", "put", "scout", "x", "--type", "gossip"], data: data).code == 2)
    }
}
