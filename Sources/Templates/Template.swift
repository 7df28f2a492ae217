import HostSchemas
import HostSupport
import JSON
import Plans
import Schema

/// A problem with a template document or its params; `field` is where (`params.sku`, `phases[1].steps`).
public struct TemplateError: Error, Sendable, CustomStringConvertible, Equatable {
    public var field: String?
    public var message: String
    public init(field: String? = nil, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// Every problem found in one document or one rendering.
public struct TemplateErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [TemplateError]
    public init(_ errors: [TemplateError]) { self.errors = errors }
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// A versioned, parameterized plan (see docs/templates.md): a name, a semantic version, a
/// JSON Schema for its params, optional phases, and a plan whose strings may hold
/// `${params.NAME}`. A blueprint (`kind: blueprint`) is a template that also says which role
/// it plays, the tools and policy rules it needs, when it is done, and an example goal.
public struct PlanTemplate: Sendable {
    public enum Kind: String, Sendable { case template, blueprint }

    public var name: String
    public var version: SemVer
    public var kind: Kind
    public var description: String?
    /// The params' JSON Schema as written (`{"type": "object"}` when absent).
    public var paramsSchema: JSONValue
    public var phases: [TemplatePhase]
    /// The plan body, before `${params.…}` are substituted.
    public var planBody: JSONValue
    /// The document as written.
    public var document: JSONValue
    /// `sha256:` + SHA-256 of the document's canonical JSON.
    public var hash: String
    let params: CompiledSchema

    /// Top-level fields of a template; a blueprint may also have `blueprintFields`.
    static let templateFields: Set<String> = ["$schema", "kind", "name", "version", "description", "params", "phases", "plan"]
    static let blueprintFields: Set<String> = ["role", "tools", "policy", "definition_of_done", "example_goal"]

    /// `name@version`.
    public var id: String { "\(name)@\(version)" }

    /// Parses and checks a template document: its fields, its params schema, its phases, and
    /// that its plan is a valid plan once params are substituted (with defaults, or a
    /// placeholder of the declared type). Collects every problem.
    public init(document: JSONValue) throws(TemplateErrors) {
        var errors: [TemplateError] = []
        guard let root = document.objectValue else { throw TemplateErrors([TemplateError("a template is an object with name, version and plan")]) }
        let kind = Kind(rawValue: root["kind"]?.stringValue ?? "template")
        if kind == nil { errors.append(TemplateError(field: "kind", "must be \"template\" or \"blueprint\"")) }
        let allowed = kind == .blueprint ? Self.templateFields.union(Self.blueprintFields) : Self.templateFields
        for key in root.keys.sorted() where !allowed.contains(key) {
            errors.append(TemplateError(field: key, Self.blueprintFields.contains(key) ? "is a blueprint field (set kind: blueprint)" : "unknown field"))
        }
        let name = root["name"]?.stringValue ?? ""
        if !TemplateRef.isValidName(name) {
            errors.append(TemplateError(field: "name", "must be lowercase letters, digits, '-' and '_' (at most 64), starting with a letter or digit"))
        }
        let version = root["version"]?.stringValue.flatMap(SemVer.init)
        if version == nil { errors.append(TemplateError(field: "version", "must be a semantic version like 1.0.0")) }
        if let d = root["description"], d.stringValue == nil { errors.append(TemplateError(field: "description", "must be a string")) }

        let paramsSchema = root["params"] ?? ["type": "object"]
        var compiled: CompiledSchema?
        if paramsSchema.objectValue == nil { errors.append(TemplateError(field: "params", "must be a JSON Schema object (e.g. {\"type\": \"object\", \"properties\": {…}})")) }
        else {
            do { compiled = try Schema.compile(paramsSchema) } catch { errors.append(TemplateError(field: "params", "is not a valid JSON Schema: \(error)")) }
        }
        let body = root["plan"]
        if body?.objectValue == nil { errors.append(TemplateError(field: "plan", body == nil ? "is missing" : "must be a plan object with steps")) }
        let phases = Self.parsePhases(root["phases"], errors: &errors)
        // The published schema (schemas/template.schema.json, blueprint.schema.json) is the
        // contract: what it forbids is refused even where the checks above say nothing.
        if errors.isEmpty, let kind {
            for (path, message) in DocumentSchemas.check(document, against: kind == .blueprint ? DocumentSchemas.blueprint : DocumentSchemas.template) {
                errors.append(TemplateError(field: path.isEmpty ? nil : path, message))
            }
        }
        guard errors.isEmpty, let version, let kind, let compiled, let body else { throw TemplateErrors(errors) }

        self.name = name
        self.version = version
        self.kind = kind
        self.description = root["description"]?.stringValue
        self.paramsSchema = paramsSchema
        self.phases = phases
        self.planBody = body
        self.document = document
        self.hash = "sha256:" + SHA256.hex(document.canonicalBytes())
        self.params = compiled
        let problems = checkBody()
        if !problems.isEmpty { throw TemplateErrors(problems) }
    }

    static func parsePhases(_ raw: JSONValue?, errors: inout [TemplateError]) -> [TemplatePhase] {
        guard let raw else { return [] }
        guard let list = raw.arrayValue else { errors.append(TemplateError(field: "phases", "must be an array of {name, steps}")); return [] }
        var out: [TemplatePhase] = []
        var names = Set<String>(), seen = [String: String]()
        for (i, p) in list.enumerated() {
            let at = "phases[\(i)]"
            guard let name = p["name"]?.stringValue, !name.isEmpty, let steps = p["steps"]?.arrayValue, steps.allSatisfy({ $0.stringValue != nil }) else {
                errors.append(TemplateError(field: at, "must be {\"name\": \"…\", \"steps\": [step ids]}"))
                continue
            }
            for key in (p.objectValue?.keys.sorted() ?? []) where !["name", "steps", "description"].contains(key) {
                errors.append(TemplateError(field: "\(at).\(key)", "unknown field (a phase has name, description, steps)"))
            }
            if !names.insert(name).inserted { errors.append(TemplateError(field: "\(at).name", "'\(name)' names two phases")) }
            let ids = steps.compactMap(\.stringValue)
            for id in ids {
                if let other = seen[id] { errors.append(TemplateError(field: "\(at).steps", "step '\(id)' is already in phase '\(other)'")) }
                seen[id] = name
            }
            out.append(TemplatePhase(name: name, description: p["description"]?.stringValue, steps: ids))
        }
        return out
    }

    /// The plan with placeholders for params, parsed: every `${params.X}` names a declared
    /// param, the result is a valid plan, and every phase step exists.
    func checkBody() -> [TemplateError] {
        var errors: [TemplateError] = []
        let declared = Set(paramsSchema["properties"]?.objectValue?.keys.sorted() ?? [])
        do {
            for ref in try ParamSubstitution.references(in: planBody) {
                guard let head = ref.first, !declared.contains(head) else { continue }
                errors.append(TemplateError(field: "plan", "${params.\(ref.joined(separator: "."))} names param '\(head)', which params does not declare"))
            }
        } catch { errors.append(error) }
        guard errors.isEmpty else { return errors }
        do {
            let plan = try placeholderPlan()
            let ids = Set(plan.steps.map(\.id))
            for (i, phase) in phases.enumerated() {
                for id in phase.steps where !ids.contains(id) {
                    errors.append(TemplateError(field: "phases[\(i)].steps", "'\(id)' is not a step of the plan"))
                }
            }
        } catch {
            errors += error.errors
        }
        return errors
    }

    /// The plan with a stand-in for each param (its default, or a value of its declared type):
    /// what the template calls, for validation before real params are known.
    public func placeholderPlan() throws(TemplateErrors) -> Plan {
        var placeholders: [String: JSONValue] = [:]
        do {
            for ref in try ParamSubstitution.references(in: planBody) {
                if let head = ref.first { placeholders[head] = ParamSubstitution.placeholder(for: paramsSchema["properties"]?[head]) }
            }
        } catch { throw TemplateErrors([error]) }
        let params = JSONValue.object(placeholders.reduce(into: [:]) { $0[JSONKey($1.key)] = $1.value })
        let rendered: JSONValue
        do { rendered = try ParamSubstitution.substitute(planBody, params: params) } catch { throw TemplateErrors([error]) }
        do { return try Plan.parse(Self.named(rendered, name)) } catch { throw TemplateErrors(error.errors.map(Self.planError)) }
    }

    static func planError(_ e: PlanError) -> TemplateError {
        TemplateError(field: "plan" + (e.step.map { ".steps[\($0)]" } ?? "") + (e.field.map { ".\($0)" } ?? ""), e.message)
    }

    /// The plan body with the template's name when it has none.
    static func named(_ body: JSONValue, _ name: String) -> JSONValue {
        guard case .object(var o) = body, o["name"] == nil else { return body }
        o["name"] = .string(name)
        return .object(o)
    }

    /// `given` with the params' defaults applied, or every way it fails the params schema.
    public func bindParams(_ given: JSONValue) throws(TemplateErrors) -> JSONValue {
        guard given.objectValue != nil else { throw TemplateErrors([TemplateError(field: "params", "must be an object")]) }
        let withDefaults = ParamSubstitution.applyDefaults(given, schema: paramsSchema)
        let result = params.validate(withDefaults)
        guard result.isValid else {
            let errors = result.errors.sorted { $0.instanceLocation.count > $1.instanceLocation.count }
            var seen = Set<String>()
            var out: [TemplateError] = []
            for e in errors where seen.insert(e.instanceLocation + e.message).inserted {
                let path = DocumentSchemas.readablePath(e.instanceLocation)
                out.append(TemplateError(field: path.isEmpty ? "params" : "params.\(path)", e.message))
            }
            throw TemplateErrors(out)
        }
        return withDefaults
    }

    /// The plan for `params` (validated, defaults applied) and the provenance a run records.
    public func render(params given: JSONValue) throws(TemplateErrors) -> (plan: Plan, provenance: TemplateProvenance) {
        let bound = try bindParams(given)
        let body: JSONValue
        do { body = try ParamSubstitution.substitute(planBody, params: bound) } catch { throw TemplateErrors([error]) }
        let plan: Plan
        do { plan = try Plan.parse(Self.named(body, name)) } catch { throw TemplateErrors(error.errors.map(Self.planError)) }
        return (plan, TemplateProvenance(name: name, version: version.description, hash: hash, params: bound, phases: phases))
    }

    /// The template as `templates list/show` print it.
    public func summary(source: String? = nil) -> JSONValue {
        var o: JSONObject = ["name": .string(name), "version": .string(version.description), "kind": .string(kind.rawValue),
                                       "hash": .string(hash), "params": paramsSchema, "phases": .array(phases.map(\.json))]
        if let description { o["description"] = .string(description) }
        if let source { o["source"] = .string(source) }
        return .object(o)
    }
}

extension PlanTemplate {
    /// A blueprint's role (nil for a plain template).
    public var role: String? { kind == .blueprint ? document["role"]?.stringValue : nil }
    /// The tools a blueprint's agent may use.
    public var tools: [String] { document["tools"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    /// The policy fragment a blueprint needs (`{"rules": [...]}`), for the operator to review and merge.
    public var policyFragment: JSONValue? { document["policy"] }
    public var definitionOfDone: [String] { document["definition_of_done"]?.arrayValue?.compactMap(\.stringValue) ?? [] }
    public var exampleGoal: JSONValue? { document["example_goal"] }
}
