import JSON

/// A reference to a node that does not retain it. Every node is retained by its
/// `CompiledSchema`'s arena for the schema's whole lifetime, and nodes are only ever reached
/// through that schema, so these references never dangle; not retaining them keeps reference
/// cycles (`$ref: "#"`) from leaking and keeps retain/release traffic off the hot path.
///
/// Held as `Unmanaged`: reading an `unowned(unsafe)` reference yields a strong one, which
/// costs a retain and a release around every use; `with` lends the node instead.
struct NodeRef {
    let unmanaged: Unmanaged<Node>
    init(_ node: Node) { unmanaged = .passUnretained(node) }
    init(_ unmanaged: Unmanaged<Node>) { self.unmanaged = unmanaged }

    /// The node (a strong reference: for paths where a retain does not matter).
    var node: Node { unmanaged.takeUnretainedValue() }

    /// Calls `body` with the node, without retaining it.
    @inline(__always)
    func with<R>(_ body: (Node) -> R) -> R { unmanaged._withUnsafeGuaranteedRef(body) }

    /// Identity, for the reference stack.
    var address: UnsafeMutableRawPointer { unmanaged.toOpaque() }

    // The node's fields, read through the lent reference (no retain). Validation passes
    // `NodeRef`s down its recursion rather than `Node`s, which cost a retain per call; the
    // closures here return before any recursion, so they add no stack to it.
    @inline(__always) var kind: Node.Kind { with { $0.kind } }
    @inline(__always) var isLeaf: Bool { with { $0.isLeaf } }
    @inline(__always) var isShallow: Bool { with { $0.isShallow } }
    @inline(__always) var steps: UnsafeMutableBufferPointer<Step> { with { $0.steps } }
    @inline(__always) var tracksEvaluation: Bool { with { $0.unevaluatedProperties != nil || $0.unevaluatedItems != nil } }
    var unevaluatedProperties: NodeRef? { with { $0.unevaluatedProperties.map(NodeRef.init) } }
    var unevaluatedItems: NodeRef? { with { $0.unevaluatedItems.map(NodeRef.init) } }
    var resource: Resource { node.resource }
    var absoluteLocation: String { node.absoluteLocation }
}

/// A schema resource (a document root or a subschema with `$id`): the unit of dynamic scope.
final class Resource {
    let uri: String
    /// `$dynamicAnchor` name → the subschema declaring it, within this resource.
    @exclusivity(unchecked) var dynamicAnchors: [String: NodeRef] = [:]
    init(uri: String) { self.uri = uri }
}

/// One compiled schema object or boolean.
///
/// Built once by `Compiler` and never mutated afterwards, so sharing between threads is safe.
/// Stored properties of this and the other compiled classes are `var` only because reference
/// cycles are tied up after creation; they are marked `@exclusivity(unchecked)` since no
/// access can overlap a write once compilation is over (and the runtime access tracking
/// otherwise costs a sixth of validation time).
final class Node {
    enum Kind { case alwaysTrue, alwaysFalse, keywords }
    @exclusivity(unchecked) var kind: Kind = .keywords
    /// The keywords in evaluation order, as trivially copyable steps (see `Step`), in memory
    /// this node owns, so that walking them never retains an array.
    @exclusivity(unchecked) private(set) var steps = UnsafeMutableBufferPointer<Step>(start: nil, count: 0)
    @exclusivity(unchecked) var unevaluatedProperties: Node?
    @exclusivity(unchecked) var unevaluatedItems: Node?
    @exclusivity(unchecked) unowned(unsafe) var resource: Resource
    /// Canonical URI of this subschema: resource URI + `#` + JSON Pointer from the resource.
    let absoluteLocation: String

    init(resource: Resource, absoluteLocation: String) {
        self.resource = resource
        self.absoluteLocation = absoluteLocation
    }

    /// `true` for a keywords node whose every keyword is an assertion (applies no subschema,
    /// follows no reference): its result depends on the value alone. Set by `setSteps`.
    @exclusivity(unchecked) private(set) var isLeaf = false

    /// `true` for a keywords node whose keywords are assertions plus one `items` whose
    /// subschema is a leaf (and no `prefixItems`): an array of scalars such as
    /// `{"type": "array", "uniqueItems": true, "items": {"type": "string"}}`, decided by
    /// `Evaluator.shallowPasses` without the general evaluation. Set by `markShallow` once
    /// every node is compiled (it reads the `items` node's steps).
    @exclusivity(unchecked) private(set) var isShallow = false

    var tracksEvaluation: Bool { unevaluatedProperties != nil || unevaluatedItems != nil }

    func markShallow() {
        guard kind == .keywords, !isLeaf, !tracksEvaluation else { return }
        var itemsSteps = 0
        for step in steps where !step.op.isAssertion {
            guard step.op == .items else { return }
            let app = step.payload(ItemsApplicator.self)
            guard app.prefix.isEmpty, let rest = app.items, rest.isLeaf else { return }
            itemsSteps += 1
        }
        isShallow = itemsSteps == 1
    }

    func setSteps(_ list: [Step]) {
        steps.deallocate()
        steps = .frozen(list)
        isLeaf = kind == .keywords && !tracksEvaluation && list.allSatisfy(\.op.isAssertion)
    }

    deinit { steps.deallocate() }
}

/// A JSON Schema number limit, compared exactly with the instance (ints, doubles and big
/// integers alike).
enum NumberLimit {
    case int(Int)
    case double(Double)
    case big(JSONBigInt)

    init?(_ v: JSONValue) {
        switch v {
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .bigInt(let b): self = .big(b)
        default: return nil
        }
    }

    var json: JSONValue {
        switch self {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .big(let b): return .bigInt(b)
        }
    }

    /// Compares an instance number with this limit: negative, zero or positive.
    @inline(__always)
    func compare(_ v: JSONValue) -> Int? {
        switch (v, self) {
        case let (.int(a), .int(b)): return a < b ? -1 : (a == b ? 0 : 1)
        case let (.int(a), .double(b)): return JSONValue.compareIntToDouble(a, b)
        case let (.double(a), .int(b)): return -JSONValue.compareIntToDouble(b, a)
        case let (.double(a), .double(b)): return a < b ? -1 : (a == b ? 0 : 1)
        default: return JSONValue.compareNumbers(v, json)
        }
    }
}

/// Bit set of JSON types for `type`.
struct TypeMask: OptionSet {
    let rawValue: UInt8
    static let null = TypeMask(rawValue: 1)
    static let boolean = TypeMask(rawValue: 2)
    static let integer = TypeMask(rawValue: 4)
    static let number = TypeMask(rawValue: 8)
    static let string = TypeMask(rawValue: 16)
    static let array = TypeMask(rawValue: 32)
    static let object = TypeMask(rawValue: 64)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init?(name: String) {
        switch name {
        case "null": self = .null
        case "boolean": self = .boolean
        case "integer": self = .integer
        case "number": self = .number
        case "string": self = .string
        case "array": self = .array
        case "object": self = .object
        default: return nil
        }
    }

    @inline(__always)
    func matches(_ v: JSONValue) -> Bool {
        switch v {
        case .null: return contains(.null)
        case .bool: return contains(.boolean)
        case .int, .bigInt: return rawValue & (TypeMask.integer.rawValue | TypeMask.number.rawValue) != 0
        case .double(let d):
            if contains(.number) { return true }
            return contains(.integer) && d.isFinite && d.rounded(.towardZero) == d
        case .string: return contains(.string)
        case .array: return contains(.array)
        case .object: return contains(.object)
        }
    }

    var names: [String] {
        var n: [String] = []
        if contains(.null) { n.append("null") }
        if contains(.boolean) { n.append("boolean") }
        if contains(.integer) { n.append("integer") }
        if contains(.number) { n.append("number") }
        if contains(.string) { n.append("string") }
        if contains(.array) { n.append("array") }
        if contains(.object) { n.append("object") }
        return n
    }
}

/// `properties` + `patternProperties` + `additionalProperties` (+ `required` when every
/// required name is also in `properties`), evaluated in one pass over the instance's members.
final class ObjectApplicator {
    /// `properties` names, found without hashing.
    @exclusivity(unchecked) var names = NameIndex([])
    /// `properties` subschemas, by `names` index.
    @exclusivity(unchecked) private(set) var propertyNodes = UnsafeMutableBufferPointer<NodeRef>(start: nil, count: 0)
    /// Per property index: its bit in `requiredAll`, or 0 when not required.
    @exclusivity(unchecked) private(set) var requiredBit = UnsafeMutableBufferPointer<UInt64>(start: nil, count: 0)
    /// `required` names in bit order (bit k ↔ requiredNames[k]).
    @exclusivity(unchecked) var requiredNames: [String] = []
    @exclusivity(unchecked) var requiredAll: UInt64 = 0
    @exclusivity(unchecked) var patterns: [(pattern: Pattern, node: NodeRef)] = []
    @exclusivity(unchecked) var additional: NodeRef?
    @exclusivity(unchecked) var hasProperties = false
    @exclusivity(unchecked) var hasPatterns = false

    func setProperties(nodes: [NodeRef], requiredBits: [UInt64]) {
        propertyNodes.deallocate()
        requiredBit.deallocate()
        propertyNodes = .frozen(nodes)
        requiredBit = .frozen(requiredBits)
    }

    deinit {
        propertyNodes.deallocate()
        requiredBit.deallocate()
    }
}

extension UnsafeMutableBufferPointer {
    /// A copy of `list` in newly allocated memory (for trivially copyable elements, which need
    /// no deinitialization before `deallocate`).
    static func frozen(_ list: [Element]) -> UnsafeMutableBufferPointer<Element> {
        let b = UnsafeMutableBufferPointer<Element>.allocate(capacity: Swift.max(list.count, 1))
        _ = b.initialize(from: list)
        return UnsafeMutableBufferPointer(start: b.baseAddress, count: list.count)
    }
}

/// Looks a string up among a fixed set of names without hashing (SipHash dominates small
/// lookups): names are grouped by UTF-8 length, then compared.
final class NameIndex {
    struct Entry {
        let name: String
        let index: Int
        /// UTF-8 length (the groups above `maxLength` mix lengths).
        let length: Int
        let ascii: Bool
        /// The first UTF-8 byte (0 for ""): most names of one length differ there, and a
        /// byte compare is far cheaper than `String.==` on a mismatch (a call into the
        /// runtime's comparison).
        let first: UInt8
    }
    /// Entries sorted by UTF-8 length; lengths above `maxLength` share the last group.
    private let entries: UnsafeMutableBufferPointer<Entry>
    /// entries[start[len] ..< start[len + 1]] have UTF-8 length `len`.
    private let start: UnsafeMutableBufferPointer<Int32>
    static let maxLength = 64

    init(_ names: [String]) {
        let sorted = names.enumerated().map { Entry(name: $1, index: $0, length: $1.utf8.count, ascii: $1.utf8.allSatisfy { $0 < 0x80 },
                                                  first: $1.utf8.first ?? 0) }
            .sorted { min($0.name.utf8.count, NameIndex.maxLength) < min($1.name.utf8.count, NameIndex.maxLength) }
        var st = [Int32](repeating: 0, count: NameIndex.maxLength + 2)
        var k = 0
        for len in 0...(NameIndex.maxLength + 1) {
            st[len] = Int32(k)
            while k < sorted.count && min(sorted[k].name.utf8.count, NameIndex.maxLength) == len { k += 1 }
        }
        entries = .allocate(capacity: max(sorted.count, 1))
        _ = entries.initialize(from: sorted)
        start = .frozen(st)
    }

    deinit {
        // Entries hold Strings: deinitialize the initialized prefix before freeing.
        if let b = entries.baseAddress, start[NameIndex.maxLength + 1] > 0 {
            b.deinitialize(count: Int(start[NameIndex.maxLength + 1]))
        }
        entries.deallocate()
        start.deallocate()
    }

    /// Every name with its index in the names given to `init`.
    var all: [(name: String, index: Int)] {
        (0..<Int(start[NameIndex.maxLength + 1])).map { (entries[$0].name, entries[$0].index) }
    }

    /// The index of `key` in the names given to `init`, or nil. Exact (code-point) equality.
    @inline(__always)
    func find(_ key: String) -> Int? {
        let keyLength = key.utf8.count
        let group = min(keyLength, NameIndex.maxLength)
        var i = Int(start[group])
        let end = Int(start[group + 1])
        let first = keyLength > 0 ? key.utf8[key.utf8.startIndex] : 0
        while i < end {
            // For an ASCII name, equal byte length plus canonical equivalence (`==`, fast on
            // ASCII) means equal bytes; "K" + 69 × "a" and U+212A + 69 × "a" share the last
            // group but not the length.
            if entries[i].first == first && entries[i].length == keyLength && entries[i].name == key
                && (entries[i].ascii || entries[i].name.utf8.elementsEqual(key.utf8)) {
                return entries[i].index
            }
            i += 1
        }
        return nil
    }
}

/// `prefixItems` + `items`.
final class ItemsApplicator {
    @exclusivity(unchecked) var prefix: [NodeRef] = []
    @exclusivity(unchecked) var items: NodeRef?
}

/// `if` / `then` / `else`.
final class Conditional {
    @exclusivity(unchecked) var ifNode: NodeRef
    @exclusivity(unchecked) var thenNode: NodeRef?
    @exclusivity(unchecked) var elseNode: NodeRef?
    init(ifNode: NodeRef) { self.ifNode = ifNode }
}

/// `$dynamicRef`.
final class DynamicRef {
    /// The statically resolved target (also the result when no dynamic anchor applies).
    @exclusivity(unchecked) var initial: NodeRef
    /// The anchor name to look up in the dynamic scope, when the initial target declares a
    /// matching `$dynamicAnchor`; nil makes this behave exactly like `$ref`.
    @exclusivity(unchecked) var anchor: String?
    init(initial: NodeRef, anchor: String?) {
        self.initial = initial
        self.anchor = anchor
    }
}

/// An exact decimal `multipleOf` divisor: digits × 10^exponent.
struct DecimalDivisor {
    let value: Double
    let intValue: Int?
    /// digits × 10^exponent is the divisor when `bigDigits` is nil.
    let digits: UInt64
    let exponent: Int
    /// An integer divisor whose significant digits do not fit `UInt64`: its decimal digits
    /// (divisor = bigDigits × 10^exponent).
    let bigDigits: [UInt8]?
}

/// A compiled keyword.
enum Keyword {
    case type(TypeMask)
    case ref(NodeRef)
    case dynamicRef(DynamicRef)
    case enumeration([JSONValue])
    case const(JSONValue)
    case multipleOf(DecimalDivisor)
    case minimum(NumberLimit)
    case maximum(NumberLimit)
    case exclusiveMinimum(NumberLimit)
    case exclusiveMaximum(NumberLimit)
    case minLength(Int)
    case maxLength(Int)
    case pattern(Pattern)
    case format(Format, assert: Bool)
    case minItems(Int)
    case maxItems(Int)
    case uniqueItems
    case minProperties(Int)
    case maxProperties(Int)
    case required([String])
    case dependentRequired([(String, [String])])
    case object(ObjectApplicator)
    case items(ItemsApplicator)
    case contains(NodeRef, min: Int, max: Int?)
    case propertyNames(NodeRef)
    case dependentSchemas([(String, NodeRef)])
    case allOf([NodeRef])
    case anyOf([NodeRef])
    case oneOf([NodeRef])
    case not(NodeRef)
    case conditional(Conditional)
}

/// Keyword kinds of a `Step`.
enum StepOp: UInt8 {
    case type, ref, dynamicRef, enumeration, const, multipleOf, minimum, maximum, exclusiveMinimum, exclusiveMaximum
    case minLength, maxLength, pattern, format, minItems, maxItems, uniqueItems, minProperties, maxProperties
    case required, dependentRequired, object, items, contains, propertyNames, dependentSchemas
    case allOf, anyOf, oneOf, not, conditional

    /// Keywords that apply no subschema: decided by `Evaluator.passes` alone.
    var isAssertion: Bool {
        switch self {
        case .type, .enumeration, .const, .multipleOf, .minimum, .maximum, .exclusiveMinimum, .exclusiveMaximum,
             .minLength, .maxLength, .pattern, .format, .minItems, .maxItems, .uniqueItems, .minProperties,
             .maxProperties, .required, .dependentRequired:
            return true
        case .ref, .dynamicRef, .object, .items, .contains, .propertyNames, .dependentSchemas, .allOf, .anyOf,
             .oneOf, .not, .conditional:
            return false
        }
    }
}

/// A compiled keyword in the form validation runs: plain values plus one unretained payload
/// object, so that walking a schema's keywords never touches reference counts. Payloads are
/// kept alive by the compiled schema's arena (see `NodeRef` for the same argument).
struct Step {
    let op: StepOp
    /// `format`: assert even without the option (format-assertion vocabulary).
    let flag: Bool
    /// Counts and limits; the type mask; the `Format` raw value; `minContains`.
    let a: Int
    /// `maxContains`, or -1.
    let b: Int
    /// A number limit that is a double (`limitIsDouble`); an `Int` limit is in `a`, a big
    /// integer in the payload (`LimitBox`). Kept as plain values so that a step stays
    /// trivially copyable: copying one touches no reference count.
    let d: Double
    let limitKind: LimitKind
    /// The payload object, unretained (see `NodeRef` for why not `unowned(unsafe)`).
    let payloadBits: Unmanaged<AnyObject>

    /// Where a step's number limit is stored.
    /// `exactInt`: an `Int` limit that a double holds exactly (in `a` and `d` both), so that
    /// a double instance is compared with `d` inline.
    enum LimitKind: UInt8 { case int, exactInt, double, big }

    init(op: StepOp, flag: Bool = false, a: Int = 0, b: Int = -1, payload: AnyObject) {
        self.op = op
        self.flag = flag
        self.a = a
        self.b = b
        self.d = 0
        self.limitKind = .int
        self.payloadBits = .passUnretained(payload)
    }

    /// A `minimum`/`maximum`/`exclusive…` step.
    init(op: StepOp, limit: NumberLimit, arena: inout [AnyObject]) {
        self.op = op
        flag = false
        b = -1
        switch limit {
        case .int(let i):
            a = i; d = Double(i); limitKind = i.magnitude <= 1 << 53 ? .exactInt : .int; payloadBits = .passUnretained(NoPayload.shared)
        case .double(let x):
            a = 0; d = x; limitKind = .double; payloadBits = .passUnretained(NoPayload.shared)
        case .big:
            let box = LimitBox(limit)
            arena.append(box)
            a = 0; d = 0; limitKind = .big; payloadBits = .passUnretained(box)
        }
    }

    /// Compares an instance number with this step's limit: negative, zero or positive; nil
    /// when `v` is not a number.
    @inline(__always)
    func compareLimit(_ v: JSONValue) -> Int? {
        // One switch on the value, then one on the limit (a tuple switch copies the value).
        switch v {
        case .int(let x):
            switch limitKind {
            case .int, .exactInt: return x < a ? -1 : (x == a ? 0 : 1)
            case .double: return JSONValue.compareIntToDouble(x, d)
            case .big: return limit.compare(v)
            }
        case .double(let x):
            switch limitKind {
            case .int: return -JSONValue.compareIntToDouble(a, x)
            case .exactInt: return x < d ? -1 : (x == d || x.isNaN ? 0 : 1)  // NaN as compareIntToDouble
            case .double: return x < d ? -1 : (x == d ? 0 : 1)
            case .big: return limit.compare(v)
            }
        case .bigInt: return limit.compare(v)
        default: return nil
        }
    }

    /// The limit as written (for messages and the slow paths).
    var limit: NumberLimit {
        switch limitKind {
        case .int, .exactInt: return .int(a)
        case .double: return .double(d)
        case .big: return payload(LimitBox.self).limit
        }
    }

    /// Converts a keyword, appending any payload object it needs to `arena`.
    init(_ kw: Keyword, arena: inout [AnyObject]) {
        func keep(_ o: AnyObject) -> AnyObject {
            arena.append(o)
            return o
        }
        let none = NoPayload.shared
        switch kw {
        case .type(let m): self.init(op: .type, a: Int(m.rawValue), payload: none)
        case .ref(let r): self.init(op: .ref, payload: r.node)
        case .dynamicRef(let d): self.init(op: .dynamicRef, payload: keep(d))
        case .enumeration(let v): self.init(op: .enumeration, payload: keep(ValuesBox(v)))
        case .const(let v): self.init(op: .const, payload: keep(ValuesBox([v])))
        case .multipleOf(let d): self.init(op: .multipleOf, payload: keep(DivisorBox(d)))
        case .minimum(let l): self.init(op: .minimum, limit: l, arena: &arena)
        case .maximum(let l): self.init(op: .maximum, limit: l, arena: &arena)
        case .exclusiveMinimum(let l): self.init(op: .exclusiveMinimum, limit: l, arena: &arena)
        case .exclusiveMaximum(let l): self.init(op: .exclusiveMaximum, limit: l, arena: &arena)
        case .minLength(let m): self.init(op: .minLength, a: m, payload: none)
        case .maxLength(let m): self.init(op: .maxLength, a: m, payload: none)
        case .pattern(let p): self.init(op: .pattern, payload: keep(p))
        case .format(let f, let always): self.init(op: .format, flag: always, a: f.rawValue, payload: none)
        case .minItems(let m): self.init(op: .minItems, a: m, payload: none)
        case .maxItems(let m): self.init(op: .maxItems, a: m, payload: none)
        case .uniqueItems: self.init(op: .uniqueItems, payload: none)
        case .minProperties(let m): self.init(op: .minProperties, a: m, payload: none)
        case .maxProperties(let m): self.init(op: .maxProperties, a: m, payload: none)
        case .required(let names): self.init(op: .required, payload: keep(NamesBox(names)))
        case .dependentRequired(let d): self.init(op: .dependentRequired, payload: keep(DependentRequiredBox(d)))
        case .object(let app): self.init(op: .object, payload: keep(app))
        case .items(let app): self.init(op: .items, payload: keep(app))
        case .contains(let sub, let minC, let maxC): self.init(op: .contains, a: minC, b: maxC ?? -1, payload: sub.node)
        case .propertyNames(let sub): self.init(op: .propertyNames, payload: sub.node)
        case .dependentSchemas(let d): self.init(op: .dependentSchemas, payload: keep(DependentSchemasBox(d)))
        case .allOf(let subs): self.init(op: .allOf, payload: keep(NodeListBox(subs)))
        case .anyOf(let subs): self.init(op: .anyOf, payload: keep(NodeListBox(subs)))
        case .oneOf(let subs): self.init(op: .oneOf, payload: keep(NodeListBox(subs)))
        case .not(let sub): self.init(op: .not, payload: sub.node)
        case .conditional(let c): self.init(op: .conditional, payload: keep(c))
        }
    }

    /// The payload as a strong reference (for paths where a retain does not matter).
    func payload<T: AnyObject>(_ type: T.Type) -> T { Unmanaged<T>.fromOpaque(payloadBits.toOpaque()).takeUnretainedValue() }

    /// Calls `body` with the payload, without retaining it.
    @inline(__always)
    func withPayload<T: AnyObject, R>(_ type: T.Type, _ body: (T) -> R) -> R {
        Unmanaged<T>.fromOpaque(payloadBits.toOpaque())._withUnsafeGuaranteedRef(body)
    }

    /// The payload of `$ref`, `contains`, `propertyNames` and `not`: a subschema.
    @inline(__always)
    var nodePayload: NodeRef { NodeRef(Unmanaged<Node>.fromOpaque(payloadBits.toOpaque())) }
}

/// The payload of steps that need none.
final class NoPayload: Sendable {
    static let shared = NoPayload()
}

/// `enum` values (or the single `const` value).
final class ValuesBox {
    let values: [JSONValue]
    /// When every value is a string: those strings, found by exact (code-point) comparison
    /// without hashing or building a `JSONValue` to compare.
    let strings: NameIndex?
    init(_ values: [JSONValue]) {
        self.values = values
        var names: [String] = []
        for v in values {
            guard case .string(let s) = v else { break }
            names.append(s)
        }
        strings = names.count == values.count && !values.isEmpty ? NameIndex(names) : nil
    }
}

/// A number limit beyond `Int` (kept out of `Step` so that steps stay trivially copyable).
final class LimitBox {
    let limit: NumberLimit
    init(_ limit: NumberLimit) { self.limit = limit }
}

/// `multipleOf`.
final class DivisorBox {
    let divisor: DecimalDivisor
    init(_ divisor: DecimalDivisor) { self.divisor = divisor }
}

/// `required`.
final class NamesBox {
    let names: [String]
    init(_ names: [String]) { self.names = names }
}

/// `dependentRequired`.
final class DependentRequiredBox {
    let deps: [(String, [String])]
    init(_ deps: [(String, [String])]) { self.deps = deps }
}

/// `dependentSchemas`.
final class DependentSchemasBox {
    let deps: [(String, NodeRef)]
    init(_ deps: [(String, NodeRef)]) { self.deps = deps }
}

/// `allOf` / `anyOf` / `oneOf`: the subschemas in memory of their own, so that walking them
/// never retains an array.
final class NodeListBox {
    let nodes: UnsafeMutableBufferPointer<NodeRef>
    /// For `anyOf` / `oneOf`: one filter per node (set by `Compiler.addAlternativeFilters`
    /// once every node is compiled), or none.
    @exclusivity(unchecked) private(set) var filters = UnsafeMutableBufferPointer<AlternativeFilter>(start: nil, count: 0)
    init(_ nodes: [NodeRef]) { self.nodes = .frozen(nodes) }

    func setFilters(_ list: [AlternativeFilter]) {
        precondition(list.count == nodes.count)
        _ = filters.deinitialize()
        filters.deallocate()
        let b = UnsafeMutableBufferPointer<AlternativeFilter>.allocate(capacity: Swift.max(list.count, 1))
        _ = b.initialize(from: list)
        filters = UnsafeMutableBufferPointer(start: b.baseAddress, count: list.count)
    }

    deinit {
        nodes.deallocate()
        _ = filters.deinitialize()
        filters.deallocate()
    }
}

/// Necessary conditions of one alternative of `anyOf` / `oneOf`, checked before the
/// alternative is evaluated: most alternatives of a union fail, and a full evaluation (through
/// `$ref`s, into the object's members) costs far more than these checks. Each condition is
/// implied by keywords of the alternative (or of the schemas its `$ref`s lead to, which must
/// hold too), so a value that fails one fails the alternative: skipping it changes no result.
struct AlternativeFilter {
    /// The JSON types the alternative accepts (its `type` keywords intersected).
    let types: TypeMask
    /// A property whose `properties` subschema is a leaf (assertions only, e.g. a `const`
    /// tag, an `enum` or a `pattern`): when an object instance has it, its value must pass.
    let property: String?
    let propertySchema: NodeRef?
    /// `property` is also `required`: an object instance without it fails too.
    let propertyRequired: Bool
}
