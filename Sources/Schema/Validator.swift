import JSON

/// A compiled JSON Schema, ready to validate instances.
///
/// Immutable after `Schema.compile` returns; `validate` and `isValid` may be called from any
/// number of threads at once.
public final class CompiledSchema: Sendable {
    // All state is written once in `init` and only read afterwards. The stored graph holds
    // classes (not themselves Sendable) that are never mutated after compilation; see
    // `Storage`'s comment for why sharing it is safe.
    private let storage: Storage
    /// The options `validate(_:)` uses.
    public let options: ValidationOptions
    /// The canonical URI of the root schema.
    public let uri: String

    /// Nodes and resources of one compilation.
    ///
    /// `@unchecked Sendable`: every field is fully built inside `CompiledSchema.init` and
    /// never written afterwards (nodes, keyword payloads and resources are only read during
    /// validation; compiled regular expressions are immutable matchers — see `Pattern`), so
    /// concurrent reads from several threads are race-free.
    final class Storage: @unchecked Sendable {
        let root: Node
        let arena: [Node]
        let resources: [Resource]
        let payloads: [AnyObject]
        let usesDynamicRef: Bool
        init(root: Node, arena: [Node], resources: [Resource], payloads: [AnyObject], usesDynamicRef: Bool) {
            self.root = root
            self.arena = arena
            self.resources = resources
            self.payloads = payloads
            self.usesDynamicRef = usesDynamicRef
        }
    }

    init(json: JSONValue, registry: SchemaRegistry, baseURI: String, options: ValidationOptions) throws {
        self.options = options
        if options.validateSchema {
            try CompiledSchema.checkAgainstMetaschema(json, registry: registry, baseURI: baseURI)
        }
        let c = Compiler(registry: registry)
        let d = try c.addDocument(json, uri: baseURI)
        let root = try c.node(Location(doc: d, pointer: []))
        try c.compilePending()
        c.addAlternativeFilters()
        for node in c.arena { node.markShallow() }
        storage = Storage(root: root, arena: c.arena, resources: c.resourceArena, payloads: c.payloads, usesDynamicRef: c.usesDynamicRef)
        uri = root.absoluteLocation
    }

    /// The compiled 2020-12 meta-schema, shared by every compilation that validates schemas.
    static let standardMetaschema: CompiledSchema? = {
        guard let doc = SchemaRegistry.metaschemaDocuments[Schema.draft202012] else { return nil }
        return try? CompiledSchema(json: doc, registry: SchemaRegistry(), baseURI: Schema.draft202012,
                                   options: ValidationOptions(validateSchema: false))
    }()

    static func checkAgainstMetaschema(_ json: JSONValue, registry: SchemaRegistry, baseURI: String) throws {
        var meta: CompiledSchema?
        var metaURI = Schema.draft202012
        if case .string(let s)? = json["$schema"] {
            metaURI = splitFragment(resolveURI(s, against: baseURI)).0
            if Compiler.legacyDrafts.contains(metaURI) { return }  // no older meta-schemas embedded
        }
        if metaURI == Schema.draft202012 {
            meta = standardMetaschema
        } else if let doc = registry.document(at: metaURI) {
            meta = try CompiledSchema(json: doc, registry: registry, baseURI: metaURI,
                                      options: ValidationOptions(validateSchema: false))
        } else {
            throw SchemaCompileError(location: baseURI, message: "unknown $schema \"\(metaURI)\": it is neither draft 2020-12 nor a document in the registry")
        }
        guard let meta else { return }
        let r = meta.validate(json)
        if !r.isValid {
            throw SchemaCompileError(location: baseURI + "#", message: "the schema is not valid against its meta-schema \(metaURI)", metaschemaErrors: r.errors)
        }
    }

    /// How many subschemas `isValid` checks as arrays of leaves (`Node.isShallow`): for tests.
    var shallowNodeCount: Int { storage.arena.filter(\.isShallow).count }

    /// Validates `instance` with the options given at compile time, collecting every error.
    public func validate(_ instance: JSONValue) -> ValidationResult {
        validate(instance, options: options)
    }

    /// Validates `instance` with `options`, collecting every error.
    public func validate(_ instance: JSONValue, options: ValidationOptions) -> ValidationResult {
        var e = Evaluator(storage: storage, options: options, instance: instance, collect: true)
        _ = e.eval(NodeRef(storage.root), instance, nil)
        e.references.free()
        return ValidationResult(errors: e.finishedErrors())
    }

    /// `true` when `instance` is valid; stops at the first failure, so it is faster than
    /// `validate` on invalid instances. `false` also when validation stops at a limit of
    /// `ValidationOptions` (`validate` says which).
    public func isValid(_ instance: JSONValue) -> Bool {
        var e = Evaluator(storage: storage, options: options, instance: instance, collect: false)
        let ok = e.eval(NodeRef(storage.root), instance, nil)
        e.references.free()
        return ok && e.stopError == nil
    }
}

/// Annotations that `unevaluatedProperties` / `unevaluatedItems` consume: which members and
/// items the sibling and in-place subschemas evaluated successfully. One evaluation owns each
/// instance (never shared between threads), hence unchecked exclusivity.
///
/// Members are identified by their position in the object's iteration order: every
/// subschema that annotates a member evaluates the same object value (in-place applicators
/// pass the value itself along), and a dictionary's iteration order depends only on its
/// storage, so a position names the same member everywhere. That makes the set of evaluated
/// members a bit set: no hashing of names, no set allocation for small objects.
final class Annotations {
    @exclusivity(unchecked) var properties = PositionSet()
    @exclusivity(unchecked) var allProperties = false
    @exclusivity(unchecked) var prefixItems = 0
    @exclusivity(unchecked) var allItems = false
    @exclusivity(unchecked) var containsIndices = PositionSet()

    func merge(_ o: Annotations) {
        if o.allProperties { allProperties = true } else if !allProperties { properties.formUnion(o.properties) }
        prefixItems = max(prefixItems, o.prefixItems)
        if o.allItems { allItems = true } else if !allItems { containsIndices.formUnion(o.containsIndices) }
    }
}

/// A set of non-negative positions (member positions, item indices): 64 inline, more in
/// an array allocated only when needed.
struct PositionSet {
    private var low: UInt64 = 0
    private var high: [UInt64] = []

    @inline(__always)
    mutating func insert(_ i: Int) {
        if i < 64 { low |= 1 << UInt64(i); return }
        let w = i / 64 - 1
        if w >= high.count { high.append(contentsOf: repeatElement(0, count: w - high.count + 1)) }
        high[w] |= 1 << UInt64(i % 64)
    }

    @inline(__always)
    func contains(_ i: Int) -> Bool {
        if i < 64 { return low & (1 << UInt64(i)) != 0 }
        let w = i / 64 - 1
        return w < high.count && high[w] & (1 << UInt64(i % 64)) != 0
    }

    mutating func formUnion(_ o: PositionSet) {
        low |= o.low
        if o.high.isEmpty { return }
        if high.count < o.high.count { high.append(contentsOf: repeatElement(0, count: o.high.count - high.count)) }
        for w in o.high.indices { high[w] |= o.high[w] }
    }
}

/// An error while unwinding: tokens are collected innermost first and reversed at the end.
struct RawError {
    var keywordTokens: [String]
    var instanceTokens: [String]
    let keyword: String
    let absolute: String
    let message: String
}

struct ResourceRef {
    unowned(unsafe) let resource: Resource
}

/// A reference being followed: its target and the state that decides how the target is
/// evaluated (mode bits and the dynamic scope's length; see `Evaluator.followReference`).
struct ReferenceFrame {
    let target: UnsafeMutableRawPointer
    let state: Int
}

/// The references being followed, innermost last: a plain growable buffer (no copy-on-write
/// checks on the hot path), owned by one `Evaluator` and freed by `free()` when the validation ends.
struct ReferenceStack {
    private var base: UnsafeMutablePointer<ReferenceFrame>?
    private var count = 0
    private var capacity = 0

    @inline(__always)
    mutating func push(_ f: ReferenceFrame) {
        if count == capacity { grow() }
        (base! + count).initialize(to: f)
        count += 1
    }

    @inline(__always)
    mutating func pop() { count -= 1 }

    /// Whether one of the last `last` frames is (target, state).
    func contains(_ target: UnsafeMutableRawPointer, _ state: Int, amongLast last: Int) -> Bool {
        guard let base else { return false }
        for i in (count - last)..<count where base[i].target == target && base[i].state == state { return true }
        return false
    }

    @inline(never)
    mutating func grow() {
        let bigger = UnsafeMutablePointer<ReferenceFrame>.allocate(capacity: max(capacity * 2, 32))
        if let base {
            bigger.moveInitialize(from: base, count: count)
            base.deallocate()
        }
        base = bigger
        capacity = max(capacity * 2, 32)
    }

    mutating func free() {
        base?.deallocate()
        base = nil
        capacity = 0
        count = 0
    }
}

/// The address of a local in the caller's frame: how far the thread's stack has grown.
@inline(__always)
func currentStackAddress() -> UInt {
    var marker: UInt8 = 0
    return withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
}

/// One validation run.
///
/// Limits (see `ValidationOptions`) are checked only where evaluation can recurse without
/// bound: when it follows a reference (cycles, reference depth, work, stack) and when it moves
/// into a member or item of the instance (instance depth). Between two references the work
/// and stack used are bounded by the schema's own size and the instance's. Hitting a limit
/// stops the whole validation (`stopError`): a `false` deep inside `not` must not turn into
/// a success.
struct Evaluator {
    let storage: CompiledSchema.Storage
    let formatAssertion: Bool
    let trackScope: Bool
    /// `true` while errors are being collected; `false` for boolean-only evaluation (anyOf
    /// branches, `not`, `if`, `contains`), which may stop at the first failure.
    var collect: Bool
    var errors: [RawError] = []
    var scope: [ResourceRef] = []

    let options: ValidationOptions
    /// The instance being validated (counted only if the step budget must grow).
    let instance: JSONValue
    /// How many members/items deep evaluation is in the instance.
    var instanceDepth = 0
    /// `true` while an alternative of `anyOf`/`oneOf` is evaluated (see `objectHolds`).
    var inAlternative = false
    /// References followed since evaluation last moved into the instance.
    var referencesHere = 0
    /// Every reference being followed, innermost last; the last `referencesHere` are at the
    /// current instance value.
    var references = ReferenceStack()
    /// References followed, against `stepBudget`.
    var steps = 0
    var stepBudget: Int
    var budgetGrown = false
    /// Values in the instance, once counted for the budget.
    var valueCount = 0
    let stackStart: UInt
    /// Why validation stopped early, if it did; the only error then reported.
    var stopError: RawError?

    init(storage: CompiledSchema.Storage, options: ValidationOptions, instance: JSONValue, collect: Bool) {
        self.storage = storage
        formatAssertion = options.formatAssertion
        trackScope = storage.usesDynamicRef
        self.collect = collect
        self.options = options
        self.instance = instance
        stepBudget = options.maximumEvaluationSteps
        stackStart = currentStackAddress()
    }

    func finishedErrors() -> [ValidationError] {
        if let stopError { return [Evaluator.finished(stopError)] }
        return errors.map(Evaluator.finished)
    }

    static func finished(_ e: RawError) -> ValidationError {
        ValidationError(
            instanceLocation: pointerString(e.instanceTokens.reversed()),
            keywordLocation: pointerString(e.keywordTokens.reversed()),
            absoluteKeywordLocation: e.absolute,
            keyword: e.keyword,
            message: e.message)
    }

    // MARK: limits

    /// Evaluates `target`, reached through `keyword` (`$ref` or `$dynamicRef`) of `n`.
    @inline(__always)
    mutating func followReference(_ target: NodeRef, from n: NodeRef, _ keyword: String, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard enterReference(target, from: n, keyword, ann) else { return false }
        let start = errors.count
        let ok = eval(target, v, ann)
        referencesHere -= 1
        references.pop()
        if !ok { decorate(start, keyword) }
        return ok
    }

    /// Checks the limits and pushes a frame before following a reference; `false` when
    /// validation must stop instead. Anything beyond counting goes to `referenceAllowed`, so
    /// that its locals stay off the recursion's stack.
    @inline(__always)
    mutating func enterReference(_ target: NodeRef, from n: NodeRef, _ keyword: String, _ ann: Annotations?) -> Bool {
        steps &+= 1
        if steps > stepBudget || referencesHere >= options.maximumReferenceDepth || stackExceeded() || referencesHere > 0 {
            guard referenceAllowed(target, from: n, keyword, ann) else { return false }
        }
        references.push(ReferenceFrame(target: target.address, state: scope.count << 2 | (collect ? 1 : 0) | (ann == nil ? 0 : 2)))
        referencesHere += 1
        return true
    }

    /// Evaluates `sub` against `v`, a member, item or property name of the current value.
    @inline(__always)
    mutating func descend(_ sub: NodeRef, _ v: JSONValue, _ keyword: String, from n: NodeRef) -> Bool {
        // A leaf that holds needs none of the bookkeeping below.
        if sub.isLeaf, instanceDepth < options.maximumInstanceDepth, leafPasses(sub, v) { return true }
        // An array of leaves: its items are one level deeper, hence `+ 1`.
        if sub.isShallow, instanceDepth + 1 < options.maximumInstanceDepth, shallowPasses(sub, v) { return true }
        if instanceDepth >= options.maximumInstanceDepth, sub.kind == .keywords {
            return stop(n, keyword, "the instance is nested more than \(options.maximumInstanceDepth) levels deep, deeper than validation goes (ValidationOptions.maximumInstanceDepth)")
        }
        instanceDepth += 1
        let saved = referencesHere
        referencesHere = 0
        let ok = eval(sub, v, nil)
        referencesHere = saved
        instanceDepth -= 1
        return ok
    }

    /// `check` of one alternative of `anyOf`/`oneOf` (see `inAlternative`).
    @inline(__always)
    mutating func checkAlternative(_ sub: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        let saved = inAlternative
        inAlternative = true
        let ok = check(sub, v, ann)
        inAlternative = saved
        return ok
    }

    /// `descend` in boolean-only mode.
    @inline(__always)
    mutating func checkDescend(_ sub: NodeRef, _ v: JSONValue, _ keyword: String, from n: NodeRef) -> Bool {
        let saved = collect
        collect = false
        let ok = descend(sub, v, keyword, from: n)
        collect = saved
        return ok
    }

    @inline(__always)
    func stackExceeded() -> Bool {
        let here = currentStackAddress()
        return (here < stackStart ? stackStart - here : here - stackStart) > UInt(max(options.maximumStackBytes, 0))
    }

    /// The slow path of `enterReference`: limits, and the cycle check when other references
    /// are being followed at this value.
    ///
    /// The target's evaluation depends only on the value (the same for the last
    /// `referencesHere` frames), the mode (errors collected or not, annotations wanted or not)
    /// and the dynamic scope (which only grows along a path, so its length identifies it). If
    /// a frame matches all three, the evaluation would repeat itself forever: a cycle.
    @inline(never)
    mutating func referenceAllowed(_ targetRef: NodeRef, from n: NodeRef, _ keyword: String, _ ann: Annotations?) -> Bool {
        let target = targetRef.node
        if stopError != nil { return false }
        let state = scope.count << 2 | (collect ? 1 : 0) | (ann == nil ? 0 : 2)
        if references.contains(targetRef.address, state, amongLast: referencesHere) {
            return stop(n, keyword, "\"\(keyword)\" at \(n.absoluteLocation) leads back to \(target.absoluteLocation), which is already being evaluated against the same value: a reference cycle that never moves into the instance, so validation would never end")
        }
        if referencesHere >= options.maximumReferenceDepth {
            return stop(n, keyword, "more than \(options.maximumReferenceDepth) references followed in a row without moving into the instance (ValidationOptions.maximumReferenceDepth)")
        }
        if stackExceeded() {
            return stop(n, keyword, "validation needs more than \(options.maximumStackBytes) bytes of stack (ValidationOptions.maximumStackBytes): the data is nested too deep for the references the schema follows at each level")
        }
        if steps > stepBudget, !budgetGrown {
            // Past the fixed allowance: grow it in proportion to the instance, once.
            budgetGrown = true
            valueCount = countValues(instance)
            let perValue = options.evaluationStepsPerValue.multipliedReportingOverflow(by: valueCount)
            let total = options.maximumEvaluationSteps.addingReportingOverflow(perValue.partialValue)
            stepBudget = perValue.overflow || total.overflow ? Int.max : total.partialValue
        }
        if steps > stepBudget {
            return stop(n, keyword, "validation stopped after following \(stepBudget) references (ValidationOptions.maximumEvaluationSteps + evaluationStepsPerValue for each of the \(valueCount) values in the instance): the schema applies its subschemas to the same values too many times")
        }
        return true
    }

    /// Records why validation stops and makes every later reference stop too (what remains
    /// to evaluate is then bounded by the schema's size times the instance's).
    mutating func stop(_ n: NodeRef, _ keyword: String, _ message: String) -> Bool {
        if stopError == nil {
            stopError = RawError(keywordTokens: [keyword], instanceTokens: [], keyword: keyword,
                                 absolute: n.absoluteLocation + "/" + JSONPointer.escape(keyword), message: message)
        }
        stepBudget = -1
        budgetGrown = true
        return false
    }

    /// The number of values in `v` (itself, and every member and item at any depth).
    func countValues(_ v: JSONValue) -> Int {
        var count = 0
        var pending = [v]
        while let x = pending.popLast() {
            count += 1
            switch x {
            case .array(let a): pending.append(contentsOf: a)
            case .object(let o): pending.append(contentsOf: o.values)
            default: break
            }
        }
        return count
    }

    // MARK: errors

    @inline(__always)
    mutating func fail(_ n: NodeRef, _ keyword: String, _ message: @autoclosure () -> String) {
        guard collect else { return }
        errors.append(RawError(keywordTokens: [keyword], instanceTokens: [], keyword: keyword,
                               absolute: n.absoluteLocation + "/" + JSONPointer.escape(keyword), message: message()))
    }

    /// Records an error about a member or item (`at`) of the current instance.
    mutating func fail(_ n: NodeRef, _ keyword: String, at token: String, _ message: @autoclosure () -> String) {
        guard collect else { return }
        errors.append(RawError(keywordTokens: [keyword], instanceTokens: [token], keyword: keyword,
                               absolute: n.absoluteLocation + "/" + JSONPointer.escape(keyword), message: message()))
    }

    /// Prefixes errors recorded since `start` with schema tokens (outermost last in the call:
    /// `decorate(s, "properties", "name")`) and an instance token.
    @inline(__always)
    mutating func decorate(_ start: Int, _ k1: String, _ k2: String? = nil, instance: String? = nil) {
        guard start < errors.count else { return }
        for i in start..<errors.count {
            if let k2 { errors[i].keywordTokens.append(k2) }
            errors[i].keywordTokens.append(k1)
            if let instance { errors[i].instanceTokens.append(instance) }
        }
    }

    // MARK: evaluation

    mutating func eval(_ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        // Assertions only: decided without scope, annotations or limits (none of which an
        // assertion reads); the general path below runs only to report a failure.
        if n.isLeaf {
            if leafPasses(n, v) { return true }
            if !collect { return false }
        }
        switch n.kind {
        case .alwaysTrue:
            return true
        case .alwaysFalse:
            if collect {
                errors.append(RawError(keywordTokens: [], instanceTokens: [], keyword: "false", absolute: n.absoluteLocation,
                                       message: "no value is allowed here (the schema is false)"))
            }
            return false
        case .keywords:
            break
        }
        var pushed = false
        if trackScope, scope.last?.resource !== n.resource {
            scope.append(ResourceRef(resource: n.resource))
            pushed = true
        }
        defer { if pushed { scope.removeLast() } }

        if n.tracksEvaluation {
            let local = Annotations()
            var ok = evalKeywords(n, v, local)
            if ok || collect { ok = evalUnevaluated(n, v, local) && ok }
            if ok, let ann { ann.merge(local) }
            return ok
        }
        return evalKeywords(n, v, ann)
    }

    mutating func evalKeywords(_ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        var valid = true
        let steps = n.steps
        for i in 0..<steps.count {
            if !evalKeyword(steps[i], n, v, ann) {
                valid = false
                if !collect { return false }
            }
        }
        return valid
    }

    /// Evaluates `n` in boolean-only mode (errors discarded).
    @inline(__always)
    mutating func check(_ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        if n.isLeaf { return leafPasses(n, v) }
        let saved = collect
        collect = false
        let ok = eval(n, v, ann)
        collect = saved
        return ok
    }

    /// Dispatches one keyword. Applicators (which recurse) each get their own small function
    /// and assertions share one, so that each level of recursion uses little stack.
    @inline(__always)
    mutating func evalKeyword(_ kw: Step, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        switch kw.op {
        case .ref: return evalRefKeyword(kw.nodePayload, n, v, ann)
        case .dynamicRef: return evalDynamicRefKeyword(kw.payload(DynamicRef.self), n, v, ann)
        // Payloads lent, not retained: `payload(_:)` would cost a retain and a release per
        // object or array validated.
        case .object: return kw.withPayload(ObjectApplicator.self) { evalObjectKeyword($0, n, v, ann) }
        case .items: return kw.withPayload(ItemsApplicator.self) { evalItemsKeyword($0, n, v, ann) }
        case .contains:
            return evalContainsKeyword(kw.nodePayload, kw.a, kw.b < 0 ? nil : kw.b, n, v, ann)
        case .propertyNames: return evalPropertyNamesKeyword(kw.nodePayload, n, v, ann)
        case .dependentSchemas: return evalDependentSchemasKeyword(kw.payload(DependentSchemasBox.self).deps, n, v, ann)
        case .allOf: return evalAllOfKeyword(kw.withPayload(NodeListBox.self) { $0.nodes }, n, v, ann)
        case .anyOf:
            let (subs, filters) = kw.withPayload(NodeListBox.self) { ($0.nodes, $0.filters) }
            return evalAnyOfKeyword(subs, filters, n, v, ann)
        case .oneOf:
            let (subs, filters) = kw.withPayload(NodeListBox.self) { ($0.nodes, $0.filters) }
            return evalOneOfKeyword(subs, filters, n, v, ann)
        case .not: return evalNotKeyword(kw.nodePayload, n, v, ann)
        case .conditional: return kw.withPayload(Conditional.self) { evalConditionalKeyword($0, n, v, ann) }
        default:
            if passes(kw, v) { return true }
            reportAssertion(kw, n, v)
            return false
        }
    }

    @inline(never)
    mutating func evalRefKeyword(_ target: NodeRef, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        followReference(target, from: n, "$ref", v, ann)
    }

    @inline(never)
    mutating func evalDynamicRefKeyword(_ d: DynamicRef, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        var target = d.initial
        if let name = d.anchor {
            for r in scope {
                if let t = r.resource.dynamicAnchors[name] { target = t; break }
            }
        }
        return followReference(target, from: n, "$dynamicRef", v, ann)
    }

    @inline(never)
    mutating func evalObjectKeyword(_ app: ObjectApplicator, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard case .object(let o) = v else { return true }
        return evalObject(app, n, o, ann)
    }

    @inline(never)
    mutating func evalItemsKeyword(_ app: ItemsApplicator, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard case .array(let a) = v else { return true }
        return evalItems(app, n, a, ann)
    }

    @inline(never)
    mutating func evalContainsKeyword(_ sub: NodeRef, _ minC: Int, _ maxC: Int?, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard case .array(let a) = v else { return true }
        var count = 0
        for (i, e) in a.enumerated() where checkDescend(sub, e, "contains", from: n) {
            count += 1
            ann?.containsIndices.insert(i)
            if ann == nil, maxC == nil, count >= minC { return true }
        }
        if count < minC {
            if minC == 1 {
                fail(n, "contains", "the array does not contain any item that matches the \"contains\" schema")
            } else {
                fail(n, "minContains", "the array contains \(count) matching item\(count == 1 ? "" : "s"), fewer than the minimum of \(minC)")
            }
            return false
        }
        if let maxC, count > maxC {
            fail(n, "maxContains", "the array contains \(count) matching items, more than the maximum of \(maxC)")
            return false
        }
        return true
    }

    @inline(never)
    mutating func evalPropertyNamesKeyword(_ sub: NodeRef, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard case .object(let o) = v else { return true }
        var ok = true
        for k in o.keys {
            let start = errors.count
            if !descend(sub, .string(k.string), "propertyNames", from: n) {
                ok = false
                if !collect { return false }
                decorate(start, "propertyNames")
            }
        }
        return ok
    }

    @inline(never)
    mutating func evalDependentSchemasKeyword(_ deps: [(String, NodeRef)], _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        guard case .object(let o) = v else { return true }
        var ok = true
        for (trigger, sub) in deps where o[trigger] != nil {
            let start = errors.count
            if !eval(sub, v, ann) {
                ok = false
                if !collect { return false }
                decorate(start, "dependentSchemas", trigger)
            }
        }
        return ok
    }

    @inline(never)
    mutating func evalAllOfKeyword(_ subs: UnsafeMutableBufferPointer<NodeRef>, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        var ok = true
        for (i, sub) in subs.enumerated() {
            let start = errors.count
            if !eval(sub, v, ann) {
                ok = false
                if !collect { return false }
                decorate(start, "allOf", String(i))
            }
        }
        return ok
    }

    /// The member an `AlternativeFilter` asks for, looked up once for a run of alternatives
    /// that ask for the same name (a union's alternatives usually share their tag).
    struct MemberLookup {
        let object: JSONObject?
        var name: String?
        var value: JSONValue?

        init(_ v: JSONValue) {
            if case .object(let o) = v { object = o } else { object = nil }
        }

        @inline(__always)
        mutating func member(_ key: String) -> JSONValue? {
            if name != key {
                name = key
                value = object?[key]
            }
            return value
        }
    }

    /// Whether alternative `i` fails its `AlternativeFilter` (so need not be evaluated).
    @inline(__always)
    mutating func ruledOut(_ filters: UnsafeMutableBufferPointer<AlternativeFilter>, _ i: Int, _ v: JSONValue, _ lookup: inout MemberLookup) -> Bool {
        guard i < filters.count else { return false }
        if !filters[i].types.matches(v) { return true }
        guard lookup.object != nil, let key = filters[i].property, let schema = filters[i].propertySchema else { return false }
        guard let member = lookup.member(key) else { return filters[i].propertyRequired }
        return !leafPasses(schema, member)
    }

    @inline(never)
    mutating func evalAnyOfKeyword(_ subs: UnsafeMutableBufferPointer<NodeRef>, _ filters: UnsafeMutableBufferPointer<AlternativeFilter>,
                                   _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        var lookup = MemberLookup(v)
        if ann == nil {
            for (i, sub) in subs.enumerated() where !ruledOut(filters, i, v, &lookup) && checkAlternative(sub, v, nil) { return true }
        } else {
            var any = false
            for (i, sub) in subs.enumerated() where !ruledOut(filters, i, v, &lookup) {
                let local = Annotations()
                if checkAlternative(sub, v, local) {
                    any = true
                    ann?.merge(local)
                }
            }
            if any { return true }
        }
        fail(n, "anyOf", "\(preview(v)) does not match any of the \(subs.count) schemas in \"anyOf\"")
        return false
    }

    @inline(never)
    mutating func evalOneOfKeyword(_ subs: UnsafeMutableBufferPointer<NodeRef>, _ filters: UnsafeMutableBufferPointer<AlternativeFilter>,
                                   _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        var matchCount = 0
        var matched: [Int] = []  // which ones, for the error message (collect mode only)
        var matchedAnn: Annotations? = nil
        var lookup = MemberLookup(v)
        for (i, sub) in subs.enumerated() where !ruledOut(filters, i, v, &lookup) {
            let local: Annotations? = ann == nil ? nil : Annotations()
            if checkAlternative(sub, v, local) {
                matchCount += 1
                if collect { matched.append(i) }
                matchedAnn = local
                if matchCount > 1 && !collect { return false }
                if matchCount > 1 && ann == nil { break }
            }
        }
        if matchCount == 1 {
            if let ann, let matchedAnn { ann.merge(matchedAnn) }
            return true
        }
        if matchCount == 0 {
            fail(n, "oneOf", "\(preview(v)) does not match any of the \(subs.count) schemas in \"oneOf\"")
        } else {
            fail(n, "oneOf", "\(preview(v)) matches more than one schema in \"oneOf\" (at \(matched.map(String.init).joined(separator: ", "))), but must match exactly one")
        }
        return false
    }

    @inline(never)
    mutating func evalNotKeyword(_ sub: NodeRef, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        if !check(sub, v, nil) { return true }
        fail(n, "not", "\(preview(v)) must not match the schema in \"not\"")
        return false
    }

    @inline(never)
    mutating func evalConditionalKeyword(_ c: Conditional, _ n: NodeRef, _ v: JSONValue, _ ann: Annotations?) -> Bool {
        if ann == nil && c.thenNode == nil && c.elseNode == nil { return true }
        let local: Annotations? = ann == nil ? nil : Annotations()
        if check(c.ifNode, v, local) {
            if let ann, let local { ann.merge(local) }
            guard let t = c.thenNode else { return true }
            let start = errors.count
            let ok = eval(t, v, ann)
            if !ok { decorate(start, "then") }
            return ok
        } else {
            guard let e = c.elseNode else { return true }
            let start = errors.count
            let ok = eval(e, v, ann)
            if !ok { decorate(start, "else") }
            return ok
        }
    }

    /// Whether an assertion keyword (one that applies no subschema) holds for `v`. The
    /// only place that decides an assertion: `reportAssertion` only explains a failure.
    /// `mutating` (like `leafPasses`) although it changes nothing: called from the mutating
    /// evaluation, a non-mutating method gets a copy of the whole evaluator (a 264-byte
    /// memcpy per call); its helpers are `static` for the same reason.
    @inline(__always)
    mutating func passes(_ kw: Step, _ v: JSONValue) -> Bool {
        switch kw.op {
        case .type:
            return TypeMask(rawValue: UInt8(truncatingIfNeeded: kw.a)).matches(v)
        case .enumeration:
            return kw.withPayload(ValuesBox.self) { box in
                if let strings = box.strings {
                    guard case .string(let s) = v else { return false }
                    return strings.find(s) != nil
                }
                return Evaluator.enumContains(box.values, v)
            }
        case .const:
            return kw.withPayload(ValuesBox.self) { $0.values[0] == v }
        case .multipleOf:
            return isMultiple(v, of: kw.payload(DivisorBox.self).divisor)
        case .minimum:
            guard let c = kw.compareLimit(v) else { return true }
            return c >= 0
        case .maximum:
            guard let c = kw.compareLimit(v) else { return true }
            return c <= 0
        case .exclusiveMinimum:
            guard let c = kw.compareLimit(v) else { return true }
            return c > 0
        case .exclusiveMaximum:
            guard let c = kw.compareLimit(v) else { return true }
            return c < 0
        case .minLength:
            guard case .string(let s) = v else { return true }
            let m = kw.a
            // A scalar takes at most 4 UTF-8 bytes; dividing (not `m * 4`) cannot overflow.
            let bytes = s.utf8.count
            if bytes / 4 >= m { return true }
            if bytes < m { return false }
            return s.unicodeScalars.count >= m
        case .maxLength:
            guard case .string(let s) = v else { return true }
            let m = kw.a
            return s.utf8.count <= m || s.unicodeScalars.count <= m
        case .pattern:
            guard case .string(let s) = v else { return true }
            return kw.withPayload(Pattern.self) { $0.test(s) == .match }
        case .format:
            guard kw.flag || formatAssertion, case .string(let s) = v, let f = Format(rawValue: kw.a) else { return true }
            return f.check(s)
        case .minItems:
            guard case .array(let a) = v else { return true }
            return a.count >= kw.a
        case .maxItems:
            guard case .array(let a) = v else { return true }
            return a.count <= kw.a
        case .uniqueItems:
            guard case .array(let a) = v, a.count > 1 else { return true }
            return Evaluator.firstDuplicate(a) == nil
        case .minProperties:
            guard case .object(let o) = v else { return true }
            return o.count >= kw.a
        case .maxProperties:
            guard case .object(let o) = v else { return true }
            return o.count <= kw.a
        case .required:
            guard case .object(let o) = v else { return true }
            return kw.withPayload(NamesBox.self) { box in
                for name in box.names where o[name] == nil { return false }
                return true
            }
        case .dependentRequired:
            guard case .object(let o) = v else { return true }
            return kw.withPayload(DependentRequiredBox.self) { box in
                for (trigger, names) in box.deps where o[trigger] != nil {
                    for name in names where o[name] == nil { return false }
                }
                return true
            }
        default:
            return true
        }
    }

    /// `x == y` (JSON equality), with strings and integers decided without the general
    /// comparison, whose switch over the pair copies both values.
    @inline(__always)
    static func sameValue(_ x: JSONValue, _ y: JSONValue) -> Bool {
        switch x {
        case .string(let s):
            guard case .string(let t) = y else { return false }
            return JSONKey(s) == JSONKey(t)  // by Unicode scalars, as JSON compares strings
        case .int(let i):
            if case .int(let j) = y { return i == j }
            return x == y
        default:
            return x == y
        }
    }

    static func enumContains(_ values: [JSONValue], _ v: JSONValue) -> Bool {
        for e in values where e == v { return true }
        return false
    }

    /// Whether `v` satisfies a node made of assertions only (`Node.isLeaf`): one tight loop,
    /// none of the bookkeeping that applicators need.
    @inline(__always)
    mutating func leafPasses(_ n: NodeRef, _ v: JSONValue) -> Bool {
        let steps = n.steps
        for i in 0..<steps.count where !passes(steps[i], v) { return false }
        return true
    }

    /// Whether `v` satisfies a `Node.isShallow` node (assertions plus `items` of a leaf), the
    /// items read in place. Only a `true` is taken as the answer: on `false` the caller runs
    /// the general evaluation, which finds the same answer (and explains it). Needs one level
    /// of instance depth to spare for the items.
    @inline(never)
    mutating func shallowPasses(_ n: NodeRef, _ v: JSONValue) -> Bool {
        let steps = n.steps
        for i in 0..<steps.count {
            let kw = steps[i]
            if kw.op == .items {
                guard case .array(let a) = v else { continue }
                guard let rest = kw.withPayload(ItemsApplicator.self, { $0.items }) else { return false }
                let ok = a.withUnsafeBufferPointer { items -> Bool in
                    for j in 0..<items.count where !leafPasses(rest, items[j]) { return false }
                    return true
                }
                if !ok { return false }
            } else if !passes(kw, v) {
                return false
            }
        }
        return true
    }

    /// Records the errors of an assertion `passes` found false (in collect mode).
    @inline(never)
    mutating func reportAssertion(_ kw: Step, _ n: NodeRef, _ v: JSONValue) {
        guard collect else { return }
        switch kw.op {
        case .type:
            let mask = TypeMask(rawValue: UInt8(truncatingIfNeeded: kw.a))
            fail(n, "type", "expected \(describeTypes(mask)), but got \(describeType(v))")
        case .enumeration:
            let values = kw.payload(ValuesBox.self).values
            fail(n, "enum", "\(preview(v)) is not one of the allowed values: \(values.prefix(10).map { preview($0) }.joined(separator: ", "))\(values.count > 10 ? ", …" : "")")
        case .const:
            fail(n, "const", "\(preview(v)) is not the required value \(preview(kw.payload(ValuesBox.self).values[0]))")
        case .multipleOf:
            let div = kw.payload(DivisorBox.self).divisor
            fail(n, "multipleOf", "\(preview(v)) is not a multiple of \(preview(div.intValue.map(JSONValue.int) ?? .double(div.value)))")
        case .minimum:
            fail(n, "minimum", "\(preview(v)) is less than the minimum of \(preview(kw.limit.json))")
        case .maximum:
            fail(n, "maximum", "\(preview(v)) is greater than the maximum of \(preview(kw.limit.json))")
        case .exclusiveMinimum:
            fail(n, "exclusiveMinimum", "\(preview(v)) must be greater than \(preview(kw.limit.json))")
        case .exclusiveMaximum:
            fail(n, "exclusiveMaximum", "\(preview(v)) must be less than \(preview(kw.limit.json))")
        case .minLength:
            let m = kw.a
            fail(n, "minLength", "\(preview(v)) is shorter than \(m) character\(m == 1 ? "" : "s")")
        case .maxLength:
            let m = kw.a
            fail(n, "maxLength", "\(preview(v)) is longer than \(m) character\(m == 1 ? "" : "s")")
        case .pattern:
            guard case .string(let s) = v else { return }
            let p = kw.payload(Pattern.self)
            if case .tooComplex(let why) = p.test(s) {
                fail(n, "pattern", "\(preview(v)) cannot be checked against the pattern \(preview(.string(p.source))): \(why)")
            } else {
                fail(n, "pattern", "\(preview(v)) does not match the pattern \(preview(.string(p.source)))")
            }
        case .format:
            guard let f = Format(rawValue: kw.a) else { return }
            fail(n, "format", "\(preview(v)) is not a valid \(f.name)")
        case .minItems:
            guard case .array(let a) = v else { return }
            let m = kw.a
            fail(n, "minItems", "the array has \(a.count) item\(a.count == 1 ? "" : "s"), fewer than the minimum of \(m)")
        case .maxItems:
            guard case .array(let a) = v else { return }
            fail(n, "maxItems", "the array has \(a.count) items, more than the maximum of \(kw.a)")
        case .uniqueItems:
            guard case .array(let a) = v, let (i, j) = Evaluator.firstDuplicate(a) else { return }
            fail(n, "uniqueItems", "the array items at \(i) and \(j) are equal, but items must be unique")
        case .minProperties:
            guard case .object(let o) = v else { return }
            let m = kw.a
            fail(n, "minProperties", "the object has \(o.count) propert\(o.count == 1 ? "y" : "ies"), fewer than the minimum of \(m)")
        case .maxProperties:
            guard case .object(let o) = v else { return }
            fail(n, "maxProperties", "the object has \(o.count) properties, more than the maximum of \(kw.a)")
        case .required:
            guard case .object(let o) = v else { return }
            for name in kw.payload(NamesBox.self).names where o[name] == nil {
                fail(n, "required", "the required property \(preview(.string(name))) is missing")
            }
        case .dependentRequired:
            guard case .object(let o) = v else { return }
            for (trigger, names) in kw.payload(DependentRequiredBox.self).deps where o[trigger] != nil {
                for name in names where o[name] == nil {
                    fail(n, "dependentRequired", "the property \(preview(.string(name))) is required when \(preview(.string(trigger))) is present")
                }
            }
        default:
            break
        }
    }

    /// `evalObject` in boolean-only mode, for applicators without `patternProperties`: the
    /// same answer, found cheaply. Required members are counted before any member is
    /// evaluated and leaf members (assertions only) are checked in place. Within the
    /// alternatives of `anyOf`/`oneOf` (`inAlternative`), where most evaluations fail, the
    /// members that are not leaves wait for a second pass, so that a failing alternative is
    /// usually rejected by a simple check before any deep evaluation; elsewhere (mostly valid
    /// data) one pass is cheaper. Evaluation has no effect other than its answer and the
    /// annotations (the same set in any order), so the order is free.
    mutating func objectHolds(_ app: ObjectApplicator, _ n: NodeRef, _ o: JSONObject, _ ann: Annotations?) -> Bool {
        if o.count < app.requiredAll.nonzeroBitCount { return false }
        var requiredSeen: UInt64 = 0
        // Inside an alternative, members whose subschema is not a leaf wait for a second pass,
        // so that a failing leaf answers first. Nothing of a member is kept between the passes:
        // holding a value (or its keyword) across the loop cost a copy and a destroy per member
        // in every object, alternative or not (4 % of the array shape's instructions).
        // Members are read in place (`withMembers`): no copy of a value, no retain per member.
        var deferred = false
        let annotate = ann.map { !$0.allProperties } ?? false
        let firstPass = o.withMembers { members -> Bool in
            for position in 0..<members.count {
                guard let (sub, property) = Self.memberSchema(app, members[position].key.string) else { continue }
                if let idx = property {
                    requiredSeen |= app.requiredBit[idx]
                    if annotate { ann?.properties.insert(position) }
                }
                switch sub.kind {
                case .alwaysTrue: continue
                case .alwaysFalse: return false
                case .keywords:
                    if sub.isLeaf {
                        if !leafPasses(sub, members[position].value) { return false }
                    } else if inAlternative {
                        deferred = true
                    } else if !descend(sub, members[position].value, property != nil ? "properties" : "additionalProperties", from: n) {
                        return false
                    }
                }
            }
            return true
        }
        if !firstPass || requiredSeen != app.requiredAll { return false }
        if deferred {
            let secondPass = o.withMembers { members -> Bool in
                for position in 0..<members.count {
                    guard let (sub, property) = Self.memberSchema(app, members[position].key.string) else { continue }
                    if sub.kind == .keywords && !sub.isLeaf,
                       !descend(sub, members[position].value, property != nil ? "properties" : "additionalProperties", from: n) { return false }
                }
                return true
            }
            if !secondPass { return false }
        }
        if app.additional != nil, let ann { ann.allProperties = true }
        return true
    }

    /// The subschema that applies to the member `name` in `objectHolds`: its `properties` entry
    /// (with the property's index) or `additionalProperties`; nil when neither does. `static`,
    /// as `passes`' helpers are: a method would get a copy of the evaluator.
    @inline(__always)
    static func memberSchema(_ app: ObjectApplicator, _ name: String) -> (sub: NodeRef, property: Int?)? {
        if app.hasProperties, let idx = app.names.find(name) { return (app.propertyNodes[idx], idx) }
        if let add = app.additional { return (add, nil) }
        return nil
    }

    mutating func evalObject(_ app: ObjectApplicator, _ n: NodeRef, _ o: JSONObject, _ ann: Annotations?) -> Bool {
        if !collect && !app.hasPatterns && instanceDepth < options.maximumInstanceDepth {
            return objectHolds(app, n, o, ann)
        }
        var ok = true
        var requiredSeen: UInt64 = 0
        var position = -1
        for (jkey, value) in o {
            position += 1
            let key = jkey.string
            var matched = false
            if app.hasProperties, let idx = app.names.find(key) {
                matched = true
                requiredSeen |= app.requiredBit[idx]
                let start = errors.count
                if !descend(app.propertyNodes[idx], value, "properties", from: n) {
                    ok = false
                    if !collect { return false }
                    decorate(start, "properties", key, instance: key)
                }
            }
            if app.hasPatterns {
                for (p, sub) in app.patterns {
                    switch p.test(key) {
                    case .match: break
                    case .noMatch: continue
                    case .tooComplex(let why):
                        // Unknown whether the subschema applies: fail rather than skip it.
                        ok = false
                        if !collect { return false }
                        fail(n, "patternProperties", at: key, "the property name \(preview(.string(key))) cannot be checked against the pattern \(preview(.string(p.source))): \(why)")
                        continue
                    }
                    matched = true
                    let start = errors.count
                    if !descend(sub, value, "patternProperties", from: n) {
                        ok = false
                        if !collect { return false }
                        decorate(start, "patternProperties", p.source, instance: key)
                    }
                }
            }
            if matched {
                if let ann, !ann.allProperties { ann.properties.insert(position) }
            } else if let add = app.additional {
                let start = errors.count
                if add.kind == .alwaysFalse {
                    ok = false
                    if !collect { return false }
                    fail(n, "additionalProperties", at: key, "the property \(preview(.string(key))) is not allowed (no additional properties)")
                } else if !descend(add, value, "additionalProperties", from: n) {
                    ok = false
                    if !collect { return false }
                    decorate(start, "additionalProperties", instance: key)
                }
            }
        }
        if app.additional != nil, let ann { ann.allProperties = true }
        if requiredSeen != app.requiredAll {
            if !collect { return false }
            ok = false
            for (k, name) in app.requiredNames.enumerated() where requiredSeen & (1 << UInt64(k)) == 0 {
                fail(n, "required", "the required property \(preview(.string(name))) is missing")
            }
        }
        return ok
    }

    mutating func evalItems(_ app: ItemsApplicator, _ n: NodeRef, _ a: [JSONValue], _ ann: Annotations?) -> Bool {
        let prefixCount = app.prefix.count
        // Boolean-only, every item against one leaf (assertions only): one tight loop. The
        // answer is `descend`'s, which checks a leaf in place at this depth too.
        if !collect, prefixCount == 0, let rest = app.items, rest.isLeaf, instanceDepth < options.maximumInstanceDepth {
            let ok = a.withUnsafeBufferPointer { items -> Bool in
                for i in 0..<items.count where !leafPasses(rest, items[i]) { return false }
                return true
            }
            if let ann { ann.allItems = true }
            return ok
        }
        // Items are read in place (no copy, no retain per item).
        let ok = a.withUnsafeBufferPointer { items -> Bool in
            var ok = true
            for i in 0..<items.count {
                let sub: NodeRef
                let kw: String
                if i < prefixCount {
                    sub = app.prefix[i]
                    kw = "prefixItems"
                } else if let rest = app.items {
                    sub = rest
                    kw = "items"
                    if rest.kind == .alwaysFalse {
                        if collect {
                            fail(n, "items", "the array has \(items.count) items, but only \(prefixCount) \(prefixCount == 1 ? "is" : "are") allowed")
                        }
                        ok = false
                        break
                    }
                } else {
                    break
                }
                let start = errors.count
                if !descend(sub, items[i], kw, from: n) {
                    ok = false
                    if !collect { return false }
                    if kw == "prefixItems" {
                        decorate(start, kw, String(i), instance: String(i))
                    } else {
                        decorate(start, kw, instance: String(i))
                    }
                }
            }
            return ok
        }
        if let ann {
            ann.prefixItems = max(ann.prefixItems, min(prefixCount, a.count))
            if app.items != nil { ann.allItems = true }
        }
        return ok
    }

    mutating func evalUnevaluated(_ n: NodeRef, _ v: JSONValue, _ local: Annotations) -> Bool {
        var ok = true
        if let sub = n.unevaluatedProperties, case .object(let o) = v, !local.allProperties {
            var position = -1
            for (jkey, value) in o {
                position += 1
                if local.properties.contains(position) { continue }
                let key = jkey.string
                let start = errors.count
                if sub.kind == .alwaysFalse {
                    ok = false
                    if !collect { return false }
                    fail(n, "unevaluatedProperties", at: key, "the property \(preview(.string(key))) is not allowed (no subschema evaluates it)")
                } else if !descend(sub, value, "unevaluatedProperties", from: n) {
                    ok = false
                    if !collect { return false }
                    decorate(start, "unevaluatedProperties", instance: key)
                }
            }
            local.allProperties = true
        }
        if let sub = n.unevaluatedItems, case .array(let a) = v, !local.allItems {
            for i in local.prefixItems..<max(local.prefixItems, a.count) where !local.containsIndices.contains(i) {
                let start = errors.count
                if sub.kind == .alwaysFalse {
                    ok = false
                    if !collect { return false }
                    fail(n, "unevaluatedItems", at: String(i), "the item at \(i) is not allowed (no subschema evaluates it)")
                } else if !descend(sub, a[i], "unevaluatedItems", from: n) {
                    ok = false
                    if !collect { return false }
                    decorate(start, "unevaluatedItems", instance: String(i))
                }
            }
            local.allItems = true
        }
        return ok
    }

    // MARK: helpers

    func isMultiple(_ v: JSONValue, of div: DecimalDivisor) -> Bool {
        if let big = div.bigDigits { return isMultiple(v, ofBig: big, exponent: div.exponent) }
        switch v {
        case .int(let i):
            if let d = div.intValue { return i % d == 0 }
            return decimalMultiple(UInt64(i.magnitude), 0, div)
        case .bigInt(let b):
            return bigMultiple(b, div)
        case .double(let d):
            guard d.isFinite else { return false }
            if d == 0 { return true }
            guard let (digits, e) = decimalDigits(d) else {
                // More than 19 significant digits: an integer beyond 2^63 (any fraction would
                // need fewer digits), so its exact decimal text decides.
                if d.rounded(.towardZero) == d, let b = JSONBigInt(JSONBigInt.exactIntegerText(d)) { return bigMultiple(b, div) }
                let q = d / div.value
                return q.isFinite && q.rounded(.towardZero) == q
            }
            return decimalMultiple(digits, e, div)
        default:
            return true
        }
    }

    /// Whether a big integer is a multiple of div.digits × 10^div.exponent, exactly.
    func bigMultiple(_ b: JSONBigInt, _ div: DecimalDivisor) -> Bool {
        let m = div.digits
        if div.exponent >= 0 {
            // The last `exponent` digits must be zeros; the rest must be divisible by m.
            guard b.trailingDecimalZeros >= div.exponent else { return false }
            return JSONBigInt.remainder(ofDigits: b.magnitude.utf8.dropLast(div.exponent), dividingBy: m) == 0
        }
        return timesPowerOfTen(b.magnitudeRemainder(dividingBy: m), -div.exponent, modulo: m) == 0
    }

    /// r × 10^k mod m (r < m), stopping early at 0.
    func timesPowerOfTen(_ r: UInt64, _ k: Int, modulo m: UInt64) -> UInt64 {
        var r = r
        var k = k
        while k > 0 && r != 0 {
            let (hi, lo) = r.multipliedFullWidth(by: 10)
            r = m.dividingFullWidth((hi, lo)).remainder
            k -= 1
        }
        return r
    }

    /// Whether `v` is a multiple of an integer divisor too long for UInt64 (bigDigits × 10^e).
    func isMultiple(_ v: JSONValue, ofBig big: [UInt8], exponent e: Int) -> Bool {
        let text: String
        switch v {
        case .int(let i): text = String(i.magnitude)
        case .bigInt(let b): text = String(b.magnitude)
        case .double(let d):
            guard d.isFinite else { return false }
            guard d.rounded(.towardZero) == d else { return d == 0 }
            text = JSONBigInt.exactIntegerText(d.magnitude)
        default: return true
        }
        var digits = Array(text.utf8).map { $0 - UInt8(ascii: "0") }
        // Divisible by 10^e: the last e digits are zeros (0 itself is a multiple of anything).
        if digits == [0] { return true }
        guard digits.count > e, digits.suffix(e).allSatisfy({ $0 == 0 }) else { return false }
        digits.removeLast(e)
        return decimalRemainderIsZero(digits, big)
    }

    /// Long division in base 10: whether `n` (decimal digits) is divisible by `d` (decimal
    /// digits, no leading zeros, not zero). O(len(n) × len(d)).
    func decimalRemainderIsZero(_ n: [UInt8], _ d: [UInt8]) -> Bool {
        var r: [UInt8] = []  // the running remainder, no leading zeros
        func lessThanDivisor(_ x: [UInt8]) -> Bool {
            if x.count != d.count { return x.count < d.count }
            for (a, b) in zip(x, d) where a != b { return a < b }
            return false
        }
        for digit in n {
            if !(r.isEmpty && digit == 0) { r.append(digit) }
            while !lessThanDivisor(r) {
                // r -= d (r >= d, so r has at least d's length)
                var borrow: Int = 0
                var i = r.count - 1, j = d.count - 1
                while i >= 0 {
                    var x = Int(r[i]) - borrow - (j >= 0 ? Int(d[j]) : 0)
                    borrow = x < 0 ? 1 : 0
                    if x < 0 { x += 10 }
                    r[i] = UInt8(x)
                    i -= 1; j -= 1
                }
                while r.first == 0 { r.removeFirst() }
            }
        }
        return r.isEmpty
    }

    /// Whether digits×10^e is an integer multiple of div.digits×10^div.exponent, exactly.
    func decimalMultiple(_ digits: UInt64, _ e: Int, _ div: DecimalDivisor) -> Bool {
        if digits == 0 { return true }
        let m = div.digits
        if e >= div.exponent {
            // digits × 10^(e - de) mod m
            return timesPowerOfTen(digits % m, e - div.exponent, modulo: m) == 0
        } else {
            // digits must be divisible by m × 10^(de - e)
            var x = digits
            var k = div.exponent - e
            while k > 0 {
                if x % 10 != 0 { return false }
                x /= 10
                k -= 1
            }
            return x % m == 0
        }
    }

    static func firstDuplicate(_ a: [JSONValue]) -> (Int, Int)? {
        a.withUnsafeBufferPointer { firstDuplicate(in: $0) }
    }

    /// The positions of the first two equal items (JSON equality), read in place.
    static func firstDuplicate(in a: UnsafeBufferPointer<JSONValue>) -> (Int, Int)? {
        if a.count <= 16 {
            // Pairwise: no hashing, and no copy of the items to compare them.
            for i in 0..<a.count {
                for j in (i + 1)..<a.count where sameValue(a[i], a[j]) { return (i, j) }
            }
            return nil
        }
        var seen: [JSONValue: Int] = [:]
        for (j, e) in a.enumerated() {
            if let i = seen[e] { return (i, j) }
            seen[e] = j
        }
        return nil
    }
}

func pointerString<S: Sequence>(_ tokens: S) -> String where S.Element == String {
    var s = ""
    for t in tokens {
        s.append("/")
        s.append(JSONPointer.escape(t))
    }
    return s
}

func describeType(_ v: JSONValue) -> String {
    switch v {
    case .null: return "null"
    case .bool: return "a boolean"
    case .int, .bigInt: return "an integer"
    case .double(let d): return d.rounded(.towardZero) == d && d.isFinite ? "an integer" : "a number"
    case .string: return "a string"
    case .array: return "an array"
    case .object: return "an object"
    }
}

func describeTypes(_ m: TypeMask) -> String {
    let names = m.names.map { n -> String in
        switch n {
        case "null": return "null"
        case "integer", "object", "array": return (n == "integer" || n == "object" || n == "array" ? "an " : "a ") + n
        default: return "a " + n
        }
    }
    if names.count <= 1 { return names.first ?? "nothing" }
    return names.dropLast().joined(separator: ", ") + " or " + names.last!
}

/// A short JSON rendering of a value for messages.
func preview(_ v: JSONValue) -> String {
    let s = v.serialized(sortedKeys: true)
    if s.count <= 60 { return s }
    return String(s.prefix(57)) + "…"
}
