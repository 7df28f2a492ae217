import Foundation
import JSON
import Schema
import Drivers
import HostSchemas
import HostSupport

/// A glob over tool ids: `*` matches any run of characters (`http.*`, `*`, `postgres.query`).
public struct ToolPattern: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    private let parts: [Substring]
    public init(_ text: String) {
        self.text = text
        self.parts = text.split(separator: "*", omittingEmptySubsequences: false)
    }
    public var description: String { text }

    /// True if `value` matches the glob.
    public func matches(_ value: String) -> Bool { Glob.match(parts: parts, value) }
}

enum Glob {
    // Byte-wise on UTF-8: Foundation's `range(of:)` costs tens of microseconds on Linux, and
    // this runs on the policy hot path.
    static func match(parts: [Substring], _ value: String) -> Bool {
        var value = value
        return value.withUTF8 { v in
            if parts.count == 1 { return equal(v[...], parts[0]) }
            guard hasPrefix(v[...], parts[0]) else { return false }
            var pos = parts[0].utf8.count
            for part in parts.dropFirst().dropLast() where !part.isEmpty {
                guard let found = find(part, in: v, from: pos) else { return false }
                pos = found + part.utf8.count
            }
            let last = parts.last!.utf8
            return v.count - pos >= last.count && hasSuffix(v, parts.last!)
        }
    }

    static func match(_ pattern: String, _ value: String) -> Bool {
        match(parts: pattern.split(separator: "*", omittingEmptySubsequences: false), value)
    }

    private static func equal(_ v: Slice<UnsafeBufferPointer<UInt8>>, _ p: Substring) -> Bool {
        v.count == p.utf8.count && zip(v, p.utf8).allSatisfy { $0 == $1 }
    }
    private static func hasPrefix(_ v: Slice<UnsafeBufferPointer<UInt8>>, _ p: Substring) -> Bool {
        v.count >= p.utf8.count && zip(v, p.utf8).allSatisfy { $0 == $1 }
    }
    private static func hasSuffix(_ v: UnsafeBufferPointer<UInt8>, _ p: Substring) -> Bool {
        let n = p.utf8.count
        return v.count >= n && zip(v[(v.count - n)...], p.utf8).allSatisfy { $0 == $1 }
    }
    private static func find(_ p: Substring, in v: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        let needle = Array(p.utf8)
        guard needle.count <= v.count - start else { return nil }
        var i = start
        while i + needle.count <= v.count {
            if v[i] == needle[0] {
                var j = 1
                while j < needle.count && v[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

/// Conditions a rule puts on a call's input. A rule applies only when all its conditions hold.
public struct RuleConditions: Sendable {
    /// `http_hosts`: the host of `input.url` must match one of these globs (`api.example.com`, `*.corp`).
    public var httpHosts: [String]?
    /// `shell_programs`: `input.program` must be one of these absolute paths.
    public var shellPrograms: [String]?
    /// `shell_args`: per program, every argument must match one of the regular expressions
    /// (ECMA-262, whole argument), compiled when the profile loads.
    public var shellArgs: [String: [WholeMatchRegex]]?
    /// `postgres_read_only`: the call must be read-only (tool annotated readOnlyHint, no `allow_write`).
    public var postgresReadOnly: Bool?
    /// `read_only`: the tool must be annotated readOnlyHint.
    public var readOnly: Bool?
    /// `graphql_operations`: which GraphQL operation kinds are allowed (`query`, `mutation`, `subscription`).
    public var graphqlOperations: [String]?
    /// `namespaces`: the shared namespaces (globs) the call may read or write.
    public var namespaces: [String]?
    /// `topics`: the bus topics (globs) the call may publish to.
    public var topics: [String]?
    /// `agents`: the agents (globs of ids or names) the call may message.
    public var agents: [String]?
    /// `subscriptions`: the bus subscriptions (globs) the call may receive from or settle.
    public var subscriptions: [String]?

    public var isEmpty: Bool {
        httpHosts == nil && shellPrograms == nil && shellArgs == nil && postgresReadOnly == nil && readOnly == nil && graphqlOperations == nil
            && namespaces == nil && topics == nil && agents == nil && subscriptions == nil
    }

    /// Each condition set here with the policy inputs it cannot be evaluated without. A tool
    /// that does not declare one of them (`policyInputs` in its manifest) never satisfies the
    /// condition. `allow_write` is optional for `postgres_read_only` (read by it when declared).
    var conditionInputs: [(name: String, inputs: [PolicyInputs.Attribute])] {
        var out: [(String, [PolicyInputs.Attribute])] = []
        if httpHosts != nil { out.append(("http_hosts", [.url])) }
        if shellPrograms != nil { out.append(("shell_programs", [.program])) }
        if shellArgs != nil { out.append(("shell_args", [.program, .args])) }
        if graphqlOperations != nil { out.append(("graphql_operations", [.graphqlDocument])) }
        if namespaces != nil { out.append(("namespaces", [.namespace])) }
        if topics != nil { out.append(("topics", [.topic])) }
        if agents != nil { out.append(("agents", [.agent])) }
        if subscriptions != nil { out.append(("subscriptions", [.subscription])) }
        return out
    }

    /// The policy inputs a tool must declare for these conditions to be evaluated.
    public var requiredInputs: [PolicyInputs.Attribute] {
        var seen: [PolicyInputs.Attribute] = []
        for (_, inputs) in conditionInputs { for a in inputs where !seen.contains(a) { seen.append(a) } }
        return seen
    }

    /// The conditions set here that need `attribute`.
    func names(needing attribute: PolicyInputs.Attribute) -> [String] {
        conditionInputs.filter { $0.inputs.contains(attribute) }.map(\.name)
    }

    /// Whether any condition depends on the call's input (not only on the tool's annotations).
    public var dependsOnInput: Bool { !conditionInputs.isEmpty || postgresReadOnly != nil }
}

/// One ordered rule: the first rule whose roles, tools and conditions match decides.
public struct PolicyRule: Sendable {
    /// `require_approval`: the call waits until a person approves that exact call (then rate
    /// limits and budgets apply as for `allow`).
    public enum Effect: String, Sendable { case allow, deny, requireApproval = "require_approval" }
    public var id: String
    public var effect: Effect
    public var roles: [String]?
    public var principals: [String]?
    public var tools: [ToolPattern]
    public var conditions: RuleConditions
    public var reason: String?
}

extension PolicyRule {
    /// Why this rule cannot be evaluated for `tool`: it names the tool exactly (not through a
    /// glob) but one of its conditions needs a policy input the tool does not declare. Such a
    /// profile is refused where the tool is known (reload, `nova-host policy validate`) and
    /// the call is denied. A glob (`http.*`, `*`) may cover tools without the input: for them
    /// the condition simply does not hold.
    public func problem(tool: String, inputs: PolicyInputs) -> String? {
        guard !conditions.isEmpty, tools.contains(where: { $0.text == tool }) else { return nil }
        guard let missing = conditions.requiredInputs.first(where: { !inputs.declares($0) }) else { return nil }
        return "rule '\(id)': \(conditions.names(needing: missing).joined(separator: ", ")) needs policy input '\(missing.rawValue)', "
            + "which tool \(tool) does not declare (policyInputs in its manifest)"
    }
}

/// A token bucket: `capacity` calls, refilled at `refillPerSecond`.
public struct RateLimitSpec: Sendable {
    public enum Scope: String, Sendable { case principal, tool }
    public var id: String
    public var scope: Scope
    public var tools: [ToolPattern]
    public var capacity: Double
    public var refillPerSecond: Double
}

/// A budget: limits on calls, tokens and wall time, per run or per principal per window.
public struct BudgetSpec: Sendable {
    public enum Scope: String, Sendable { case run, principal }
    public var id: String
    public var scope: Scope
    public var tools: [ToolPattern]
    public var calls: Int?
    public var tokens: UInt64?
    public var wallMs: Int?
    /// For `principal` scope: the window length in seconds.
    public var windowSeconds: Int
}

/// A parsed policy profile (see `schemas/policy.schema.json`).
public struct PolicyProfile: Sendable {
    public var roles: [String]
    public var principals: [String: String]
    /// Role of principals not listed; nil means unknown principals are denied.
    public var defaultRole: String?
    public private(set) var rules: [PolicyRule]
    public private(set) var rateLimits: [RateLimitSpec]
    public private(set) var budgets: [BudgetSpec]
    /// Who may approve calls waiting for approval, and for how long a request stays open.
    public var approvals: ApprovalSettings
    /// The rules, limits and budgets compiled for decisions (read-only above, so it stays true).
    let index: PolicyIndex
    public var raw: JSONValue
    /// `sha256:` + the SHA-256 of the profile's canonical JSON (RFC 8785 style: sorted keys, no
    /// whitespace): the same profile always has the same hash, whatever the file's formatting.
    /// Every decision carries it, so an episode says which profile decided each call.
    public var hash: String

    /// Parses a profile. Errors name the field (`rules[2].effect`).
    public init(json: JSONValue) throws(PolicyError) {
        guard let root = json.objectValue else { throw PolicyError("a policy profile is a JSON object") }
        raw = json
        hash = "sha256:" + SHA256.hex(json.canonicalBytes())
        var roles: [String] = []
        if let r = root["roles"] {
            if let obj = r.objectValue { roles = obj.keys.sorted() } else if let arr = r.arrayValue { roles = arr.compactMap(\.stringValue) } else {
                throw PolicyError("roles must be an object or an array of role names")
            }
        }
        if roles.isEmpty { roles = ["admin", "user", "service"] }
        self.roles = roles
        var principals: [String: String] = [:]
        for (name, v) in root["principals"]?.objectValue ?? [:] {
            guard let role = v.stringValue ?? v["role"]?.stringValue else { throw PolicyError("principals.\(name) must name a role") }
            guard roles.contains(role) else { throw PolicyError("principals.\(name): unknown role '\(role)' (roles: \(roles.joined(separator: ", ")))") }
            principals[name] = role
        }
        self.principals = principals
        defaultRole = root["default_role"]?.stringValue
        if let d = defaultRole, !roles.contains(d) { throw PolicyError("default_role: unknown role '\(d)'") }

        var rules: [PolicyRule] = []
        var ids = Set<String>()
        for (i, r) in (root["rules"]?.arrayValue ?? []).enumerated() {
            let at = "rules[\(i)]"
            guard let o = r.objectValue else { throw PolicyError("\(at) must be an object") }
            guard let id = o["id"]?.stringValue, !id.isEmpty else { throw PolicyError("\(at).id is missing") }
            guard ids.insert(id).inserted else { throw PolicyError("\(at).id '\(id)' is used twice") }
            guard let e = o["effect"]?.stringValue, let effect = PolicyRule.Effect(rawValue: e) else {
                throw PolicyError("\(at).effect must be \"allow\", \"deny\" or \"require_approval\"")
            }
            let tools = try Self.patterns(o["tools"], at: "\(at).tools") ?? [ToolPattern("*")]
            let rolesList = o["roles"]?.arrayValue?.compactMap(\.stringValue)
            for role in rolesList ?? [] where !roles.contains(role) { throw PolicyError("\(at).roles: unknown role '\(role)'") }
            let c = o["conditions"]?.objectValue ?? [:]
            var cond = RuleConditions()
            cond.httpHosts = c["http_hosts"]?.arrayValue?.compactMap { $0.stringValue?.lowercased() }
            cond.shellPrograms = c["shell_programs"]?.arrayValue?.compactMap(\.stringValue)
            for p in cond.shellPrograms ?? [] where !p.hasPrefix("/") { throw PolicyError("\(at).conditions.shell_programs: '\(p)' must be an absolute path") }
            if let sa = c["shell_args"]?.objectValue {
                var m: [String: [WholeMatchRegex]] = [:]
                for (k, v) in sa {
                    var compiled: [WholeMatchRegex] = []
                    for p in v.arrayValue?.compactMap(\.stringValue) ?? [] {
                        do { compiled.append(try WholeMatchRegex(p)) } catch { throw PolicyError("\(at).conditions.shell_args[\(k)]: \(error.message)") }
                    }
                    m[k] = compiled
                }
                cond.shellArgs = m
            }
            cond.postgresReadOnly = c["postgres_read_only"]?.boolValue
            cond.readOnly = c["read_only"]?.boolValue
            cond.graphqlOperations = c["graphql_operations"]?.arrayValue?.compactMap(\.stringValue)
            cond.namespaces = c["namespaces"]?.arrayValue?.compactMap(\.stringValue)
            cond.topics = c["topics"]?.arrayValue?.compactMap(\.stringValue)
            cond.agents = c["agents"]?.arrayValue?.compactMap(\.stringValue)
            cond.subscriptions = c["subscriptions"]?.arrayValue?.compactMap(\.stringValue)
            let known: Set<String> = ["http_hosts", "shell_programs", "shell_args", "postgres_read_only", "read_only", "graphql_operations",
                                      "namespaces", "topics", "agents", "subscriptions"]
            for k in c.keys where !known.contains(k) { throw PolicyError("\(at).conditions.\(k) is not a known condition (\(known.sorted().joined(separator: ", ")))") }
            rules.append(PolicyRule(id: id, effect: effect, roles: rolesList, principals: o["principals"]?.arrayValue?.compactMap(\.stringValue),
                                    tools: tools, conditions: cond, reason: o["reason"]?.stringValue))
        }
        self.rules = rules

        var limits: [RateLimitSpec] = []
        for (i, r) in (root["rate_limits"]?.arrayValue ?? []).enumerated() {
            let at = "rate_limits[\(i)]"
            guard let o = r.objectValue, let id = o["id"]?.stringValue else { throw PolicyError("\(at) needs an id") }
            guard let s = o["scope"]?.stringValue, let scope = RateLimitSpec.Scope(rawValue: s) else { throw PolicyError("\(at).scope must be \"principal\" or \"tool\"") }
            guard let cap = o["capacity"]?.doubleValue, cap >= 1 else { throw PolicyError("\(at).capacity must be a number ≥ 1") }
            guard let refill = o["refill_per_second"]?.doubleValue, refill >= 0 else { throw PolicyError("\(at).refill_per_second must be a number ≥ 0") }
            limits.append(RateLimitSpec(id: id, scope: scope, tools: try Self.patterns(o["tools"], at: "\(at).tools") ?? [ToolPattern("*")],
                                        capacity: cap, refillPerSecond: refill))
        }
        rateLimits = limits

        var budgets: [BudgetSpec] = []
        for (i, b) in (root["budgets"]?.arrayValue ?? []).enumerated() {
            let at = "budgets[\(i)]"
            guard let o = b.objectValue, let id = o["id"]?.stringValue else { throw PolicyError("\(at) needs an id") }
            guard let s = o["scope"]?.stringValue, let scope = BudgetSpec.Scope(rawValue: s) else { throw PolicyError("\(at).scope must be \"run\" or \"principal\"") }
            let window = o["window_seconds"]?.intValue ?? 86_400
            if scope == .principal && window <= 0 { throw PolicyError("\(at).window_seconds must be positive") }
            budgets.append(BudgetSpec(id: id, scope: scope, tools: try Self.patterns(o["tools"], at: "\(at).tools") ?? [ToolPattern("*")],
                                      calls: o["calls"]?.intValue, tokens: o["tokens"]?.intValue.map { UInt64(max(0, $0)) },
                                      wallMs: o["wall_ms"]?.intValue, windowSeconds: window))
        }
        self.budgets = budgets
        approvals = try ApprovalSettings(root["approvals"], roles: roles)
        index = PolicyIndex(rules: rules, limits: limits, budgets: budgets)
    }

    static func patterns(_ v: JSONValue?, at: String) throws(PolicyError) -> [ToolPattern]? {
        guard let v else { return nil }
        if let s = v.stringValue { return [ToolPattern(s)] }
        guard let arr = v.arrayValue, arr.allSatisfy({ $0.stringValue != nil }) else { throw PolicyError("\(at) must be a tool pattern or an array of them") }
        return arr.compactMap(\.stringValue).map(ToolPattern.init)
    }

    /// Rules that cannot be evaluated for these tools (see `PolicyRule.problem`).
    public func problems(tools: [(id: String, inputs: PolicyInputs)]) -> [String] {
        rules.flatMap { rule in tools.compactMap { rule.problem(tool: $0.id, inputs: $0.inputs) } }
    }

    /// The role of a principal, if it has one.
    public func role(of principal: String) -> String? { principals[principal] ?? defaultRole }
}

/// An invalid policy profile or an internal policy failure.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension PolicyProfile {
    /// Reads and checks a policy profile; no file means an empty profile that denies everything.
    public static func load(_ path: String?) throws(PolicyError) -> PolicyProfile {
        guard let path else { return try PolicyProfile(json: .object([:])) }
        guard let data = FileManager.default.contents(atPath: path) else { throw PolicyError("cannot read policy file \(path)") }
        let json: JSONValue
        do { json = try JSONValue.parse(Array(data)) } catch { throw PolicyError("\(path) is not valid JSON: \(error)") }
        let problems = DocumentSchemas.check(json, against: DocumentSchemas.policy)
        if let first = problems.first {
            throw PolicyError("\(path): \(first.path.isEmpty ? "" : first.path + ": ")\(first.message) (see schemas/policy.schema.json)")
        }
        do { return try PolicyProfile(json: json) } catch { throw PolicyError("\(path): \(error.message)") }
    }
}

/// The profile's `approvals`: which roles may approve or deny a waiting call, whether the
/// principal whose call waits may decide it, and how long a request stays open.
public struct ApprovalSettings: Sendable, Equatable {
    public var approverRoles: [String] = ["admin"]
    public var selfApproval = false
    public var expiresInSeconds = 3_600

    init(_ json: JSONValue?, roles: [String]) throws(PolicyError) {
        guard let json else { return }
        guard let o = json.objectValue else { throw PolicyError("approvals must be an object") }
        for k in o.keys where !["approver_roles", "self_approval", "expires_in_seconds"].contains(k) {
            throw PolicyError("approvals.\(k) is not a known field (approver_roles, self_approval, expires_in_seconds)")
        }
        if let r = o["approver_roles"] {
            guard let list = r.arrayValue?.compactMap(\.stringValue), list.count == r.arrayValue?.count else {
                throw PolicyError("approvals.approver_roles must be an array of role names")
            }
            for role in list where !roles.contains(role) { throw PolicyError("approvals.approver_roles: unknown role '\(role)'") }
            approverRoles = list
        }
        if let s = o["self_approval"] {
            guard let b = s.boolValue else { throw PolicyError("approvals.self_approval must be true or false") }
            selfApproval = b
        }
        if let e = o["expires_in_seconds"] {
            guard let n = e.intValue, (1...2_592_000).contains(n) else { throw PolicyError("approvals.expires_in_seconds must be an integer from 1 to 2592000") }
            expiresInSeconds = n
        }
    }

    /// Why `approver` (with `role`) may not decide a request of `requester`, or nil when it may.
    public func refusal(approver: String, role: String?, requester: String) -> String? {
        guard let role, approverRoles.contains(role) else {
            return "only the roles \(approverRoles.joined(separator: ", ")) may decide approvals (the policy's approvals.approver_roles)"
        }
        if !selfApproval && approver == requester {
            return "'\(approver)' may not approve its own call (the policy's approvals.self_approval is false)"
        }
        return nil
    }
}
