import JSON
import Yams

/// YAML plans: parsed with Yams and converted to the same JSON value the JSON path produces.
enum YAMLDocuments {
    struct YAMLError: Error, CustomStringConvertible { let description: String }

    static func parse(_ text: String) throws -> JSONValue {
        guard let node = try Yams.compose(yaml: text) else { throw YAMLError(description: "the document is empty") }
        return try convert(node)
    }

    static func convert(_ node: Node) throws -> JSONValue {
        switch node {
        case .scalar(let s):
            if s.style != .plain { return .string(s.string) }
            if let b = Bool.construct(from: s) { return .bool(b) }
            if let i = Int.construct(from: s) { return .int(i) }
            if let d = Double.construct(from: s) { return .double(d) }
            if NSNullLike.isNull(s) { return .null }
            return .string(s.string)
        case .sequence(let seq):
            return .array(try seq.map(convert))
        case .mapping(let map):
            var obj: [String: JSONValue] = [:]
            for (k, v) in map {
                guard case .scalar(let key) = k else { throw YAMLError(description: "mapping keys must be strings") }
                obj[key.string] = try convert(v)
            }
            return .object(obj)
        case .alias:
            throw YAMLError(description: "YAML aliases are not supported in plans")
        }
    }

    enum NSNullLike {
        static func isNull(_ s: Node.Scalar) -> Bool { ["", "~", "null", "Null", "NULL"].contains(s.string) }
    }
}
