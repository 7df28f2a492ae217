import JSON

/// `${params.NAME[.path]}` in a template's plan: a string that is exactly one such reference
/// becomes the param's JSON value; inside longer text it is interpolated (strings as they are,
/// other values as compact JSON). Other references (`${inputs.…}`, `${steps.…}`, `${item}`)
/// and the `$${` escape are left for the run.
enum ParamSubstitution {
    /// The path (param name first) of every `${params.…}` in `body`.
    static func references(in body: JSONValue) throws(TemplateError) -> [[String]] {
        var out: [[String]] = []
        try visit(body) { (s: String) throws(TemplateError) in
            for case .param(let path) in try pieces(s) { out.append(path) }
        }
        return out
    }

    /// `body` with every `${params.…}` replaced. A param that has no value (an optional one not
    /// given, without a default) is null: every reference names a declared param, which the
    /// template's parse checked, so this is never a typo.
    static func substitute(_ body: JSONValue, params: JSONValue) throws(TemplateError) -> JSONValue {
        switch body {
        case .string(let s):
            let parts = try pieces(s)
            guard parts.contains(where: { if case .param = $0 { return true }; return false }) else { return body }
            if parts.count == 1, case .param(let path) = parts[0] { return value(path, in: params) }
            var text = ""
            for part in parts {
                switch part {
                case .text(let t): text += t
                case .param(let path):
                    let v = value(path, in: params)
                    if case .string(let s) = v { text += s } else if !v.isNull { text += v.serialized() }
                }
            }
            return .string(text)
        case .array(let items):
            var out: [JSONValue] = []
            for item in items { out.append(try substitute(item, params: params)) }
            return .array(out)
        case .object(let o):
            var out: JSONObject = [:]
            for (k, v) in o { out[k] = try substitute(v, params: params) }
            return .object(out)
        default:
            return body
        }
    }

    static func value(_ path: [String], in params: JSONValue) -> JSONValue {
        var v = params
        for key in path {
            guard let next = v[key] ?? Int(key).flatMap({ v[$0] }) else { return .null }
            v = next
        }
        return v
    }

    /// A stand-in value of the type `schema` declares: the default when there is one.
    static func placeholder(for schema: JSONValue?) -> JSONValue {
        if let d = schema?["default"] { return d }
        if let e = schema?["enum"]?.arrayValue?.first { return e }
        let type = schema?["type"]?.stringValue ?? schema?["type"]?.arrayValue?.first?.stringValue
        switch type {
        case "integer", "number": return .int(0)
        case "boolean": return .bool(false)
        case "array": return .array([])
        case "object": return .object([:])
        case "null": return .null
        default: return .string("x")
        }
    }

    /// `params` with each missing property that has a `default` in `schema` filled in, in
    /// nested objects too.
    static func applyDefaults(_ params: JSONValue, schema: JSONValue) -> JSONValue {
        guard case .object(var o) = params, let props = schema["properties"]?.objectValue else { return params }
        for (key, sub) in props {
            if let existing = o[key] { o[key] = applyDefaults(existing, schema: sub) }
            else if let d = sub["default"] { o[key] = d }
        }
        return .object(o)
    }

    enum Piece { case text(String), param([String]) }

    /// Splits `s` at `${params.…}`; other `${…}` stay text (with their `$${` escapes intact).
    static func pieces(_ s: String) throws(TemplateError) -> [Piece] {
        guard s.contains("${") else { return [.text(s)] }
        var out: [Piece] = []
        var text = ""
        var rest = Substring(s)
        while let start = rest.range(of: "${") {
            let escaped = start.lowerBound > rest.startIndex && rest[rest.index(before: start.lowerBound)] == "$"
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw TemplateError(field: "plan", "unterminated ${ in \"\(s)\"")
            }
            let inner = rest[start.upperBound..<end].trimmingCharacters()
            if escaped || !(inner == "params" || inner.hasPrefix("params.")) {
                text += rest[...end]
                rest = rest[rest.index(after: end)...]
                continue
            }
            let path = inner.split(separator: ".", omittingEmptySubsequences: false).dropFirst().map(String.init)
            guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty }) else {
                throw TemplateError(field: "plan", "${\(inner)}: write ${params.NAME} or ${params.NAME.field}")
            }
            text += rest[..<start.lowerBound]
            if !text.isEmpty { out.append(.text(text)); text = "" }
            out.append(.param(path))
            rest = rest[rest.index(after: end)...]
        }
        text += rest
        if !text.isEmpty { out.append(.text(text)) }
        return out
    }

    static func visit(_ v: JSONValue, _ body: (String) throws(TemplateError) -> Void) throws(TemplateError) {
        switch v {
        case .string(let s): try body(s)
        case .array(let a): for x in a { try visit(x, body) }
        case .object(let o): for key in o.keys.sorted(by: { $0.string < $1.string }) { try visit(o[key]!, body) }
        default: break
        }
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
