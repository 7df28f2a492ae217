import JSON

/// A reference to a node that does not retain it. Every node is retained by its
/// `CompiledSchema`'s arena for the schema's whole lifetime, and nodes are only ever reached
/// through that schema, so these references never dangle; not retaining them keeps reference
/// cycles (`$ref: "#"`) from leaking and keeps retain/release traffic off the hot path.
struct NodeRef {
    unowned(unsafe) let node: Node
    init(_ node: Node) { self.node = node }
}

/// A schema resource (a document root or a subschema with `$id`): the unit of dynamic scope.
final class Resource {
    let uri: String
    /// `$dynamicAnchor` name → the subschema declaring it, within this resource.
    var dynamicAnchors: [String: NodeRef] = [:]
    init(uri: String) { self.uri = uri }
}

/// One compiled schema object or boolean.
///
/// Built once by `Compiler` and never mutated afterwards, so sharing between threads is safe.
final class Node {
    enum Kind { case alwaysTrue, alwaysFalse, keywords }
    var kind: Kind = .keywords
    var keywords: [Keyword] = []
    var unevaluatedProperties: Node?
    var unevaluatedItems: Node?
    unowned(unsafe) var resource: Resource
    /// Canonical URI of this subschema: resource URI + `#` + JSON Pointer from the resource.
    let absoluteLocation: String

    init(resource: Resource, absoluteLocation: String) {
        self.resource = resource
        self.absoluteLocation = absoluteLocation
    }

    var tracksEvaluation: Bool { unevaluatedProperties != nil || unevaluatedItems != nil }
}

/// A JSON Schema number limit, compared exactly against ints where possible.
enum NumberLimit {
    case int(Int)
    case double(Double)

    init?(_ v: JSONValue) {
        switch v {
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        default: return nil
        }
    }

    var json: JSONValue {
        switch self {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        }
    }

    /// Compares an instance number with this limit: negative, zero or positive.
    @inline(__always)
    func compare(_ v: JSONValue) -> Int? {
        switch (v, self) {
        case let (.int(a), .int(b)): return a < b ? -1 : (a == b ? 0 : 1)
        case let (.int(a), .double(b)): return compareIntDouble(a, b)
        case let (.double(a), .int(b)): return -compareIntDouble(b, a)
        case let (.double(a), .double(b)): return a < b ? -1 : (a == b ? 0 : 1)
        default: return nil
        }
    }
}

/// Exact comparison of an Int with a Double.
@inline(__always)
func compareIntDouble(_ a: Int, _ b: Double) -> Int {
    if b.isNaN { return 0 }
    if b >= 9223372036854775808.0 { return -1 }  // 2^63: above every Int
    if b < -9223372036854775808.0 { return 1 }
    let bf = b.rounded(.down)
    let bi = Int(bf)
    if a < bi { return -1 }
    if a > bi { return 1 }
    return bf == b ? 0 : -1
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
        case .int: return rawValue & (TypeMask.integer.rawValue | TypeMask.number.rawValue) != 0
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

/// `properties` + `patternProperties` + `additionalProperties`, evaluated in one pass over the
/// instance's members.
final class ObjectApplicator {
    var properties: [String: NodeRef] = [:]
    /// The `properties` subschemas in declaration order, for small objects (linear scan).
    var propertyList: [(name: String, node: NodeRef)] = []
    var patterns: [(pattern: Pattern, node: NodeRef)] = []
    var additional: NodeRef?
    var hasProperties = false
    var hasPatterns = false
}

/// `prefixItems` + `items`.
final class ItemsApplicator {
    var prefix: [NodeRef] = []
    var items: NodeRef?
}

/// `if` / `then` / `else`.
final class Conditional {
    var ifNode: NodeRef
    var thenNode: NodeRef?
    var elseNode: NodeRef?
    init(ifNode: NodeRef) { self.ifNode = ifNode }
}

/// `$dynamicRef`.
final class DynamicRef {
    /// The statically resolved target (also the result when no dynamic anchor applies).
    var initial: NodeRef
    /// The anchor name to look up in the dynamic scope, when the initial target declares a
    /// matching `$dynamicAnchor`; nil makes this behave exactly like `$ref`.
    var anchor: String?
    init(initial: NodeRef, anchor: String?) {
        self.initial = initial
        self.anchor = anchor
    }
}

/// An exact decimal `multipleOf` divisor: digits × 10^exponent.
struct DecimalDivisor {
    let value: Double
    let intValue: Int?
    let digits: UInt64
    let exponent: Int
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
