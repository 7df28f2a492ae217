import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Drivers
import HostSchemas
import HostSupport
import JSON
import Plans
import Store

/// Why a goal could not be planned.
public enum PlannerError: Error, Sendable, CustomStringConvertible {
    /// The planner cannot be reached or answered badly: the goal stays pending and is retried.
    case unavailable(String)
    /// The planner answered, but with no plan this agent may run: the goal fails, nothing runs.
    case invalid([String])
    /// No rule matches the goal: the goal fails, nothing runs.
    case noMatch(String)

    public var description: String {
        switch self {
        case .unavailable(let m): "the planner is unavailable: \(m)"
        case .invalid(let problems): "the planner's plan is invalid: " + problems.joined(separator: "; ")
        case .noMatch(let m): m
        }
    }
}

/// A plan for a goal, and why this one.
public struct PlannedGoal: Sendable {
    public var plan: JSONValue
    public var explanation: String
}

/// Turns a goal's text into a plan. One interface, two planners (`RulePlanner`,
/// `ChatCompletionsPlanner`), chosen by the agent's `config.planner.kind`.
public protocol GoalPlanner: Sendable {
    func plan(goal: String, agent: Agent, tools: [(id: String, descriptor: ToolDescriptor)]) async throws(PlannerError) -> PlannedGoal
}

/// The planner an agent's configuration names, or nil when it names none.
public enum GoalPlanners {
    public static func planner(for agent: Agent) throws(PlannerError) -> (any GoalPlanner)? {
        guard let config = agent.config["planner"] else { return nil }
        switch config["kind"]?.stringValue {
        case "rules": return try RulePlanner(config: config)
        case "openai": return try ChatCompletionsPlanner(config: config)
        default: throw .invalid(["config.planner.kind must be \"rules\" or \"openai\""])
        }
    }

    /// Whether `plan` is one `agent` may run: the plan schema, the plan model, and the agent's
    /// tools. (The run pipeline then checks drivers, tools and inputs as for any run.)
    static func problems(_ plan: JSONValue, agent: Agent) -> [String] {
        let schema = DocumentSchemas.check(plan, against: DocumentSchemas.plan).map { "\($0.path.isEmpty ? "plan" : $0.path): \($0.message)" }
        if !schema.isEmpty { return schema }
        let parsed: Plan
        do { parsed = try Plan.parse(plan) } catch { return error.errors.map(\.description) }
        guard let tools = agent.tools else { return [] }
        return parsed.steps.filter { !tools.contains($0.call) }.map { "step '\($0.id)': the agent may not use \($0.call)" }
    }
}

/// Maps a goal to a plan by intents: the first rule whose words all appear in the goal (case
/// does not matter) gives its plan. Deterministic; the explanation names the rule and words.
///
/// `config.planner = {"kind": "rules", "rules": [{"intent": "shout", "words": ["shout"], "plan": {…}}]}`
public struct RulePlanner: GoalPlanner {
    struct Rule: Sendable {
        var intent: String
        var words: [String]
        var plan: JSONValue
    }
    let rules: [Rule]

    init(config: JSONValue) throws(PlannerError) {
        guard let list = config["rules"]?.arrayValue, !list.isEmpty else { throw .invalid(["config.planner.rules must be a non-empty array"]) }
        var rules: [Rule] = []
        for (i, r) in list.enumerated() {
            guard let intent = r["intent"]?.stringValue, let words = r["words"]?.arrayValue?.compactMap(\.stringValue), !words.isEmpty,
                  let plan = r["plan"], plan.objectValue != nil else {
                throw .invalid(["config.planner.rules[\(i)] needs intent (string), words (non-empty array of strings) and plan (object)"])
            }
            rules.append(Rule(intent: intent, words: words.map { $0.lowercased() }, plan: plan))
        }
        self.rules = rules
    }

    public func plan(goal: String, agent: Agent, tools: [(id: String, descriptor: ToolDescriptor)]) async throws(PlannerError) -> PlannedGoal {
        let text = goal.lowercased()
        for rule in rules where rule.words.allSatisfy({ text.contains($0) }) {
            let problems = GoalPlanners.problems(rule.plan, agent: agent)
            if !problems.isEmpty { throw .invalid(problems) }
            return PlannedGoal(plan: rule.plan, explanation: "rule planner: intent '\(rule.intent)' (the goal contains \(rule.words.map { "'\($0)'" }.joined(separator: ", ")))")
        }
        throw .noMatch("rule planner: no intent matches the goal (intents: \(rules.map(\.intent).joined(separator: ", ")))")
    }
}

/// Asks an OpenAI-compatible chat-completions endpoint for a plan. The answer must be a plan
/// that validates against the plan schema and the agent's tools before anything runs.
///
/// `config.planner = {"kind": "openai", "endpoint": "https://…/v1", "model": "…",
/// "api_key_env": "OPENAI_API_KEY", "timeout_ms": 30000}` (the key is read from the environment
/// of the worker, never stored in the agent).
public struct ChatCompletionsPlanner: GoalPlanner {
    let endpoint: String
    let model: String
    let apiKeyEnv: String?
    let timeoutMs: Int

    init(config: JSONValue) throws(PlannerError) {
        guard let endpoint = config["endpoint"]?.stringValue, endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
            throw .invalid(["config.planner.endpoint must be an http(s) URL"])
        }
        guard let model = config["model"]?.stringValue, !model.isEmpty else { throw .invalid(["config.planner.model is required"]) }
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.model = model
        apiKeyEnv = config["api_key_env"]?.stringValue
        timeoutMs = config["timeout_ms"]?.intValue ?? 30_000
    }

    static let instructions = """
        You write plans for nova-host. Answer with one JSON object and nothing else:
        {"name": "...", "steps": [{"id": "a", "call": "driver.tool", "input": {...}, "depends_on": ["..."]}], "output": {...}}
        Step ids are [A-Za-z0-9_-]+; a step's input may use "${steps.<id>.output...}" to refer to an earlier step. Use only these tools:
        """

    public func plan(goal: String, agent: Agent, tools: [(id: String, descriptor: ToolDescriptor)]) async throws(PlannerError) -> PlannedGoal {
        let usable = tools.filter { agent.tools?.contains($0.id) ?? true }
        let catalogue = usable.map { "- \($0.id): \($0.descriptor.description) input schema \($0.descriptor.inputSchema.serialized())" }.joined(separator: "\n")
        let body: JSONValue = ["model": .string(model), "temperature": 0,
                               "messages": [["role": "system", "content": .string(Self.instructions + "\n" + catalogue)],
                                            ["role": "user", "content": .string(goal)]]]
        guard let url = URL(string: endpoint + "/chat/completions") else { throw .invalid(["config.planner.endpoint is not a URL"]) }
        var request = URLRequest(url: url, timeoutInterval: Double(timeoutMs) / 1000)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let name = apiKeyEnv, let key = ProcessInfo.processInfo.environment[name] { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        request.httpBody = Data(body.serializedBytes())
        let data: Data
        let response: URLResponse
        do { (data, response) = try await URLSession.shared.data(for: request) } catch {
            throw .unavailable("\(url.host ?? endpoint): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else { throw .unavailable("\(url.host ?? endpoint) answered HTTP \(status)") }
        guard let answer = try? JSONValue.parse(Array(data)), let content = answer["choices"]?[0]?["message"]?["content"]?.stringValue else {
            throw .unavailable("the answer is not a chat completion")
        }
        guard let plan = try? JSONValue.parse(Self.stripFences(content)), plan.objectValue != nil else {
            throw .invalid(["the answer is not a JSON plan: \(content.prefix(200))"])
        }
        let problems = GoalPlanners.problems(plan, agent: agent)
        if !problems.isEmpty { throw .invalid(problems) }
        return PlannedGoal(plan: plan, explanation: "chat-completions planner: model \(model) at \(url.host ?? endpoint)")
    }

    /// The JSON inside a ```json … ``` block, if the model wrapped it.
    static func stripFences(_ s: String) -> String {
        var t = s.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasPrefix("```") {
            t = String(t.drop(while: { $0 != "\n" }).dropFirst())
            if let end = t.range(of: "```", options: .backwards) { t = String(t[..<end.lowerBound]) }
        }
        return t
    }
}

extension GoalPlanners {
    /// The tools the host can run now (every driver that loads), for a planner's catalogue.
    static func catalogue(_ host: NovaHost) async -> [(id: String, descriptor: ToolDescriptor)] {
        var out: [(id: String, descriptor: ToolDescriptor)] = []
        for status in host.registry.statuses() {
            guard let driver = try? await host.registry.driver(named: status.name) else { continue }
            for t in driver.manifest.tools { out.append(("\(driver.manifest.name).\(t.name)", t)) }
        }
        return out
    }

    /// A goal's job payload with the plan its agent's planner made for its text, and why.
    public static func planned(_ payload: JSONValue, agent: Agent, host: NovaHost) async throws(PlannerError) -> (payload: JSONValue, explanation: String) {
        guard let planner = try planner(for: agent) else { throw .noMatch("the goal has no plan and agent \(agent.name) has no planner") }
        let planned = try await planner.plan(goal: payload["goal"]?.stringValue ?? "", agent: agent, tools: await catalogue(host))
        guard case .object(var o) = payload else { return (payload, planned.explanation) }
        o["plan"] = planned.plan
        o["planned_by"] = .string(planned.explanation)
        return (.object(o), planned.explanation)
    }
}
