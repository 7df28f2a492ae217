import ArgumentParser
import Foundation
import Host
import JSON

/// Shared by `run template:…`, `templates render` and the goal commands.
enum TemplateCommandSupport {
    struct Failure: Error { let message: String }

    /// `name=value` pairs as a params object (JSON values where they parse, strings otherwise).
    static func params(_ pairs: [String]) throws(Failure) -> JSONValue {
        var out: JSONObject = [:]
        for item in pairs {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw Failure(message: "--param '\(item)' must be name=value") }
            let raw = String(item[item.index(after: eq)...])
            out[JSONKey(String(item[..<eq]))] = (try? JSONValue.parse(raw)) ?? .string(raw)
        }
        return .object(out)
    }

    /// The template `spec` (`template:NAME@VERSION`, `NAME@VERSION` or a file) rendered with `pairs`.
    static func render(_ spec: String, params pairs: [String], host: NovaHost) async throws(Failure) -> (Plan, TemplateProvenance) {
        let template = try await resolve(spec, host: host)
        do {
            let r = try template.render(params: try params(pairs))
            return (r.plan, r.provenance)
        } catch let e as TemplateErrors {
            throw Failure(message: "template \(template.id): " + e.errors.map(\.description).joined(separator: "; "))
        } catch {
            throw Failure(message: "\(error)")
        }
    }

    /// A template from the library (after importing the templates directory) or from a file.
    static func resolve(_ spec: String, host: NovaHost) async throws(Failure) -> PlanTemplate {
        let text = spec.hasPrefix(TemplateRef.callPrefix) ? String(spec.dropFirst(TemplateRef.callPrefix.count)) : spec
        if text.hasSuffix(".json") || PlanLoader.isYAML(text) {
            do { return try TemplateLibrary.load(path: text) } catch { throw Failure(message: "\(text): \(error)") }
        }
        guard let library = host.templates else { throw Failure(message: "templates need a store (--data or --store)") }
        let report = await library.sync()
        for e in report.errors { Output.note("warning: template file \(e.file): \(e.message)") }
        let ref: TemplateRef
        do { ref = try TemplateRef.parse(text) } catch { throw Failure(message: error.message) }
        do { return try await library.resolve(ref) } catch { throw Failure(message: error.description) }
    }
}

/// `nova-host templates`: the template library.
struct TemplatesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "templates",
        abstract: "List, show, validate and render templates (versioned, parameterized plans).",
        discussion: """
            Templates are JSON or YAML documents (docs/templates.md): name, semantic version, a JSON \
            Schema for params, optional phases, and a plan whose strings may hold ${params.NAME}. \
            Files in the templates directory (--templates, $NOVA_TEMPLATES_DIR, ./templates) are \
            imported into the store as versions; a version never changes (a changed file needs a new \
            version). Templates created over REST (POST /v1/templates) live in the store too.

            Exit codes: 0 ok · 1 store or runtime error · 2 invalid template, params or usage.
            """,
        subcommands: [List.self, Show.self, Validate.self, Render.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every stored version (the templates directory is imported first).")
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try await host.makeHost(withData: true)
            guard let library = nova.templates else { Output.error("templates need a store"); throw ExitCode(ExitStatus.runFailed) }
            let report = await library.sync()
            for e in report.errors { Output.note("warning: template file \(e.file): \(e.message)") }
            let all: [(template: PlanTemplate, stored: StoredTemplate)]
            do { all = try await library.list() } catch { Output.error(error.description); throw ExitCode(ExitStatus.runFailed) }
            if json {
                Output.json(["templates": .array(all.map { $0.template.summary(source: $0.stored.source) }), "sync": report.json])
                return
            }
            if all.isEmpty { print("no templates (add files to \(library.directory ?? "templates/") or POST /v1/templates)") }
            for (t, stored) in all {
                let desc = t.description.map { "  \($0)" } ?? ""
                print("\(t.name)@\(t.version)  \(t.kind.rawValue)  \(stored.source)  \(t.hash.prefix(19))\(desc)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A template's document, params schema and phases: NAME[@VERSION] or a file.")
        @Argument(help: ArgumentHelp("NAME, NAME@VERSION (1, 1.2, 1.2.0, latest) or a file.", valueName: "template")) var template: String
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let nova = try await host.makeHost(withData: true)
            let t: PlanTemplate
            do { t = try await TemplateCommandSupport.resolve(template, host: nova) } catch { Output.error(error.message); throw ExitCode(ExitStatus.invalid) }
            if json { Output.json(["template": t.summary(), "document": t.document]); return }
            print("\(t.id) (\(t.kind.rawValue)) \(t.hash)")
            if let d = t.description { print(d) }
            print("params: \(t.paramsSchema.serialized(sortedKeys: true))")
            for p in t.phases { print("phase \(p.name): \(p.steps.joined(separator: ", "))") }
            print(t.planBody.serialized(pretty: true, sortedKeys: true))
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check template files: document, params schema, phases, and the plan against the drivers.")
        @Argument(help: ArgumentHelp("PlanTemplate files (.json, .yaml, .yml) or directories of them.", valueName: "file")) var files: [String]
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            // With the store: the built-in tools (memory.*, bus.*, …) are checked like any driver's.
            let nova = try await host.makeHost(withData: true)
            HostOptions.builtIns(nova)
            var results: [JSONValue] = []
            var bad = 0
            for path in files.flatMap(Self.expand) {
                var problems: [String] = []
                var id: String?
                do {
                    let t = try TemplateLibrary.load(path: path)
                    id = t.id
                    let plan = try t.placeholderPlan()
                    // Sub-templates are checked where a library is (run, serve); here only tools.
                    problems = await nova.runner.validate(plan, chain: [t.name]).filter { !$0.message.contains("template steps need") }.map(\.description)
                } catch { problems = error.errors.map(\.description) }
                if !problems.isEmpty { bad += 1 }
                results.append(["file": .string(path), "template": id.map(JSONValue.string) ?? .null, "valid": .bool(problems.isEmpty),
                                "errors": .array(problems.map(JSONValue.string))])
                if !json {
                    if problems.isEmpty { print("ok       \(path) (\(id ?? "?"))") } else {
                        print("invalid  \(path)")
                        for p in problems { print("  \(p)") }
                    }
                }
            }
            await nova.registry.shutdown()
            if json { Output.json(["results": .array(results), "invalid": .int(bad)]) }
            if bad > 0 { throw ExitCode(ExitStatus.invalid) }
        }

        static func expand(_ path: String) -> [String] {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { return [path] }
            return TemplateLibrary.templateFiles(in: path)
        }
    }

    struct Render: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the plan a template makes with the given params (nothing runs).")
        @Argument(help: ArgumentHelp("NAME[@VERSION] or a file.", valueName: "template")) var template: String
        @Option(name: .customLong("param"), help: ArgumentHelp("A param as name=value; repeatable.", valueName: "name=value")) var params: [String] = []
        @OptionGroup var host: HostOptions

        func run() async throws {
            let needsStore = !(template.hasSuffix(".json") || PlanLoader.isYAML(template))
            let nova = try await host.makeHost(withData: needsStore)
            do {
                let (plan, provenance) = try await TemplateCommandSupport.render(template, params: params, host: nova)
                Output.json(["plan": plan.source, "template": provenance.json])
            } catch { Output.error(error.message); throw ExitCode(ExitStatus.invalid) }
        }
    }
}

/// `nova-host approvals`: calls waiting for a person.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals",
        abstract: "List, approve and deny calls waiting for approval.",
        discussion: """
            A call waits for approval when a policy rule's effect is require_approval or its step says \
            approval: true. Approving releases that call with that exact input only (the request \
            carries the input's SHA-256); a changed input needs a new approval; a request not decided \
            before it expires fails the step. Who may decide is the policy's approvals section \
            (approver_roles, self_approval). --principal says who decides (default $NOVA_PRINCIPAL or 'local').

            Exit codes: 0 ok · 1 store error · 2 usage · 3 not allowed to decide · 4 not pending (already decided or expired).
            """,
        subcommands: [List.self, Approve.self, Deny.self])

    static func service(_ host: HostOptions) async throws -> ApprovalService {
        let nova = try await host.makeHost(withData: true)
        guard let store = nova.approvalStore else { Output.error("approvals need a store"); throw ExitCode(ExitStatus.runFailed) }
        return ApprovalService(store: store, policy: nova.policy)
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approval requests, newest first.")
        @Option(help: ArgumentHelp("pending (default), approved, denied, expired or all.", valueName: "status")) var status = "pending"
        @Option(help: ArgumentHelp("Only this run's requests.", valueName: "id")) var run: String?
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var host: HostOptions

        func run() async throws {
            let filter: ApprovalStatus?
            if status == "all" { filter = nil } else if let s = ApprovalStatus(rawValue: status) { filter = s } else {
                Output.error("--status must be pending, approved, denied, expired or all"); throw ExitCode(ExitStatus.invalid)
            }
            let service = try await ApprovalsCommand.service(host)
            let list: [ApprovalRequest]
            do { list = try await service.list(status: filter, runId: run) } catch { Output.error(error.description); throw ExitCode(ExitStatus.runFailed) }
            if json { Output.json(["approvals": .array(list.map(\.json))]); return }
            if list.isEmpty { print("no \(status == "all" ? "" : status + " ")approval requests") }
            for a in list {
                print("\(a.id)  \(a.status.rawValue)  \(a.tool)  run \(a.runId) step \(a.stepId)  by \(a.principal)  rule \(a.rule)")
                print("  input \(a.input.serialized(sortedKeys: true))  \(a.inputDigest.prefix(23))…  expires \(a.json["expires_at"]?.stringValue ?? "")")
            }
        }
    }

    struct Decision: ParsableArguments {
        @Argument(help: ArgumentHelp("The approval request id (apr_…).", valueName: "id")) var id: String
        @Option(help: ArgumentHelp("A comment recorded with the decision.", valueName: "text")) var comment: String?
        @Option(help: ArgumentHelp("Who decides, as named in the policy (default: $NOVA_PRINCIPAL or 'local').", valueName: "name")) var principal: String?
        @Flag(help: "Print JSON.") var json = false

        func decide(_ approve: Bool, host: HostOptions) async throws {
            let service = try await ApprovalsCommand.service(host)
            let who = principal ?? ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local"
            do {
                let a = try await service.decide(id, approve: approve, principal: who, role: nil, comment: comment)
                if json { Output.json(a.json) } else { print("\(a.id) \(a.status.rawValue) by \(who)") }
            } catch {
                Output.error(error.description)
                switch error {
                case .forbidden: throw ExitCode(ExitStatus.denied)
                case .notPending: throw ExitCode(4)
                case .notFound: throw ExitCode(ExitStatus.invalid)
                case .unavailable: throw ExitCode(ExitStatus.runFailed)
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve one waiting call.")
        @OptionGroup var decision: Decision
        @OptionGroup var host: HostOptions
        func run() async throws { try await decision.decide(true, host: host) }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deny one waiting call (its step is recorded denied).")
        @OptionGroup var decision: Decision
        @OptionGroup var host: HostOptions
        func run() async throws { try await decision.decide(false, host: host) }
    }
}
