import ArgumentParser
import Host
import JSON

/// `nova-host policy check`: explain the decision for one call.
struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Inspect the policy profile.",
        subcommands: [Check.self, Validate.self])

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
            let nova = try await host.makeHost()
            let value: JSONValue
            do { value = try JSONValue.parse(input) } catch {
                Output.error("--input is not valid JSON: \(error)")
                throw ExitCode(ExitStatus.invalid)
            }
            // The tool's annotations and policy inputs matter to conditions; load its driver if we can.
            var descriptor = BuiltInTools.descriptor(toolId: tool)
            if descriptor == nil { descriptor = try? await nova.registry.resolve(toolId: tool).tool }
            let decision = nova.policy.decide(GateRequest(runId: "policy-check", principal: principal, tool: tool, input: value,
                                                          annotations: descriptor?.annotations, policyInputs: descriptor?.policyInputs ?? PolicyInputs()),
                                              consume: false)
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

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the policy profile against the tools of every driver in the drivers directory.",
            discussion: """
                Loads the profile (as serve and run do) and every driver, and lists each rule that names a tool \
                exactly but has a condition over a policy input the tool does not declare (see docs/policy-inputs.md). \
                Drivers that fail to load are reported and not checked.

                Exit codes: 0 valid · 1 a driver could not be loaded · 2 the profile is invalid.
                """)
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try await host.makeHost()
            var tools: [(id: String, inputs: PolicyInputs)] = []
            var unloaded: [String] = []
            for status in nova.registry.statuses() {
                do {
                    let m = try await nova.registry.describe(named: status.name).manifest
                    tools += m.tools.map { (id: "\(m.name).\($0.name)", inputs: $0.policyInputs) }
                } catch {
                    unloaded.append("\(status.name): \(error)")
                }
            }
            let problems = nova.policy.profile.problems(tools: tools)
            for p in problems { Output.error(p) }
            for u in unloaded { Output.error("driver not checked: \(u)") }
            if !problems.isEmpty { throw ExitCode(ExitStatus.invalid) }
            print("policy \(nova.policy.profile.hash) is valid for \(tools.count) tools of \(nova.registry.statuses().count - unloaded.count) drivers")
            if !unloaded.isEmpty { throw ExitCode(ExitStatus.runFailed) }
        }
    }
}
