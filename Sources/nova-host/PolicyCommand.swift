import ArgumentParser
import Host
import JSON

/// `nova-host policy check`: explain the decision for one call.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Inspect the policy profile.",
        subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the decision for one call and why (consumes no rate limit or budget).",
            discussion: "Exit codes: 0 allowed · 3 denied · 2 invalid usage or policy.")
        @Option(help: "The principal making the call.") var principal: String
        @Option(help: "The tool id, e.g. http.request.") var tool: String
        @Option(help: "The call's input as JSON (default {}).") var input: String = "{}"
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try host.makeHost()
            let value: JSONValue
            do { value = try JSONValue.parse(input) } catch {
                Output.error("--input is not valid JSON: \(error)")
                throw ExitCode(ExitStatus.invalid)
            }
            // The tool's annotations matter to some conditions; load its driver if we can.
            let annotations = try? await nova.registry.resolve(toolId: tool).tool.annotations
            let decision = nova.policy.decide(GateRequest(runId: "policy-check", principal: principal, tool: tool, input: value, annotations: annotations), consume: false)
            if json {
                var o = decision.json.objectValue ?? [:]
                o["principal"] = .string(principal)
                o["tool"] = .string(tool)
                Output.json(.object(o))
            } else {
                print("\(decision.allowed ? "ALLOW" : "DENY") \(tool) for \(principal)\(decision.role.map { " (role \($0))" } ?? "")")
                print("  rule: \(decision.ruleId)")
                print("  why:  \(decision.reason)")
            }
            if !decision.allowed { throw ExitCode(ExitStatus.denied) }
        }
    }
}
