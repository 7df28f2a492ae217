// JSON module: a JSON value type, a strict RFC 8259 parser, a serializer, an RFC 8785-style
// canonical encoding and RFC 6901 JSON Pointers. No dependencies beyond the standard library
// (the Codable convenience bridge in JSONValue+Codable.swift uses Foundation).

/// A JSON value.
///
/// Numbers are kept as `.int` when the text had no fraction or exponent and fits `Int`, as
/// `.bigInt` (exact decimal digits) when it had neither but does not fit `Int`, otherwise as
/// `.double` (a magnitude beyond Double's range, such as `1e400`, becomes ±infinity). Equality follows JSON Schema: numbers compare by mathematical value,
/// so `.int(1) == .double(1.0)`, and `hash(into:)` is consistent with that. Strings compare by
/// their Unicode scalar values (not by Swift's canonical-equivalence rules), as JSON requires.
///
/// Objects are `JSONObject`s: members in one array, names compared by their UTF-8 bytes
/// (`JSONKey`): canonically equivalent names such as "\u{E9}" and "e\u{301}", or "K" and the
/// Kelvin sign "\u{212A}", are different members (Swift `String ==` would merge them). Member
/// order is insertion order but carries no meaning (equality ignores it); use
/// `serialized(sortedKeys: true)` or `canonicalBytes()` where a stable text is needed.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    /// An integer outside `Int`'s range, kept exactly (never produced for values that fit `Int`).
    case bigInt(JSONBigInt)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

// MARK: - Equality and hashing

extension JSONValue: Hashable {
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.int(a), .double(b)): return JSONValue.intEqualsDouble(a, b)
        case let (.double(a), .int(b)): return JSONValue.intEqualsDouble(b, a)
        case (.bigInt, _), (_, .bigInt): return JSONValue.compareNumbers(lhs, rhs) == 0
        case let (.string(a), .string(b)): return JSONValue.scalarsEqual(a, b)
        case let (.array(a), .array(b)):
            guard a.count == b.count else { return false }
            for i in a.indices where a[i] != b[i] { return false }
            return true
        case let (.object(a), .object(b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .bool(let b): hasher.combine(1 as UInt8); hasher.combine(b)
        case .int(let i): hasher.combine(2 as UInt8); hasher.combine(i)
        case .double(let d):
            if let i = Int(exactly: d) {
                hasher.combine(2 as UInt8); hasher.combine(i)
            } else {
                hasher.combine(3 as UInt8); hasher.combine(d)
            }
        case .bigInt(let b):
            // Equal to a double only when that double is an integer beyond Int: hash like it.
            if let d = b.exactDouble {
                hasher.combine(3 as UInt8); hasher.combine(d)
            } else {
                hasher.combine(7 as UInt8); hasher.combine(b)
            }
        case .string(let s): hasher.combine(4 as UInt8); JSONKey(s).hash(into: &hasher)
        case .array(let a):
            hasher.combine(5 as UInt8); hasher.combine(a.count)
            for v in a { v.hash(into: &hasher) }
        case .object(let o):
            // Order-independent (see JSONObject.hash).
            hasher.combine(6 as UInt8); o.hash(into: &hasher)
        }
    }

    /// `true` when `i` and `d` denote the same mathematical number.
    @inlinable
    static func intEqualsDouble(_ i: Int, _ d: Double) -> Bool {
        guard let j = Int(exactly: d) else { return false }
        return i == j
    }

    /// Compares two strings by Unicode scalar values (JSON string equality), not by Swift's
    /// canonical equivalence.
    @inlinable
    static func scalarsEqual(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        var a = a, b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                guard let x = pa.baseAddress, let y = pb.baseAddress else { return pa.count == pb.count }
                if x == y { return true }
                for i in 0..<pa.count where x[i] != y[i] { return false }
                return true
            }
        }
    }
}

// MARK: - Accessors

extension JSONValue {
    /// The member named `key` when this is an object, otherwise `nil`.
    @inlinable
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[JSONKey(key)] }
        return nil
    }

    /// The element at `index` when this is an array and the index is in range, otherwise `nil`.
    @inlinable
    public subscript(index: Int) -> JSONValue? {
        if case .array(let a) = self, index >= 0, index < a.count { return a[index] }
        return nil
    }

    /// The string when this is `.string`.
    @inlinable
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer when this is `.int`, or a `.double` holding an integral value that fits `Int`.
    @inlinable
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d): return Int(exactly: d)
        default: return nil
        }
    }

    /// The number as a `Double` when this is a number (a `.bigInt` rounds to the nearest).
    @inlinable
    public var doubleValue: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        case .bigInt(let b): return b.doubleValue
        default: return nil
        }
    }

    /// The Boolean when this is `.bool`.
    @inlinable
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements when this is `.array`.
    @inlinable
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members when this is `.object`, exactly as stored (names compare by Unicode scalars).
    @inlinable
    public var objectMembers: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The members keyed by `String` when this is `.object` — a convenience for configuration
    /// readers. Swift `String` keys merge canonically equivalent names ("\u{E9}" and "e\u{301}"):
    /// when an object has such a pair, only one of them (unspecified which) appears here. Use
    /// `objectMembers` or `case .object` where every member matters.
    @inlinable
    public var objectValue: [String: JSONValue]? {
        guard case .object(let o) = self else { return nil }
        var d = [String: JSONValue](minimumCapacity: o.count)
        for (k, v) in o { d[k.string] = v }
        return d
    }

    /// `true` when this is `.null`.
    @inlinable
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// `true` when this is `.int`, `.bigInt` or `.double`.
    @inlinable
    public var isNumber: Bool {
        switch self {
        case .int, .bigInt, .double: return true
        default: return false
        }
    }

    /// The JSON type name of this value: "null", "boolean", "integer", "number", "string",
    /// "array" or "object". Integral doubles report "number".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .int, .bigInt: return "integer"
        case .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

// MARK: - Literals

extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var o = JSONObject(minimumCapacity: elements.count)
        for (k, v) in elements { o[JSONKey(k)] = v }
        self = .object(o)
    }
}

extension JSONValue: CustomStringConvertible, CustomDebugStringConvertible {
    /// Compact JSON text with sorted keys.
    public var description: String { serialized(sortedKeys: true) }
    public var debugDescription: String { "JSONValue(\(serialized(sortedKeys: true)))" }
}

// MARK: - Object member names

/// The name of a JSON object member. Equality, hashing and ordering use the UTF-8 bytes of the
/// name (equivalently its Unicode scalars), never Swift's canonical equivalence, so that an object
/// keeps exactly the members that were put in: `JSONKey("\u{E9}") != JSONKey("e\u{301}")`.
public struct JSONKey: Hashable, Comparable, Sendable, ExpressibleByStringLiteral,
                       CustomStringConvertible, CustomDebugStringConvertible {
    /// The name.
    public let string: String

    @inlinable public init(_ string: String) { self.string = string }
    @inlinable public init(stringLiteral value: String) { self.string = value }

    @inlinable
    public static func == (lhs: JSONKey, rhs: JSONKey) -> Bool { JSONValue.scalarsEqual(lhs.string, rhs.string) }

    /// Orders by UTF-8 bytes (the same as ordering by Unicode scalar values).
    @inlinable
    public static func < (lhs: JSONKey, rhs: JSONKey) -> Bool { lhs.string.utf8.lexicographicallyPrecedes(rhs.string.utf8) }

    /// Hashes the UTF-8 bytes (with their count) in one block rather than byte by byte, which
    /// made hashing a name cost a Hasher call per byte.
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(string.utf8.count)
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            var copy = string
            copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        }
    }

    public var description: String { string }
    public var debugDescription: String { string.debugDescription }
}

extension JSONValue {
    /// An object from members keyed by `String` (source compatibility for code that builds
    /// objects from Swift dictionaries). A `[String: JSONValue]` has already merged canonically
    /// equivalent names; parsed objects never go through it.
    @inlinable @_disfavoredOverload
    public static func object(_ members: [String: JSONValue]) -> JSONValue {
        .object(JSONObject(members))
    }

}
