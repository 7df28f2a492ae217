import Drivers
import Synchronization

/// What a profile compiles to when it loads, so that a decision does no work a previous one
/// already did: each rule's conditions are compiled once (globs split, required inputs listed,
/// reasons written), and the rules, rate limits and budgets that can apply to a tool are listed
/// per tool the first time the tool is decided, in profile order.
final class PolicyIndex: Sendable {
    /// A rule ready to be evaluated.
    final class Rule: Sendable {
        let rule: PolicyRule
        let id: String
        let effect: PolicyRule.Effect
        let roles: [String]?
        let principals: [String]?
        /// Nil when the rule has no conditions.
        let conditions: CompiledConditions?
        /// The decision's reason when this rule decides (`reason`, or "allowed/denied by rule").
        let decisionReason: String

        init(_ rule: PolicyRule) {
            self.rule = rule
            id = rule.id
            effect = rule.effect
            roles = rule.roles
            principals = rule.principals
            conditions = rule.conditions.isEmpty ? nil : CompiledConditions(rule.conditions)
            decisionReason = rule.reason ?? {
                switch rule.effect {
                case .allow: return "allowed by rule '\(rule.id)'"
                case .deny: return "denied by rule '\(rule.id)'"
                case .requireApproval: return "rule '\(rule.id)' requires a person's approval of this call"
                }
            }()
        }
    }

    /// Everything in the profile that can apply to one tool, in profile order.
    final class ToolPlan: Sendable {
        let rules: [Rule]
        let limits: [RateLimitSpec]
        let budgets: [BudgetSpec]
        /// The budgets with principal scope (the ones kept in shared windows).
        let principalBudgets: [BudgetSpec]

        init(rules: [Rule], limits: [RateLimitSpec], budgets: [BudgetSpec]) {
            self.rules = rules
            self.limits = limits
            self.budgets = budgets
            principalBudgets = budgets.filter { $0.scope == .principal }
        }
    }

    private let rules: [Rule]
    private let limits: [RateLimitSpec]
    private let budgets: [BudgetSpec]
    private let plans = Mutex<[String: ToolPlan]>([:])
    /// Tool ids come from requests; past this many distinct ones, plans are computed per call
    /// rather than remembered, so the cache cannot grow without bound.
    static let maxRememberedTools = 4096

    init(rules: [PolicyRule], limits: [RateLimitSpec], budgets: [BudgetSpec]) {
        self.rules = rules.map(Rule.init)
        self.limits = limits
        self.budgets = budgets
    }

    /// The rules, rate limits and budgets whose tool patterns match `tool`.
    func plan(for tool: String) -> ToolPlan {
        if let known = plans.withLock({ $0[tool] }) { return known }
        let plan = ToolPlan(rules: rules.filter { r in r.rule.tools.contains { $0.matches(tool) } },
                            limits: limits.filter { l in l.tools.contains { $0.matches(tool) } },
                            budgets: budgets.filter { b in b.tools.contains { $0.matches(tool) } })
        plans.withLock { p in if p.count < Self.maxRememberedTools { p[tool] = plan } }
        return plan
    }
}

/// A rule's conditions, prepared once: globs split, sets built, the inputs they need listed.
struct CompiledConditions: Sendable {
    let source: RuleConditions
    let requiredInputs: [PolicyInputs.Attribute]
    let httpHosts: [ToolPattern]?
    let shellPrograms: Set<String>?
    let graphqlOperations: Set<String>?
    let namespaces: [ToolPattern]?
    let topics: [ToolPattern]?
    let agents: [ToolPattern]?
    let subscriptions: [ToolPattern]?

    init(_ c: RuleConditions) {
        source = c
        requiredInputs = c.requiredInputs
        // ToolPattern is the same glob as `Glob.match`, with the pattern split once.
        httpHosts = c.httpHosts?.map(ToolPattern.init)
        shellPrograms = c.shellPrograms.map { Set($0) }
        graphqlOperations = c.graphqlOperations.map { Set($0) }
        namespaces = c.namespaces?.map(ToolPattern.init)
        topics = c.topics?.map(ToolPattern.init)
        agents = c.agents?.map(ToolPattern.init)
        subscriptions = c.subscriptions?.map(ToolPattern.init)
    }
}
