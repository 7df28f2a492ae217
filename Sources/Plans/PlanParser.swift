import JSON
import HostSchemas
import HostSupport

extension Plan {
    /// Parses a plan document and checks everything that needs no driver: field types, step ids,
    /// references to unknown steps, dependency cycles, `when` syntax. Collects every error.
    public static func parse(_ json: JSONValue) throws(PlanErrors) -> Plan {
        var errors: [PlanError] = []
        guard let root = json.objectValue else { throw PlanErrors(errors: [PlanError("a plan is a JSON object with \"steps\"")]) }
        let known: Set<String> = ["name", "description", "inputs", "steps", "output", "version", "$schema"]
        for key in root.keys.sorted() where !known.contains(key) {
            errors.append(PlanError(field: key, "unknown field (a plan has name, description, inputs, steps, output)"))
        }
        let name = root["name"]?.stringValue ?? "plan"
        if let n = root["name"], n.stringValue == nil { errors.append(PlanError(field: "name", "must be a string")) }

        var inputs: [PlanInput] = []
        if let raw = root["inputs"] {
            if let obj = raw.objectValue {
                for key in obj.keys.sorted() {
                    let spec = obj[key]!
                    if let s = spec.objectValue {
                        let type = s["type"]?.stringValue
                        if let t = type, !["string", "integer", "number", "boolean", "object", "array"].contains(t) {
                            errors.append(PlanError(field: "inputs.\(key).type", "must be string, integer, number, boolean, object or array"))
                        }
                        inputs.append(PlanInput(name: key, type: type, defaultValue: s["default"], description: s["description"]?.stringValue))
                    } else {
                        errors.append(PlanError(field: "inputs.\(key)", "must be an object like {\"type\": \"string\", \"default\": \"x\"}"))
                    }
                }
            } else {
                errors.append(PlanError(field: "inputs", "must be an object mapping input names to {type, default, description}"))
            }
        }

        var steps: [PlanStep] = []
        guard let rawSteps = root["steps"]?.arrayValue else {
            errors.append(PlanError(field: "steps", root["steps"] == nil ? "is missing" : "must be an array of steps"))
            throw PlanErrors(errors: errors)
        }
        if rawSteps.isEmpty { errors.append(PlanError(field: "steps", "must hold at least one step")) }
        var ids = Set<String>()
        for (index, raw) in rawSteps.enumerated() {
            guard let s = raw.objectValue else { errors.append(PlanError(field: "steps[\(index)]", "must be an object")); continue }
            let id = s["id"]?.stringValue ?? "#\(index)"
            func err(_ field: String?, _ message: String) { errors.append(PlanError(step: id, field: field, message)) }
            let stepKeys: Set<String> = ["id", "call", "input", "depends_on", "when", "retry", "timeout_ms", "on_error", "description",
                                         "foreach", "approval"]
            for key in s.keys.sorted() where !stepKeys.contains(key) { err(key, "unknown field") }
            if s["id"]?.stringValue == nil { err("id", "is missing (every step needs a unique id)") }
            else if !PlanStep.isValidId(id) { err("id", "must match [A-Za-z0-9_-]+") }
            else if !ids.insert(id).inserted { err("id", "is used by more than one step") }
            let call = s["call"]?.stringValue ?? ""
            var template: TemplateRef?
            if s["call"]?.stringValue == nil { err("call", "is missing (write \"driver.tool\", e.g. \"echo.echo\", or \"template:NAME@VERSION\")") }
            else if call.hasPrefix(TemplateRef.callPrefix) {
                do { template = try TemplateRef.fromCall(call) } catch { err("call", error.message) }
            } else if ToolId.split(call) == nil { err("call", "'\(call)' is not of the form driver.tool or template:NAME@VERSION") }
            var foreach: ForEach?
            if let f = s["foreach"] {
                if let o = f.objectValue, let items = o["items"] {
                    for k in o.keys.sorted() where !["items", "parallelism"].contains(k) { err("foreach.\(k)", "unknown field (foreach has items and parallelism)") }
                    var parallelism = 1
                    if let p = o["parallelism"] {
                        if let n = p.intValue, ForEach.parallelismRange.contains(n) { parallelism = n }
                        else { err("foreach.parallelism", "must be an integer from \(ForEach.parallelismRange.lowerBound) to \(ForEach.parallelismRange.upperBound)") }
                    }
                    if items.arrayValue == nil && items.stringValue == nil { err("foreach.items", "must be an array or a reference to one (\"${steps.list.output}\")") }
                    foreach = ForEach(items: items, parallelism: parallelism)
                } else { err("foreach", "must be an object {\"items\": \"${…}\", \"parallelism\": N}") }
            }
            var approval = false
            if let a = s["approval"] {
                if let b = a.boolValue { approval = b } else { err("approval", "must be true or false") }
            }
            let input = s["input"] ?? .object([:])
            var dependsOn: [String] = []
            if let d = s["depends_on"] {
                if let list = d.arrayValue, list.allSatisfy({ $0.stringValue != nil }) { dependsOn = list.compactMap(\.stringValue) }
                else if let one = d.stringValue { dependsOn = [one] }
                else { err("depends_on", "must be a step id or an array of step ids") }
            }
            var when: WhenExpression?
            if let w = s["when"] {
                do { when = try WhenExpression.parse(w) } catch { err("when", error.message) }
            }
            var retry = RetryPolicy()
            if let r = s["retry"] {
                if let obj = r.objectValue {
                    func intField(_ k: String, min: Int) -> Int? {
                        guard let v = obj[k] else { return nil }
                        guard let n = v.intValue, n >= min else { err("retry.\(k)", "must be an integer ≥ \(min)"); return nil }
                        return n
                    }
                    for k in obj.keys.sorted() where !["max_attempts", "backoff_ms", "max_backoff_ms"].contains(k) { err("retry.\(k)", "unknown field") }
                    if let n = intField("max_attempts", min: 1) { retry.maxAttempts = min(n, 100) }
                    if let n = intField("backoff_ms", min: 0) { retry.backoffMs = n }
                    if let n = intField("max_backoff_ms", min: 0) { retry.maxBackoffMs = n }
                } else { err("retry", "must be an object {max_attempts, backoff_ms, max_backoff_ms}") }
            }
            var timeout: Int?
            if let t = s["timeout_ms"] {
                if let n = t.intValue, n > 0 { timeout = n } else { err("timeout_ms", "must be a positive integer (milliseconds)") }
            }
            var onError = OnError.fail
            if let o = s["on_error"] {
                if let v = o.stringValue, let e = OnError(rawValue: v) { onError = e } else { err("on_error", "must be \"fail\" or \"continue\"") }
            }
            steps.append(PlanStep(id: id, call: call, input: input, dependsOn: dependsOn, when: when, retry: retry,
                                  timeoutMs: timeout, onError: onError, foreach: foreach, requiresApproval: approval, template: template))
        }

        let plan = Plan(name: name, description: root["description"]?.stringValue, inputs: inputs, steps: steps,
                        output: root["output"], source: json)
        // References and dependencies.
        let inputNames = Set(inputs.map(\.name))
        for step in steps {
            for dep in step.dependsOn where !ids.contains(dep) {
                errors.append(PlanError(step: step.id, field: "depends_on", "refers to unknown step '\(dep)'"))
            }
            do {
                for (ref, at) in try Template.references(in: step.input) {
                    errors += check(ref, in: step.id, field: at.isEmpty ? "input" : "input.\(at)", ids: ids, inputs: inputNames, plan: plan,
                                    inForeach: step.foreach != nil)
                }
            } catch { errors.append(PlanError(step: step.id, field: "input", error.message)) }
            if let items = step.foreach?.items {
                do {
                    for (ref, at) in try Template.references(in: items) {
                        errors += check(ref, in: step.id, field: at.isEmpty ? "foreach.items" : "foreach.items.\(at)", ids: ids, inputs: inputNames, plan: plan)
                    }
                } catch { errors.append(PlanError(step: step.id, field: "foreach.items", error.message)) }
            }
            for ref in step.when?.references ?? [] {
                errors += check(ref, in: step.id, field: "when", ids: ids, inputs: inputNames, plan: plan)
            }
        }
        if let output = root["output"] {
            do {
                for (ref, _) in try Template.references(in: output) {
                    errors += check(ref, in: nil, field: "output", ids: ids, inputs: inputNames, plan: plan)
                }
            } catch { errors.append(PlanError(field: "output", error.message)) }
        }
        if errors.isEmpty, let cycle = plan.findCycle() {
            errors.append(PlanError(step: cycle[0], field: "depends_on", "dependency cycle: \(cycle.joined(separator: " → "))"))
        }
        // The published schema (schemas/plan.schema.json) is the contract: check it too, so that
        // nothing it forbids slips past the hand-written checks above.
        if errors.isEmpty {
            for (path, message) in DocumentSchemas.check(json, against: DocumentSchemas.plan) {
                var step: String?
                var field = path
                if path.hasPrefix("steps["), let close = path.firstIndex(of: "]"), let n = Int(path[path.index(path.startIndex, offsetBy: 6)..<close]), n < steps.count {
                    step = steps[n].id
                    field = String(path[path.index(after: close)...].drop { $0 == "." })
                }
                errors.append(PlanError(step: step, field: field.isEmpty ? nil : field, message))
            }
        }
        guard errors.isEmpty else { throw PlanErrors(errors: errors) }
        return plan
    }

    private static func check(_ ref: Reference, in step: String?, field: String, ids: Set<String>, inputs: Set<String>, plan: Plan,
                              inForeach: Bool = false) -> [PlanError] {
        switch ref.root {
        case .item where !inForeach, .index where !inForeach:
            return [PlanError(step: step, field: field, "\(ref.text) is only defined in the input of a step with foreach")]
        case .input(let name) where !inputs.contains(name):
            return [PlanError(step: step, field: field, "\(ref.text) refers to undeclared input '\(name)' (declare it under \"inputs\")")]
        case .step(let id, _) where !ids.contains(id):
            return [PlanError(step: step, field: field, "\(ref.text) refers to unknown step '\(id)'")]
        case .step(let id, _) where id == step:
            return [PlanError(step: step, field: field, "\(ref.text) refers to the step itself")]
        default:
            return []
        }
    }

    /// Each step's dependencies: `depends_on` plus every step its input and `when` reference.
    public func dependencies(of step: PlanStep) -> Set<String> {
        var deps = Set(step.dependsOn)
        if let refs = try? Template.references(in: step.input) { for (r, _) in refs { if let id = r.stepId { deps.insert(id) } } }
        if let items = step.foreach?.items, let refs = try? Template.references(in: items) { for (r, _) in refs { if let id = r.stepId { deps.insert(id) } } }
        for r in step.when?.references ?? [] { if let id = r.stepId { deps.insert(id) } }
        return deps
    }

    /// A dependency cycle as a list of step ids (first repeated at the end), or nil.
    public func findCycle() -> [String]? {
        var color: [String: Int] = [:]  // 0 white, 1 grey, 2 black
        var stack: [String] = []
        let byId = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func visit(_ id: String) -> [String]? {
            color[id] = 1
            stack.append(id)
            for dep in dependencies(of: byId[id]!).sorted() where byId[dep] != nil {
                if color[dep] == 1 { return Array(stack[stack.firstIndex(of: dep)!...]) + [dep] }
                if color[dep, default: 0] == 0, let c = visit(dep) { return c }
            }
            stack.removeLast()
            color[id] = 2
            return nil
        }
        for s in steps where color[s.id, default: 0] == 0 {
            if let c = visit(s.id) { return c }
        }
        return nil
    }
}

extension PlanStep {
    static func isValidId(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
        }
    }
}
