import JSON
import Drivers

/// A call about to be made, as the policy engine sees it.
public struct GateRequest: Sendable {
    public var runId: String
    public var principal: String
    /// `driver.tool`.
    public var tool: String
    public var input: JSONValue
    public var annotations: ToolAnnotations?
    /// The input fields the tool lets conditions read (its manifest's `policyInputs`).
    public var policyInputs: PolicyInputs
    /// A person approved this exact call: a `require_approval` rule that matches it allows it.
    public var approved = false
    public init(runId: String, principal: String, tool: String, input: JSONValue, annotations: ToolAnnotations?,
                policyInputs: PolicyInputs = PolicyInputs()) {
        self.runId = runId
        self.principal = principal
        self.tool = tool
        self.input = input
        self.annotations = annotations
        self.policyInputs = policyInputs
    }
}

/// The answer for one call: allow or deny, which rule decided and why.
public struct GateDecision: Sendable {
    public var allowed: Bool
    /// The id of the rule that decided (`default-deny` when none matched).
    public var ruleId: String
    public var reason: String
    /// The principal's role, if known.
    public var role: String?
    /// Remaining budgets and rate-limit tokens after this decision (for the episode). The
    /// engine hands over the figures and the JSON is built only when read.
    public var remaining: JSONValue? {
        get {
            switch remainingStorage {
            case .value(let v): return v
            case .figures(let figures): return figures.json
            }
        }
        set { remainingStorage = .value(newValue) }
    }
    private var remainingStorage: RemainingStorage
    /// For a denial by an exhausted rate limit that refills: milliseconds until the next call
    /// may pass (HTTP answers 429 with `Retry-After`). Nil for every other decision.
    public var retryAfterMs: Int?
    /// The hash of the policy profile that decided (`PolicyProfile.hash`); nil from gates that
    /// have no profile.
    public var profileHash: String?
    /// The call may run only once a person approves it (`allowed` is false until then).
    public var requiresApproval = false
    public init(allowed: Bool, ruleId: String, reason: String, role: String? = nil, remaining: JSONValue? = nil, retryAfterMs: Int? = nil,
                profileHash: String? = nil) {
        self.allowed = allowed
        self.ruleId = ruleId
        self.reason = reason
        self.role = role
        self.remainingStorage = .value(remaining)
        self.retryAfterMs = retryAfterMs
        self.profileHash = profileHash
    }

    /// A decision whose `remaining` is built from `figures` when read (nil if there are none).
    init(allowed: Bool, ruleId: String, reason: String, role: String?, figures: RemainingFigures) {
        self.init(allowed: allowed, ruleId: ruleId, reason: reason, role: role)
        if !figures.isEmpty { remainingStorage = .figures(figures) }
    }

    public var json: JSONValue {
        var o = JSONObjectBuilder(capacity: 7)
        write(to: &o)
        return o.value
    }

    /// Writes the decision's members (`json`) into `o`.
    public func write<Sink: JSONObjectSink & ~Copyable>(to o: inout Sink) {
        o.member("decision", .string(allowed ? "allow" : requiresApproval ? "require_approval" : "deny"))
        o.member("rule", .string(ruleId))
        o.member("reason", .string(reason))
        if let role { o.member("role", .string(role)) }
        if let remaining { o.member("remaining", remaining) }
        if let retryAfterMs { o.member("retry_after_ms", .int(retryAfterMs)) }
        if let profileHash { o.member("policy", .string(profileHash)) }
    }
}

/// `GateDecision.remaining` as set, or as figures not turned into JSON yet.
private enum RemainingStorage: Sendable {
    case value(JSONValue?)
    case figures(RemainingFigures)
}

/// What is left of each rate limit and budget that applied to a decision, in the order the
/// engine checked them (a later entry with the same id replaces an earlier one, as in the JSON).
struct RemainingFigures: Sendable {
    enum Entry: Sendable {
        case rateLimit(id: String, tokens: Double)
        case budget(id: String, calls: Int?, tokens: Int?, wallMs: Int?)
    }
    private(set) var entries: [Entry] = []

    init(capacity: Int) { entries.reserveCapacity(capacity) }
    var isEmpty: Bool { entries.isEmpty }
    mutating func append(_ entry: Entry) { entries.append(entry) }

    /// `{id: {"tokens": …}}` per rate limit, `{id: {"calls", "tokens", "wall_ms"}}` per budget
    /// (only the dimensions the budget limits).
    var json: JSONValue {
        var out: [String: JSONValue] = [:]
        for entry in entries {
            switch entry {
            case .rateLimit(let id, let tokens): out[id] = ["tokens": .double(tokens)]
            case .budget(let id, let calls, let tokens, let wallMs):
                var r: [String: JSONValue] = [:]
                if let calls { r["calls"] = .int(calls) }
                if let tokens { r["tokens"] = .int(tokens) }
                if let wallMs { r["wall_ms"] = .int(wallMs) }
                out[id] = .object(r)
            }
        }
        return .object(out)
    }
}

/// The seam where policy decides: the run engine asks before every call and reports usage
/// after it. Implementations must fail closed: any internal error is a denial.
public protocol CallGate: Sendable {
    /// Decides whether the call may run now (roles, rules, rate limits, budgets).
    func authorize(_ request: GateRequest) async -> GateDecision
    /// Charges what the call consumed (after the call, success or failure).
    func charge(_ request: GateRequest, usage: ToolUsage, durationNanos: Int64) async
}
