// Codable bridge. This is the only file of the module that uses Foundation, and only for the
// convenience round trips through JSONEncoder/JSONDecoder; parsing and serialization above do
// not touch it.
import Foundation

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else if let o = try? c.decode([String: JSONValue].self) {
            self = .object(JSONObject(o))
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        // Foundation's Decimal holds 38 digits; beyond, the nearest Double is all Codable has.
        case .bigInt(let b): try c.encode(Decimal(string: b.description).flatMap { $0.isNaN ? nil : $0 } ?? Decimal(b.doubleValue))
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o):
            var d = [String: JSONValue](minimumCapacity: o.count)
            for (k, v) in o { d[k.string] = v }
            try c.encode(d)
        }
    }

    /// The JSON value of any `Encodable`, through Foundation's `JSONEncoder` (default
    /// strategies) and this module's parser.
    public init<T: Encodable>(encoding value: T) throws {
        let data = try JSONEncoder().encode(value)
        self = try data.withUnsafeBytes { raw throws(JSONParseError) in try JSONValue.parse(raw) }
    }

    /// Decodes this value as `T` through Foundation's `JSONDecoder` (default strategies).
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        let bytes = serializedBytes()
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }
}
