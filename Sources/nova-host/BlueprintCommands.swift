import ArgumentParser
import Foundation
import Host
import JSON

/// `nova-host blueprints`: role blueprints (templates with a role, tools, a policy fragment, a
/// definition of done and an example goal) and agents made from them.
struct BlueprintsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blueprints",
        abstract: "List and show role blueprints, and create an agent from one (apply).",
        discussion: """
            Blueprints are templates with kind: blueprint (docs/templates.md, schemas/blueprint.schema.json). \
            They are read from --blueprints DIR, $NOVA_BLUEPRINTS_DIR, ./blueprints, or the installed \
            <prefix>/share/nova-host/blueprints.

            apply stores the blueprint as a template version (goals may name it: template:NAME@VERSION), \
            creates an agent whose tools are the blueprint's and whose default plan is the blueprint's plan \
            with the given params (defaults applied), and prints the policy fragment the agent needs: review \
            it and merge it into your policy profile (its rules use the role 'agent' unless --role says \
            otherwise); nothing is added to the policy by apply.

            Exit codes: 0 ok · 1 store error · 2 invalid blueprint, params or usage.
            """,
        subcommands: [List.self, Show.self, Apply.self])

    struct Source: ParsableArguments {
        @Option(help: ArgumentHelp("Blueprints directory (default: $NOVA_BLUEPRINTS_DIR, ./blueprints or the installed share/nova-host/blueprints).", valueName: "dir"))
        var blueprints: String?

        var directory: String {
            if let blueprints { return blueprints }
            if let env = ProcessInfo.processInfo.environment["NOVA_BLUEPRINTS_DIR"] { return env }
            if FileManager.default.fileExists(atPath: "blueprints") { return "blueprints" }
            return HostPaths.installPrefix().map { $0 + "/share/nova-host/blueprints" } ?? "blueprints"
        }

        /// Every blueprint of the directory; problems go to stderr.
        func all() -> [PlanTemplate] {
            TemplateLibrary.templateFiles(in: directory).compactMap { path in
                do {
                    let t = try TemplateLibrary.load(path: path)
                    guard t.kind == .blueprint else { Output.note("warning: \(path) is a template, not a blueprint"); return nil }
                    return t
                } catch {
                    Output.error("\(path): \(error)")
                    return nil
                }
            }
        }

        func find(_ name: String) throws -> PlanTemplate {
            guard let t = all().first(where: { $0.name == name }) else {
                Output.error("no blueprint '\(name)' in \(directory) (nova-host blueprints list)")
                throw ExitCode(ExitStatus.invalid)
            }
            return t
        }
    }

    static func summary(_ t: PlanTemplate) -> JSONValue {
        var o = t.summary().objectValue ?? [:]
        o["role"] = t.role.map(JSONValue.string) ?? .null
        o["tools"] = .array(t.tools.map(JSONValue.string))
        o["definition_of_done"] = .array(t.definitionOfDone.map(JSONValue.string))
        o["example_goal"] = t.exampleGoal ?? .null
        o["policy"] = t.policyFragment ?? .null
        return .object(o)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every blueprint: name, version, role, tools.")
        @OptionGroup var source: Source
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            let all = source.all()
            if json { Output.json(["blueprints": .array(all.map(BlueprintsCommand.summary))]); return }
            if all.isEmpty { print("no blueprints in \(source.directory)") }
            for t in all { print("\(t.name)@\(t.version)  \(t.role ?? "")  tools: \(t.tools.joined(separator: ", "))") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One blueprint: params, tools, policy fragment, definition of done, example goal.")
        @Argument(help: "The blueprint's name.") var name: String
        @OptionGroup var source: Source
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            let t = try source.find(name)
            if json { Output.json(BlueprintsCommand.summary(t)); return }
            print("\(t.id): \(t.role ?? "")\n\(t.description ?? "")\n")
            print("tools: \(t.tools.joined(separator: ", "))")
            print("params: \(t.paramsSchema.serialized(sortedKeys: true))")
            print("phases: \(t.phases.map { "\($0.name) (\($0.steps.joined(separator: ", ")))" }.joined(separator: " → "))")
            print("definition of done:")
            for d in t.definitionOfDone { print("  - \(d)") }
            print("example goal: \(t.exampleGoal?.serialized(sortedKeys: true) ?? "-")")
            print("policy fragment (review, then merge into your profile):")
            print(t.policyFragment?.serialized(pretty: true, sortedKeys: true) ?? "{}")
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an agent from a blueprint and print the policy fragment it needs.")
        @Argument(help: "The blueprint's name.") var blueprint: String
        @Option(help: "The agent's name (default: the blueprint's).") var name: String?
        @Option(help: "The principal the agent runs as (the policy decides for it).") var principal: String
        @Option(help: "The agent's role (default: agent, the role the fragments' rules name).") var role = "agent"
        @Option(help: "The agent's namespace.") var namespace: String?
        @Option(name: .customLong("param"), help: ArgumentHelp("A param of the blueprint's plan as name=value; repeatable.", valueName: "name=value")) var params: [String] = []
        @OptionGroup var source: Source
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let t = try source.find(blueprint)
            let rendered: (plan: Plan, provenance: TemplateProvenance)
            do { rendered = try t.render(params: try TemplateCommandSupport.params(params)) } catch {
                Output.error("blueprint \(t.id): \(error)")
                throw ExitCode(ExitStatus.invalid)
            }
            let nova = try await host.makeHost(withData: true)
            guard let library = nova.templates, let store = nova.episodes?.store, let agents = store.agentStore, let queue = store.jobQueue else {
                Output.error("the store has no agents or templates"); throw ExitCode(ExitStatus.runFailed)
            }
            do {
                if case .conflict(let existing) = try await library.put(t, source: "blueprint:\(t.name)", by: principal) {
                    Output.note("warning: \(t.id) is already stored with other content (\(existing)); the agent uses this file's plan")
                }
            } catch { Output.error("the template store failed: \(error)"); throw ExitCode(ExitStatus.runFailed) }
            var body: [String: JSONValue] = [
                "name": .string(name ?? t.name), "principal": .string(principal), "role": .string(role),
                "description": .string(t.description ?? "\(t.role ?? t.name) (blueprint \(t.id))"),
                "tools": .array(t.tools.map(JSONValue.string)), "plan": rendered.plan.source,
                "labels": ["blueprint": .string(t.name), "blueprint-version": .string(t.version.description)],
            ]
            if let namespace { body["namespace"] = .string(namespace) }
            let service = AgentService(store: agents, queue: queue, host: nova)
            let request = JSONValue.object(body.reduce(into: [:]) { $0[JSONKey($1.key)] = $1.value })
            let agent = try await agentCall { try await service.create(request) }
            let fragment = t.policyFragment ?? ["rules": []]
            if json {
                Output.json(["agent": agent.json, "template": rendered.provenance.json, "policy": fragment])
                return
            }
            print("created agent \(agent.name) (\(agent.id)) from blueprint \(t.id), principal \(principal), role \(role)")
            print("tools: \(t.tools.joined(separator: ", "))")
            print("\nThe agent needs these policy rules (review them, then merge them into your profile's rules;")
            print("map the principal '\(principal)' to the role '\(role)' in its principals):")
            print(fragment.serialized(pretty: true, sortedKeys: true))
            if let example = t.exampleGoal?["text"]?.stringValue {
                print("\nTry: nova-host goals submit \(agent.name) \"\(example)\"")
            }
        }
    }
}
