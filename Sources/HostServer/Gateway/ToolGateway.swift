import Foundation
import Host
import JSON
import Synchronization

/// One tool a caller may see: its id (`driver.tool`), descriptor and driver version.
public struct GatewayTool: Sendable {
    /// `driver.tool`.
    public var id: String
    /// The driver's name.
    public var driver: String
    /// The driver's version.
    public var driverVersion: String
    /// Name, description, schemas and annotations from the manifest.
    public var descriptor: ToolDescriptor
    /// Whether the caller's role may use it (some allow rule applies, perhaps only for some inputs).
    public var allowed: Bool
}

/// How one gateway call ended.
public enum ToolCallOutcome: Sendable {
    /// The tool ran; its output.
    case succeeded(output: JSONValue, snapshot: RunSnapshot)
    /// It did not run, or failed: why, and the run (nil when nothing ran, e.g. an unknown tool).
    case failed(ToolCallFailure, snapshot: RunSnapshot?)

    /// The run's id, if a run was made.
    public var runId: String? {
        switch self {
        case .succeeded(_, let s): return s.runId
        case .failed(_, let s): return s?.runId
        }
    }
}

/// Why a gateway call failed, with the HTTP status the REST route answers with.
public struct ToolCallFailure: Error, Sendable, Equatable {
    /// What kind of failure.
    public enum Kind: String, Sendable {
        case unknownTool = "unknown_tool"
        case invalidInput = "invalid_input"
        case denied
        /// Denied by an exhausted rate limit that refills: retry after `retryAfterMs`.
        case rateLimited = "rate_limited"
        case toolError = "tool_error"
        case deadline
        case driverUnavailable = "driver_unavailable"
        case driverError = "driver_error"
        case cancelled
        case shuttingDown = "shutting_down"
        case forbidden
    }

    /// The kind (also the REST error code).
    public var kind: Kind
    /// A plain-English message (for a denial: the rule's reason).
    public var message: String
    /// For a denial, the rule that decided.
    public var rule: String?
    /// The driver's own error code, when it reported one.
    public var toolCode: String?
    /// For `rateLimited`: milliseconds until the next call may pass.
    public var retryAfterMs: Int?

    /// The HTTP status of this failure.
    public var status: Int {
        switch kind {
        case .unknownTool: return 404
        case .invalidInput, .toolError: return 422
        case .denied, .forbidden: return 403
        case .rateLimited: return 429
        case .deadline: return 504
        case .driverUnavailable, .shuttingDown: return 503
        case .driverError: return 502
        case .cancelled: return 409
        }
    }
}

/// The gateway: one tool call = a one-step plan run through policy, the interpreter and an
/// episode (`RunManager.execute`), for `POST /tools/{id}` and MCP `tools/call`; and the tool
/// list filtered by what the caller's role may use (MCP `tools/list`, `GET /v1/tools`).
public final class ToolGateway: Sendable {
    /// The host.
    public let host: NovaHost
    /// Where runs are tracked.
    public let runs: RunManager
    /// Each call's deadline, in milliseconds.
    public let toolTimeoutMs: Int
    private let plans = Mutex<[String: Plan]>([:])

    /// A gateway over `runs` (and its host).
    public init(runs: RunManager, toolTimeoutMs: Int = 60_000) {
        self.host = runs.host
        self.runs = runs
        self.toolTimeoutMs = toolTimeoutMs
    }

    // MARK: Calls

    /// Calls `toolId` with `input` for `caller`: through policy (the caller's principal and
    /// role), input and output schema checks, and an episode.
    /// `runId`: the id the run gets (a caller that may cancel it by id makes it first).
    public func call(toolId: String, input: JSONValue, caller: Caller, origin: String, runId: String = RunId.make()) async -> ToolCallOutcome {
        do { _ = try await host.registry.resolve(toolId: toolId) } catch let e as ToolCallError {
            return .failed(ToolCallFailure(kind: .unknownTool, message: e.message), snapshot: nil)
        } catch let e as DriverLoadError {
            if case .unknownDriver = e { return .failed(ToolCallFailure(kind: .unknownTool, message: e.description), snapshot: nil) }
            return .failed(ToolCallFailure(kind: .driverUnavailable, message: e.description), snapshot: nil)
        } catch {
            return .failed(ToolCallFailure(kind: .driverUnavailable, message: "\(error)"), snapshot: nil)
        }
        let plan: Plan
        do { plan = try self.plan(for: toolId, input: input) } catch {
            return .failed(ToolCallFailure(kind: .unknownTool, message: error.description), snapshot: nil)
        }
        let request: RunRequest
        do {
            request = try await host.pipeline.prepare(RunSubmission(plan: plan, principal: caller.principal, role: caller.role,
                                                                    parallelism: 1, origin: origin))
        } catch {
            switch error {
            case .unknownRole(let m): return .failed(ToolCallFailure(kind: .forbidden, message: m), snapshot: nil)
            case .invalidPlan, .invalidInputs, .invalidOptions:
                return .failed(ToolCallFailure(kind: .unknownTool, message: error.description), snapshot: nil)
            }
        }
        let snapshot: RunSnapshot
        do { snapshot = try await runs.execute(request, runId: runId) } catch {
            switch error {
            case .notAccepting: return .failed(ToolCallFailure(kind: .shuttingDown, message: error.description), snapshot: nil)
            default: return .failed(ToolCallFailure(kind: .forbidden, message: error.description), snapshot: nil)
            }
        }
        return Self.outcome(of: snapshot)
    }

    /// The one-step plan calling `toolId` with `input` taken literally: every `${` in its
    /// strings is escaped (`$${`), so nothing in a caller's input is read as a template. The
    /// plan is parsed once per tool; each call only swaps the input in.
    func plan(for toolId: String, input: JSONValue) throws(PlanErrors) -> Plan {
        var plan: Plan
        if let p = plans.withLock({ $0[toolId] }) { plan = p } else {
            plan = try Plan.parse(Self.planJSON(toolId: toolId, input: [:], timeoutMs: toolTimeoutMs))
            plans.withLock { $0[toolId] = plan }
        }
        let escaped = Self.escapeTemplates(input)
        plan.steps[0].input = escaped
        plan.source = Self.planJSON(toolId: toolId, input: escaped, timeoutMs: toolTimeoutMs)
        return plan
    }

    static func planJSON(toolId: String, input: JSONValue, timeoutMs: Int) -> JSONValue {
        ["name": .string("tool:\(toolId)"),
         "steps": [["id": "call", "call": .string(toolId), "input": input, "timeout_ms": .int(timeoutMs)]]]
    }

    /// `${` → `$${` in every string (object keys are never templates).
    static func escapeTemplates(_ v: JSONValue) -> JSONValue {
        // Nearly every input has no "${" at all: then it is returned as it is, not rebuilt.
        hasTemplateMarker(v) ? escapingTemplates(v) : v
    }

    private static func escapingTemplates(_ v: JSONValue) -> JSONValue {
        switch v {
        case .string(let s): return s.contains("${") ? .string(s.replacingOccurrences(of: "${", with: "$${")) : v
        case .array(let a): return .array(a.map(escapingTemplates))
        case .object(let o): return .object(o.mapValues(escapingTemplates))
        default: return v
        }
    }

    /// Whether any string in `v` contains `${`.
    static func hasTemplateMarker(_ v: JSONValue) -> Bool {
        switch v {
        case .string(let s):
            var dollar = false
            for b in s.utf8 {
                if dollar && b == UInt8(ascii: "{") { return true }
                dollar = b == UInt8(ascii: "$")
            }
            return false
        case .array(let a): return a.contains(where: hasTemplateMarker)
        case .object(let o): return o.values.contains(where: hasTemplateMarker)
        default: return false
        }
    }

    /// Maps a finished one-step run to an outcome.
    static func outcome(of snapshot: RunSnapshot) -> ToolCallOutcome {
        guard let record = snapshot.record, let step = record.steps.first else {
            return .failed(ToolCallFailure(kind: .driverError, message: snapshot.record?.error ?? "the call did not run"), snapshot: snapshot)
        }
        switch record.status {
        case .succeeded:
            return .succeeded(output: step.output ?? .null, snapshot: snapshot)
        case .denied:
            let d = step.attempts.last?.decision
            return .failed(ToolCallFailure(kind: d?.retryAfterMs == nil ? .denied : .rateLimited, message: d?.reason ?? step.reason ?? "denied by policy",
                                           rule: d?.ruleId, retryAfterMs: d?.retryAfterMs), snapshot: snapshot)
        case .cancelled:
            return .failed(ToolCallFailure(kind: .cancelled, message: "the call was cancelled"), snapshot: snapshot)
        case .interrupted:
            return .failed(ToolCallFailure(kind: .shuttingDown, message: record.error ?? "interrupted by shutdown"), snapshot: snapshot)
        default:
            guard let attempt = step.attempts.last, let e = attempt.error else {
                return .failed(ToolCallFailure(kind: .driverUnavailable, message: step.reason ?? record.error ?? "the call failed"), snapshot: snapshot)
            }
            let kind: ToolCallFailure.Kind
            switch e.kind {
            case .invalidArgument: kind = attempt.decision == nil ? .invalidInput : .toolError
            case .tool: kind = .toolError
            case .deadline: kind = .deadline
            case .unavailable: kind = .driverUnavailable
            case .unknownTool: kind = .unknownTool
            case .cancelled: kind = .cancelled
            case .internal, .unsupported: kind = .driverError
            }
            return .failed(ToolCallFailure(kind: kind, message: e.message, toolCode: e.code), snapshot: snapshot)
        }
    }

    // MARK: Tools

    /// Every tool of every driver that loads, with whether `caller` may use it. Drivers that
    /// fail to load are left out (`GET /v1/drivers` shows why).
    public func tools(for caller: Caller) async -> [GatewayTool] {
        var out: [GatewayTool] = []
        for status in host.registry.statuses() {
            guard let driver = try? await host.registry.driver(named: status.name) else { continue }
            let m = driver.manifest
            for t in m.tools {
                let id = "\(m.name).\(t.name)"
                out.append(GatewayTool(id: id, driver: m.name, driverVersion: m.version, descriptor: t,
                                       allowed: Self.mayUse(host.policy.profile, role: caller.role, principal: caller.principal,
                                                            tool: id, annotations: t.annotations, policyInputs: t.policyInputs)))
            }
        }
        return out
    }

    /// Whether `role` may use `tool` at all: the first rule (in order) that can apply to it is
    /// an allow rule. Conditions that depend only on the tool's annotations (`read_only`) are
    /// decided here; a deny rule with input conditions may not apply, so it does not hide the
    /// tool; an allow rule with input conditions shows it (some inputs are allowed). Rate
    /// limits and budgets are not considered: they are temporary.
    public static func mayUse(_ profile: PolicyProfile, role: String, principal: String, tool: String, annotations: ToolAnnotations,
                              policyInputs: PolicyInputs = PolicyInputs()) -> Bool {
        for rule in profile.rules {
            if let roles = rule.roles, !roles.contains(role) { continue }
            if let ps = rule.principals, !ps.contains(principal) { continue }
            guard rule.tools.contains(where: { $0.matches(tool) }) else { continue }
            let c = rule.conditions
            if c.readOnly == true && !annotations.readOnlyHint { continue }
            // Conditions over inputs the tool does not declare never hold.
            if !c.requiredInputs.allSatisfy(policyInputs.declares) { continue }
            if rule.effect == .deny {
                if c.dependsOnInput { continue }
                return false
            }
            return true
        }
        return false
    }
}
