import Drivers
import HostSupport
import JSON
import Policy

extension NovaHost {
    /// The policy's decision for one call made outside a run (the REST bus routes, the CLI):
    /// as `role` when given (else the principal's role in the profile), with the tool's
    /// annotations and policy inputs, consuming no rate limit or budget.
    public func decideOutsideRun(principal: String, role: String?, tool: String, input: JSONValue) async -> GateDecision {
        let descriptor = try? await registry.resolve(toolId: tool).tool
        let probe = "probe-" + RunId.make()
        defer { policy.endRun(probe) }
        if let role {
            do { try policy.bindRole(role, toRun: probe) } catch {
                return GateDecision(allowed: false, ruleId: "unknown-role", reason: error.description)
            }
        }
        return policy.decide(GateRequest(runId: probe, principal: principal, tool: tool, input: input, annotations: descriptor?.annotations,
                                         policyInputs: descriptor?.policyInputs ?? PolicyInputs()), consume: false)
    }
}
