import Episodes
import JSON
import Store

/// Where a goal's result came from: the goal, the plan that ran, every tool call with its
/// policy decision, status, error and times, and the episode (seq and hash) that proves it.
/// Built from the goal and its sealed episode, so it says no more and no less than the chain.
extension AgentService {
    /// The provenance of goal `goalId` of agent `ref`.
    public func provenance(_ ref: String, goalId: String) async throws -> JSONValue {
        let agent = try await agent(ref)
        let view = try await goal(goalId)
        guard view.goal.agentId == agent.id else { throw AgentError.notFound("agent \(agent.name) has no goal \(goalId)") }
        var o: [String: JSONValue] = ["goal_id": .string(goalId), "agent_id": .string(agent.id), "goal": .string(view.goal.text),
                                      "status": .string(view.status), "submitted_at": .string(view.goal.createdAt),
                                      "plan": view.job?.payload["plan"] ?? .null, "episode": .null, "calls": .array([]),
                                      "trigger": view.job?.payload["trigger"] ?? .null]
        guard let log = host.episodes, let episode = try? await log.show(runId: goalId) else { return .object(o) }
        let doc = episode.document
        o["plan"] = doc["plan"] ?? o["plan"]
        o["principal"] = doc["principal"] ?? .null
        o["run_status"] = doc["status"] ?? .null
        o["started_at"] = doc["started_at"] ?? .null
        o["finished_at"] = doc["finished_at"] ?? .null
        o["episode"] = ["seq": .int(episode.ref.seq), "hash": .string(episode.ref.hash), "prev_hash": .string(episode.prevHash),
                        "intact": .bool(episode.problem == nil)]
        var calls: [JSONValue] = []
        for step in doc["steps"]?.arrayValue ?? [] {
            for attempt in step["attempts"]?.arrayValue ?? [] {
                calls.append(["step": step["id"] ?? .null, "tool": step["call"] ?? .null, "attempt": attempt["attempt"] ?? .null,
                              "step_status": step["status"] ?? .null, "decision": attempt["decision"] ?? .null,
                              "error": attempt["error"] ?? .null, "started_at": attempt["started_at"] ?? .null,
                              "duration_ms": attempt["duration_ms"] ?? .null])
            }
        }
        o["calls"] = .array(calls)
        return .object(o)
    }

    /// Each goal of the agent with where its proof is (newest first).
    public func provenanceList(_ ref: String, limit: Int, offset: Int) async throws -> [JSONValue] {
        var out: [JSONValue] = []
        for view in try await goals(ref, limit: limit, offset: offset) {
            let indexed = try? await host.episodes?.store.episode(runId: view.goal.id)
            out.append(["goal_id": .string(view.goal.id), "goal": .string(view.goal.text), "status": .string(view.status),
                        "episode": indexed.map { ["seq": .int($0.seq), "hash": .string($0.hash)] } ?? .null])
        }
        return out
    }
}
