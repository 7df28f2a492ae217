import Foundation
import HostSupport
import JSON

/// Where an agent is in its lifecycle. `deleted` is a tombstone: the row stays (its episodes,
/// goals and memory keep their provenance) but it takes no goals and is hidden from listings.
public enum AgentStatus: String, Sendable, CaseIterable, Codable {
    case active, paused, stopped, deleted
}

/// An operator's lifecycle action on an agent.
public enum AgentAction: String, Sendable, CaseIterable {
    case pause, resume, stop, delete

    /// The status the action leads to from `status`, or nil when it is not allowed there.
    public func target(from status: AgentStatus) -> AgentStatus? {
        switch (self, status) {
        case (.pause, .active): .paused
        case (.resume, .paused), (.resume, .stopped): .active
        case (.stop, .active), (.stop, .paused): .stopped
        case (.delete, .active), (.delete, .paused), (.delete, .stopped): .deleted
        default: nil
        }
    }

    /// The actions allowed from `status` (for the 409 that names them).
    public static func allowed(from status: AgentStatus) -> [AgentAction] {
        allCases.filter { $0.target(from: status) != nil }
    }
}

/// A long-lived agent: an identity under the policy that takes goals. Every change makes a new
/// `version`; every version is kept.
public struct Agent: Sendable, Equatable {
    /// A UUID (lower case), assigned at creation.
    public var id: String
    /// Names are unique per namespace (`default` unless given).
    public var namespace: String
    public var name: String
    public var description: String
    /// The principal (and optional role) its runs act as: every call is decided by the policy for it.
    public var principal: String
    public var role: String?
    /// The tools its runs may call, checked in addition to the policy (nil: whatever the policy allows).
    public var tools: [String]?
    /// The plan a goal runs when it names none.
    public var plan: JSONValue?
    /// Free configuration (a JSON object).
    public var config: JSONValue
    /// A JSON Schema `config` must satisfy (set by the agent's definition; templates declare one).
    public var configSchema: JSONValue?
    public var labels: [String: String]
    public var status: AgentStatus
    public var version: Int
    /// ISO 8601 (RFC 3339, UTC).
    public var createdAt: String
    public var updatedAt: String

    public init(id: String = UUID().uuidString.lowercased(), namespace: String = "default", name: String, description: String = "",
                principal: String, role: String? = nil, tools: [String]? = nil, plan: JSONValue? = nil,
                config: JSONValue = .object([:]), labels: [String: String] = [:], status: AgentStatus = .active,
                version: Int = 1, createdAt: String = Timestamps.now(), updatedAt: String? = nil) {
        self.id = id
        self.namespace = namespace
        self.name = name
        self.description = description
        self.principal = principal
        self.role = role
        self.tools = tools
        self.plan = plan
        self.config = config
        self.labels = labels
        self.status = status
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }

    /// The stored and API form.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "namespace": .string(namespace), "name": .string(name), "description": .string(description),
            "principal": .string(principal), "config": config,
            "labels": .object(labels.reduce(into: [:]) { $0[$1.key] = .string($1.value) }),
            "status": .string(status.rawValue), "version": .int(version), "created_at": .string(createdAt), "updated_at": .string(updatedAt),
        ]
        o["role"] = role.map(JSONValue.string) ?? .null
        o["tools"] = tools.map { .array($0.map(JSONValue.string)) } ?? .null
        o["plan"] = plan ?? .null
        o["config_schema"] = configSchema ?? .null
        return .object(o)
    }

    /// Reads the stored form (written by `json`).
    public init(json: JSONValue) throws(AgentStoreError) {
        func text(_ k: String) throws(AgentStoreError) -> String {
            guard let v = json[k]?.stringValue else { throw AgentStoreError.corrupt("agent document without \(k)") }
            return v
        }
        guard let status = AgentStatus(rawValue: try text("status")), let version = json["version"]?.intValue else {
            throw AgentStoreError.corrupt("agent document with a bad status or version")
        }
        self.init(id: try text("id"), namespace: try text("namespace"), name: try text("name"),
                  description: json["description"]?.stringValue ?? "", principal: try text("principal"),
                  role: json["role"]?.stringValue, tools: json["tools"]?.arrayValue?.compactMap(\.stringValue),
                  plan: json["plan"].flatMap { $0 == .null ? JSONValue?.none : $0 }, config: json["config"] ?? .object([:]),
                  labels: (json["labels"]?.objectValue ?? [:]).compactMapValues(\.stringValue),
                  status: status, version: version, createdAt: try text("created_at"), updatedAt: try text("updated_at"))
        configSchema = json["config_schema"].flatMap { $0 == .null ? JSONValue?.none : $0 }
    }

    /// This agent after `action`, as version `version + 1`; nil when `action` is not allowed.
    public func applying(_ action: AgentAction, now: String = Timestamps.now()) -> Agent? {
        guard let next = action.target(from: status) else { return nil }
        var a = self
        a.status = next
        a.version += 1
        a.updatedAt = now
        return a
    }
}

/// What listing agents filters on.
public struct AgentFilter: Sendable {
    public var namespace: String?
    /// nil: every status but `deleted`.
    public var status: AgentStatus?
    /// Only agents with this label set to this value.
    public var label: (key: String, value: String)?
    /// Only agents whose runs act as this principal.
    public var principal: String?
    /// Only agents with this text (case-insensitive) in their name, `namespace/name`, id, or a
    /// label (`key=value`).
    public var search: String?
    public var limit: Int
    public var offset: Int

    public init(namespace: String? = nil, status: AgentStatus? = nil, label: (key: String, value: String)? = nil,
                principal: String? = nil, search: String? = nil, limit: Int = 50, offset: Int = 0) {
        (self.namespace, self.status, self.label, self.limit, self.offset) = (namespace, status, label, limit, offset)
        (self.principal, self.search) = (principal, search)
    }

    /// `search` lower-cased, or nil when there is none (what the stores compare with).
    public var searchKey: String? { search.flatMap { $0.isEmpty ? nil : $0.lowercased() } }
}

/// A goal submitted to an agent: its id is the id of the run (and of the job) that carries it.
public struct Goal: Sendable, Equatable {
    public var id: String
    public var agentId: String
    /// The goal as the caller wrote it.
    public var text: String
    public var createdAt: String
    /// When the goal is cancelled if it has not finished (epoch ms), if given.
    public var deadlineMs: Int64?

    public init(id: String, agentId: String, text: String, createdAt: String = Timestamps.now(), deadlineMs: Int64? = nil) {
        (self.id, self.agentId, self.text, self.createdAt, self.deadlineMs) = (id, agentId, text, createdAt, deadlineMs)
    }
}

/// Why an agent store refused an operation.
public enum AgentStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Another agent in the namespace has the name.
    case nameTaken(namespace: String, name: String)
    /// A stored row does not read back.
    case corrupt(String)

    public var description: String {
        switch self {
        case .nameTaken(let ns, let name): "an agent named '\(name)' already exists in namespace '\(ns)'"
        case .corrupt(let m): "the agent store is corrupt: \(m)"
        }
    }
}

/// Agents and their goals, in the host store (SQLite or PostgreSQL). Changes are
/// compare-and-set on `version`, so two writers never overwrite each other silently.
public protocol AgentStore: Sendable {
    /// Stores a new agent (version 1, as given) and its first version. Throws `nameTaken`.
    func insertAgent(_ agent: Agent) async throws
    /// The agent with `id`, tombstones included.
    func agent(id: String) async throws -> Agent?
    /// The live (not deleted) agent named `name` in `namespace`.
    func agent(namespace: String, name: String) async throws -> Agent?
    /// Agents matching `filter`, by name.
    func listAgents(_ filter: AgentFilter) async throws -> [Agent]
    func countAgents(_ filter: AgentFilter) async throws -> Int
    /// Replaces the agent with `next` (whose version is the stored one + 1) if the stored version
    /// is still `ifVersion`, and keeps `next` as a version. False when it changed meanwhile.
    /// Throws `nameTaken` when a rename collides.
    func replaceAgent(_ next: Agent, ifVersion: Int) async throws -> Bool
    /// Every version of the agent's definition, oldest first.
    func agentVersions(id: String) async throws -> [Agent]
    /// Records a goal (its run is enqueued separately, with the same id).
    func insertGoal(_ goal: Goal) async throws
    func goal(id: String) async throws -> Goal?
    /// The agent's goals, newest first.
    func goals(agentId: String, limit: Int, offset: Int) async throws -> [Goal]
}

extension HostStore {
    /// The store's agents, goals and memory (both shipped stores have them).
    public var agentStore: (any AgentStore & MemoryStore)? { self as? any AgentStore & MemoryStore }
}
