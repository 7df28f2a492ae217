import JSON

/// Turns an introspection result (`__schema`) back into SDL, so that GraphQLSwift can build a
/// schema to validate documents against (it has no `buildClientSchema`) and so that
/// `graphql.schema` can show the schema compactly.
enum IntrospectionSDL {
    /// The standard introspection query (descriptions, deprecated members, directives).
    static let query = """
        query IntrospectionQuery {
          __schema {
            queryType { name } mutationType { name } subscriptionType { name }
            types { ...FullType }
            directives { name description locations args { ...InputValue } }
          }
        }
        fragment FullType on __Type {
          kind name description
          fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
          inputFields { ...InputValue }
          interfaces { ...TypeRef }
          enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
          possibleTypes { ...TypeRef }
        }
        fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
        fragment TypeRef on __Type {
          kind name
          ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
        }
        """

    static let builtinScalars: Set<String> = ["String", "Int", "Float", "Boolean", "ID"]
    static let builtinDirectives: Set<String> = ["skip", "include", "deprecated", "specifiedBy", "oneOf"]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// SDL for `schema` (the value of `data.__schema`).
    static func sdl(_ schema: JSONValue) throws -> String {
        guard let types = schema["types"]?.arrayValue else { throw Invalid(description: "the introspection result has no types") }
        var out: [String] = []
        let q = schema["queryType"]?["name"]?.stringValue
        let m = schema["mutationType"]?["name"]?.stringValue
        let s = schema["subscriptionType"]?["name"]?.stringValue
        guard let q else { throw Invalid(description: "the introspection result has no query type") }
        var roots = ["  query: \(q)"]
        if let m { roots.append("  mutation: \(m)") }
        if let s { roots.append("  subscription: \(s)") }
        out.append("schema {\n" + roots.joined(separator: "\n") + "\n}")

        for d in schema["directives"]?.arrayValue ?? [] {
            guard let name = d["name"]?.stringValue, !builtinDirectives.contains(name) else { continue }
            let locations = (d["locations"]?.arrayValue ?? []).compactMap(\.stringValue)
            guard !locations.isEmpty else { continue }
            out.append(description(d, indent: "") + "directive @\(name)\(try args(d["args"])) on \(locations.joined(separator: " | "))")
        }

        for t in types.sorted(by: { ($0["name"]?.stringValue ?? "") < ($1["name"]?.stringValue ?? "") }) {
            guard let name = t["name"]?.stringValue, !name.hasPrefix("__"), let kind = t["kind"]?.stringValue else { continue }
            let desc = description(t, indent: "")
            switch kind {
            case "SCALAR":
                if !builtinScalars.contains(name) { out.append(desc + "scalar \(name)") }
            case "OBJECT", "INTERFACE":
                let interfaces = try (t["interfaces"]?.arrayValue ?? []).map { try typeRef($0) }
                let impl = interfaces.isEmpty ? "" : " implements " + interfaces.joined(separator: " & ")
                var lines: [String] = []
                for f in t["fields"]?.arrayValue ?? [] {
                    guard let fname = f["name"]?.stringValue, let ftype = f["type"] else { continue }
                    lines.append(description(f, indent: "  ") + "  \(fname)\(try args(f["args"])): \(try typeRef(ftype))\(deprecation(f))")
                }
                out.append(desc + "\(kind == "OBJECT" ? "type" : "interface") \(name)\(impl)" + (lines.isEmpty ? "" : " {\n" + lines.joined(separator: "\n") + "\n}"))
            case "UNION":
                let members = try (t["possibleTypes"]?.arrayValue ?? []).map { try typeRef($0) }
                out.append(desc + "union \(name)" + (members.isEmpty ? "" : " = " + members.joined(separator: " | ")))
            case "ENUM":
                let values = (t["enumValues"]?.arrayValue ?? []).compactMap { v -> String? in
                    guard let n = v["name"]?.stringValue else { return nil }
                    return description(v, indent: "  ") + "  \(n)\(deprecation(v))"
                }
                out.append(desc + "enum \(name) {\n" + values.joined(separator: "\n") + "\n}")
            case "INPUT_OBJECT":
                let fields = try (t["inputFields"]?.arrayValue ?? []).map { try "  " + inputValue($0, indent: "  ") }
                out.append(desc + "input \(name)" + (fields.isEmpty ? "" : " {\n" + fields.joined(separator: "\n") + "\n}"))
            default:
                throw Invalid(description: "type \(name) has unknown kind \(kind)")
            }
        }
        return out.joined(separator: "\n\n") + "\n"
    }

    static func description(_ v: JSONValue, indent: String) -> String {
        guard let d = v["description"]?.stringValue, !d.isEmpty else { return "" }
        return indent + JSONValue.string(d).serialized() + "\n"
    }

    static func deprecation(_ v: JSONValue) -> String {
        guard v["isDeprecated"]?.boolValue == true else { return "" }
        guard let reason = v["deprecationReason"]?.stringValue else { return " @deprecated" }
        return " @deprecated(reason: \(JSONValue.string(reason).serialized()))"
    }

    static func args(_ v: JSONValue?) throws -> String {
        let list = v?.arrayValue ?? []
        guard !list.isEmpty else { return "" }
        return "(" + (try list.map { try inputValue($0, indent: "") }).joined(separator: ", ") + ")"
    }

    static func inputValue(_ v: JSONValue, indent: String) throws -> String {
        guard let name = v["name"]?.stringValue, let type = v["type"] else { throw Invalid(description: "an input value has no name or type") }
        var s = "\(name): \(try typeRef(type))"
        if let def = v["defaultValue"]?.stringValue { s += " = \(def)" }
        return s
    }

    static func typeRef(_ t: JSONValue) throws -> String {
        switch t["kind"]?.stringValue {
        case "NON_NULL":
            guard let inner = t["ofType"], !inner.isNull else { throw Invalid(description: "NON_NULL without ofType") }
            return try typeRef(inner) + "!"
        case "LIST":
            guard let inner = t["ofType"], !inner.isNull else { throw Invalid(description: "LIST without ofType") }
            return "[" + (try typeRef(inner)) + "]"
        default:
            guard let name = t["name"]?.stringValue else { throw Invalid(description: "a type reference has no name") }
            return name
        }
    }
}
