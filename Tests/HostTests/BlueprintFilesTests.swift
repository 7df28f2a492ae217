import Foundation
import Testing
import Host
@testable import Plans
import JSON
import Schema

/// The role blueprints shipped in `blueprints/` (issue 16): each must be a valid blueprint
/// document whose plan, rendered with its example goal's params, is a plan the host accepts,
/// whose steps only call the tools it lists, and whose policy fragment is a profile's rules.
@Suite("Blueprint files")
struct BlueprintFilesTests {
    static let directory = Fixtures.root + "/blueprints"

    @Test func everyShippedBlueprintIsValid() throws {
        let checker = try BlueprintChecker()
        let files = try Self.blueprintFiles()
        for file in files {
            let text = try String(contentsOfFile: Self.directory + "/" + file, encoding: .utf8)
            let problems = checker.problems(yaml: text, file: file)
            #expect(problems.isEmpty, "\(file):\n  \(problems.joined(separator: "\n  "))")
        }
    }

    @Test func atLeastTwentyBlueprintsWithDistinctNames() throws {
        let files = try Self.blueprintFiles()
        #expect(files.count >= 20, "blueprints/ holds \(files.count) blueprints; the issue asks for at least 20")
        var names = Set<String>()
        for file in files {
            let doc = try YAMLDocuments.parse(String(contentsOfFile: Self.directory + "/" + file, encoding: .utf8))
            let name = doc["name"]?.stringValue ?? ""
            #expect(names.insert(name).inserted, "\(file): name '\(name)' is used twice")
        }
    }

    /// The check can fail: each mutation of a valid blueprint is reported, with a message that
    /// names what is wrong.
    @Test func brokenBlueprintsAreRejected() throws {
        let checker = try BlueprintChecker()
        let good = try YAMLDocuments.parse(String(contentsOfFile: Self.directory + "/planner.yaml", encoding: .utf8))
        #expect(checker.problems(good, file: "planner.yaml").isEmpty)
        let mutations: [(String, (inout [String: JSONValue]) -> Void)] = [
            ("not in tools", { d in Self.setFirstStep(&d, "call", "shell.exec") }),
            ("params.nope", { d in Self.setFirstStep(&d, "input", ["query": "${params.nope}"]) }),
            ("unknown step", { d in d["phases"] = [["name": "x", "steps": ["ghost"]]] }),
            ("definition_of_done", { d in d["definition_of_done"] = [] }),
            ("example_goal.params", { d in d["example_goal"] = ["text": "t", "params": ["max_tasks": 500]] }),
            ("hosts", { d in d["policy"] = ["rules": [["id": "r", "effect": "allow", "roles": ["agent"], "tools": ["text.join"],
                                                                       "conditions": ["hosts": ["x"]]]]] }),
            ("not in tools", { d in d["policy"] = ["rules": [["id": "r", "effect": "allow", "roles": ["agent"], "tools": ["postgres.execute"]]]] }),
            ("version", { d in d["version"] = "1.0" }),
            ("memory_type", { d in Self.setFirstStep(&d, "input", ["memory_type": "plan"]) }),
            ("name", { d in d["name"] = "Planner!" }),
            ("steps.d", { d in Self.setFirstStep(&d, "input", ["query": "${steps.d.output}"]) }),
            ("http_hosts", { d in d["policy"] = ["rules": [["id": "r", "effect": "allow", "roles": ["agent"], "tools": ["text.join"],
                                                             "conditions": ["http_hosts": ["x"]]]]] }),
        ]
        for (expected, mutate) in mutations {
            var doc = good.objectValue ?? [:]
            mutate(&doc)
            let problems = checker.problems(JSONValue.object(doc), file: "planner.yaml")
            #expect(!problems.isEmpty, "a blueprint broken for '\(expected)' was accepted")
            #expect(problems.contains { $0.contains(expected) }, "expected a problem mentioning '\(expected)', got \(problems)")
        }
        #expect(!checker.problems(yaml: "kind: blueprint\nname: [unclosed", file: "x.yaml").isEmpty)
    }

    /// A blueprint without its blueprint fields is a plain template (schemas/template.schema.json).
    @Test func blueprintsWithoutBlueprintFieldsAreTemplates() throws {
        let schema = try Schema.compile(JSONValue.parse(String(contentsOfFile: Fixtures.root + "/schemas/template.schema.json", encoding: .utf8)))
        for file in try Self.blueprintFiles() {
            var doc = try YAMLDocuments.parse(String(contentsOfFile: Self.directory + "/" + file, encoding: .utf8)).objectValue ?? [:]
            for key in ["role", "tools", "policy", "definition_of_done", "example_goal"] { doc[key] = nil }
            doc["kind"] = "template"
            let problems = DocumentSchemas.check(JSONValue.object(doc), against: schema)
            #expect(problems.isEmpty, "\(file) as a template: \(problems)")
        }
        var bad = try YAMLDocuments.parse(String(contentsOfFile: Self.directory + "/planner.yaml", encoding: .utf8)).objectValue ?? [:]
        bad["kind"] = "template"
        #expect(!DocumentSchemas.check(JSONValue.object(bad), against: schema).isEmpty, "a template with blueprint fields must be refused")
    }

    static func blueprintFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func setFirstStep(_ doc: inout [String: JSONValue], _ key: String, _ value: JSONValue) {
        var plan = doc["plan"]?.objectValue ?? [:]
        var steps = plan["steps"]?.arrayValue ?? []
        var first = steps.first?.objectValue ?? [:]
        first[key] = value
        steps[0] = JSONValue.object(first)
        plan["steps"] = .array(steps)
        doc["plan"] = JSONValue.object(plan)
    }
}

/// Checks one blueprint document; every problem is a readable sentence naming the field.
struct BlueprintChecker {
    let blueprintSchema: CompiledSchema

    /// The tools a blueprint may name: the built-in drivers' manifests, and the shipped `.so`
    /// drivers' tools (Plugins/*, examples/drivers/c-echo), whose manifests the test cannot
    /// load without building them.
    let knownTools: [String: PolicyInputs]

    init() throws {
        blueprintSchema = try Schema.compile(JSONValue.parse(String(contentsOfFile: Fixtures.root + "/schemas/blueprint.schema.json", encoding: .utf8)))
        var tools: [String: PolicyInputs] = [:]
        for manifest in [MemoryToolDriver.manifestJSON, BusToolDriver.manifestJSON, AgentToolDriver.manifestJSON] {
            let driver = manifest["name"]?.stringValue ?? ""
            for tool in manifest["tools"]?.arrayValue ?? [] {
                tools[driver + "." + (tool["name"]?.stringValue ?? "")] = try PolicyInputs(manifest: tool["policyInputs"], at: "policyInputs")
            }
        }
        // docs/policy-inputs.md: what the shipped drivers declare.
        let declared: [String: [PolicyInputs.Attribute: String]] = [
            "http.request": [.url: "/url"], "shell.exec": [.program: "/program", .args: "/args"],
            "postgres.query": [.allowWrite: "/allow_write"], "graphql.query": [.graphqlDocument: "/query"],
        ]
        let shipped = ["echo.echo", "echo.fail", "echo.version", "echo.sleep", "text.upper", "text.join", "text.length", "text.delay",
                       "http.request", "shell.exec", "postgres.query", "postgres.execute", "postgres.schema", "graphql.query", "graphql.schema"]
        for tool in shipped {
            var pointers: [PolicyInputs.Attribute: JSONPointer] = [:]
            for (attribute, pointer) in declared[tool] ?? [:] { pointers[attribute] = try JSONPointer(parsing: pointer) }
            tools[tool] = PolicyInputs(pointers)
        }
        knownTools = tools
    }

    func problems(yaml: String, file: String) -> [String] {
        do { return problems(try YAMLDocuments.parse(yaml), file: file) } catch { return ["not valid YAML: \(error)"] }
    }

    /// Every problem of `doc`; empty when it is a good blueprint.
    func problems(_ doc: JSONValue, file: String) -> [String] {
        let schemaProblems = DocumentSchemas.check(doc, against: blueprintSchema)
        if !schemaProblems.isEmpty {
            return schemaProblems.map { "\($0.path.isEmpty ? "(document)" : $0.path): \($0.message) (schemas/blueprint.schema.json)" }
        }
        var out: [String] = []
        let name = doc["name"]?.stringValue ?? ""
        if file != name + ".yaml" { out.append("name: '\(name)' but the file is \(file) (blueprints/<name>.yaml)") }
        let tools = Set((doc["tools"]?.arrayValue ?? []).compactMap(\.stringValue))
        for tool in tools.sorted() where knownTools[tool] == nil { out.append("tools: \(tool) is not a tool of any shipped driver") }
        out += paramsProblems(doc)
        guard let params = renderedParams(doc) else { return out + ["params: the schema does not compile"] }
        out += planProblems(doc, params: params, tools: tools)
        out += policyProblems(doc, tools: tools)
        return out
    }

    /// `example_goal.params` must be valid against `params`.
    func paramsProblems(_ doc: JSONValue) -> [String] {
        guard let schema = try? Schema.compile(doc["params"] ?? [:]) else { return ["params: not a valid JSON Schema"] }
        return DocumentSchemas.check(doc["example_goal"]?["params"] ?? [:], against: schema).map {
            "example_goal.params\($0.path.isEmpty ? "" : "." + $0.path): \($0.message)"
        }
    }

    /// The example goal's params with the schema's defaults filled in.
    func renderedParams(_ doc: JSONValue) -> [String: JSONValue]? {
        guard (try? Schema.compile(doc["params"] ?? [:])) != nil else { return nil }
        var values = doc["example_goal"]?["params"]?.objectValue ?? [:]
        for (key, property) in doc["params"]?["properties"]?.objectValue ?? [:] where values[key] == nil {
            if let value = property["default"] { values[key] = value }
        }
        return values
    }

    /// The plan, rendered, parses with no error; steps call listed tools; phases name steps.
    func planProblems(_ doc: JSONValue, params: [String: JSONValue], tools: Set<String>) -> [String] {
        var out: [String] = []
        var missing = Set<String>()
        let rendered = Self.render(doc["plan"] ?? [:], params: params, missing: &missing)
        for name in missing.sorted() { out.append("plan: ${params.\(name)} is neither declared in params with a default nor set by example_goal.params") }
        guard missing.isEmpty else { return out }
        let plan: Plan
        do { plan = try Plan.parse(rendered) } catch {
            return out + error.errors.map { "plan (rendered with example_goal.params): \($0)" }
        }
        for step in plan.steps where !tools.contains(step.call) {
            out.append("plan: step '\(step.id)' calls \(step.call), which is not in tools")
        }
        // An agent's own memory takes the built-in types only (a blueprint cannot set the
        // agent's config.memory_types); shared namespaces take any type.
        for step in plan.steps where step.call == "memory.put" || step.call == "memory.recall" {
            if let type = step.input["memory_type"]?.stringValue, !MemoryItem.builtInTypes.contains(type) {
                out.append("plan: step '\(step.id)': memory_type '\(type)' is not one of \(MemoryItem.builtInTypes.joined(separator: ", ")) (use tags)")
            }
        }
        let ids = Set(plan.steps.map(\.id))
        var phased = Set<String>()
        for phase in doc["phases"]?.arrayValue ?? [] {
            let phaseName = phase["name"]?.stringValue ?? "?"
            for step in (phase["steps"]?.arrayValue ?? []).compactMap(\.stringValue) {
                if !ids.contains(step) { out.append("phases: '\(phaseName)' names unknown step '\(step)'") }
                if !phased.insert(step).inserted { out.append("phases: step '\(step)' is in more than one phase") }
            }
        }
        return out
    }

    /// The fragment parses as a profile's rules (roles: agent), names only listed tools (least
    /// privilege), every listed tool is allowed by some rule, and each condition can be
    /// evaluated for the tools its rule names.
    func policyProblems(_ doc: JSONValue, tools: Set<String>) -> [String] {
        let rules = doc["policy"]?["rules"] ?? []
        let profile: PolicyProfile
        do { profile = try PolicyProfile(json: ["roles": ["agent": [:]], "rules": rules]) } catch {
            return ["policy: \(error.message)"]
        }
        var out: [String] = []
        var allowed = Set<String>()
        for rule in profile.rules {
            for pattern in rule.tools {
                if !tools.contains(pattern.text) { out.append("policy: rule '\(rule.id)' names \(pattern.text), which is not in tools") }
                if rule.effect == .allow { allowed.insert(pattern.text) }
            }
        }
        for tool in tools.sorted() where !allowed.contains(tool) { out.append("policy: no rule allows \(tool), which is in tools") }
        out += profile.problems(tools: tools.sorted().compactMap { tool in knownTools[tool].map { (id: tool, inputs: $0) } }).map { "policy: \($0)" }
        return out
    }

    /// Substitutes `${params.NAME}`: a string that is exactly one reference takes the param's
    /// JSON value; inside longer text a string param is inserted as is, any other as JSON.
    static func render(_ value: JSONValue, params: [String: JSONValue], missing: inout Set<String>) -> JSONValue {
        switch value {
        case .string(let s):
            return renderString(s, params: params, missing: &missing)
        case .array(let items):
            return .array(items.map { render($0, params: params, missing: &missing) })
        case .object:
            var out: [String: JSONValue] = [:]
            for (key, item) in value.objectValue ?? [:] { out[key] = render(item, params: params, missing: &missing) }
            return .object(out)
        default:
            return value
        }
    }

    static func renderString(_ s: String, params: [String: JSONValue], missing: inout Set<String>) -> JSONValue {
        let open = "${params."
        if s.hasPrefix(open), s.hasSuffix("}"), s.firstIndex(of: "}") == s.index(before: s.endIndex) {
            let name = String(s.dropFirst(open.count).dropLast())
            guard let v = params[name] else { missing.insert(name); return .string(s) }
            return v
        }
        var out = ""
        var rest = Substring(s)
        while let start = rest.range(of: open) {
            out += rest[..<start.lowerBound]
            guard let close = rest[start.upperBound...].firstIndex(of: "}") else { rest = rest[start.lowerBound...]; break }
            let name = String(rest[start.upperBound..<close])
            if let v = params[name] { out += v.stringValue ?? v.serialized() } else { missing.insert(name) }
            rest = rest[rest.index(after: close)...]
        }
        return .string(out + String(rest))
    }
}
