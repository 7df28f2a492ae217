import JSON

/// A step's `when` condition: a small boolean expression.
///
/// Grammar: `or := and ('||' and)*`, `and := not ('&&' not)*`, `not := '!' not | cmp`,
/// `cmp := atom (('=='|'!='|'<'|'<='|'>'|'>=') atom)?`, `atom := literal | reference | '(' or ')'`.
/// Literals: numbers, 'single' or "double" quoted strings, true, false, null. References are
/// written bare (`steps.check.output.ok`) or as `${...}`. A JSON `true`/`false` is accepted too.
public indirect enum WhenExpression: Sendable, Equatable {
    case literal(JSONValue)
    case reference(Reference)
    case not(WhenExpression)
    case and(WhenExpression, WhenExpression)
    case or(WhenExpression, WhenExpression)
    case compare(String, WhenExpression, WhenExpression)

    /// The references it reads (they become dependencies).
    public var references: [Reference] {
        switch self {
        case .literal: return []
        case .reference(let r): return [r]
        case .not(let e): return e.references
        case .and(let a, let b), .or(let a, let b), .compare(_, let a, let b): return a.references + b.references
        }
    }

    /// Parses the `when` field of a plan step (a string or a boolean).
    public static func parse(_ value: JSONValue) throws(PlanError) -> WhenExpression {
        switch value {
        case .bool(let b): return .literal(.bool(b))
        case .string(let s):
            var p = Parser(tokens: try tokenize(s), source: s)
            let e = try p.parseOr()
            guard p.pos == p.tokens.count else { throw PlanError("unexpected '\(p.tokens[p.pos])' in \"\(s)\"") }
            return e
        default:
            throw PlanError("must be a boolean expression string (e.g. \"steps.check.output.ok == true\") or true/false, not \(value.typeName)")
        }
    }

    /// Evaluates to a boolean; anything else is an error naming the type.
    public func evaluate(in scope: some ReferenceScope) throws(PlanError) -> Bool {
        let v = try value(in: scope)
        guard case .bool(let b) = v else { throw PlanError("evaluated to \(v.typeName) \(v.serialized()), expected a boolean") }
        return b
    }

    func value(in scope: some ReferenceScope) throws(PlanError) -> JSONValue {
        switch self {
        case .literal(let v): return v
        case .reference(let r): return try Template.value(of: r, in: scope, strict: false)
        case .not(let e): return .bool(!(try e.evaluate(in: scope)))
        case .and(let a, let b):
            // Short-circuit: the right side is evaluated only when needed.
            if try !a.evaluate(in: scope) { return .bool(false) }
            return .bool(try b.evaluate(in: scope))
        case .or(let a, let b):
            if try a.evaluate(in: scope) { return .bool(true) }
            return .bool(try b.evaluate(in: scope))
        case .compare(let op, let a, let b):
            let x = try a.value(in: scope), y = try b.value(in: scope)
            switch op {
            case "==": return .bool(x == y)
            case "!=": return .bool(x != y)
            default:
                if let p = x.doubleValue, let q = y.doubleValue, x.isNumber, y.isNumber {
                    switch op { case "<": return .bool(p < q); case "<=": return .bool(p <= q); case ">": return .bool(p > q); default: return .bool(p >= q) }
                }
                if case .string(let p) = x, case .string(let q) = y {
                    switch op { case "<": return .bool(p < q); case "<=": return .bool(p <= q); case ">": return .bool(p > q); default: return .bool(p >= q) }
                }
                throw PlanError("cannot compare \(x.typeName) \(op) \(y.typeName)")
            }
        }
    }

    enum Token: Equatable, CustomStringConvertible {
        case op(String), lit(JSONValue), ref(String), lparen, rparen
        var description: String {
            switch self {
            case .op(let o): return o
            case .lit(let v): return v.serialized()
            case .ref(let r): return r
            case .lparen: return "("
            case .rparen: return ")"
            }
        }
    }

    static func tokenize(_ s: String) throws(PlanError) -> [Token] {
        var tokens: [Token] = []
        let c = Array(s)
        var i = 0
        while i < c.count {
            let ch = c[i]
            if ch.isWhitespace { i += 1; continue }
            if ch == "(" { tokens.append(.lparen); i += 1; continue }
            if ch == ")" { tokens.append(.rparen); i += 1; continue }
            let two = i + 1 < c.count ? String(c[i...i + 1]) : String(ch)
            if ["&&", "||", "==", "!=", "<=", ">="].contains(two) { tokens.append(.op(two)); i += 2; continue }
            if ["!", "<", ">"].contains(ch) { tokens.append(.op(String(ch))); i += 1; continue }
            if ch == "'" || ch == "\"" {
                var j = i + 1
                var text = ""
                while j < c.count, c[j] != ch {
                    if c[j] == "\\", j + 1 < c.count { j += 1 }
                    text.append(c[j]); j += 1
                }
                guard j < c.count else { throw PlanError("unterminated string in \"\(s)\"") }
                tokens.append(.lit(.string(text))); i = j + 1; continue
            }
            if ch == "$", i + 1 < c.count, c[i + 1] == "{" {
                guard let end = c[i...].firstIndex(of: "}") else { throw PlanError("unterminated ${ in \"\(s)\"") }
                tokens.append(.ref(String(c[(i + 2)..<end]))); i = end + 1; continue
            }
            if ch.isNumber || (ch == "-" && i + 1 < c.count && c[i + 1].isNumber) {
                var j = i + 1
                while j < c.count, c[j].isNumber || c[j] == "." || c[j] == "e" || c[j] == "E" { j += 1 }
                let text = String(c[i..<j])
                if let n = Int(text) { tokens.append(.lit(.int(n))) } else if let d = Double(text) { tokens.append(.lit(.double(d))) } else {
                    throw PlanError("bad number '\(text)' in \"\(s)\"")
                }
                i = j; continue
            }
            if ch.isLetter || ch == "_" {
                var j = i
                while j < c.count, c[j].isLetter || c[j].isNumber || c[j] == "_" || c[j] == "-" || c[j] == "." || c[j] == "[" || c[j] == "]" { j += 1 }
                let word = String(c[i..<j])
                switch word {
                case "true": tokens.append(.lit(.bool(true)))
                case "false": tokens.append(.lit(.bool(false)))
                case "null": tokens.append(.lit(.null))
                default: tokens.append(.ref(word))
                }
                i = j; continue
            }
            throw PlanError("unexpected character '\(ch)' in \"\(s)\"")
        }
        return tokens
    }

    struct Parser {
        var tokens: [Token]
        var source: String
        var pos = 0

        mutating func parseOr() throws(PlanError) -> WhenExpression {
            var e = try parseAnd()
            while pos < tokens.count, tokens[pos] == .op("||") { pos += 1; e = .or(e, try parseAnd()) }
            return e
        }
        mutating func parseAnd() throws(PlanError) -> WhenExpression {
            var e = try parseNot()
            while pos < tokens.count, tokens[pos] == .op("&&") { pos += 1; e = .and(e, try parseNot()) }
            return e
        }
        mutating func parseNot() throws(PlanError) -> WhenExpression {
            if pos < tokens.count, tokens[pos] == .op("!") { pos += 1; return .not(try parseNot()) }
            let a = try parseAtom()
            if pos < tokens.count, case .op(let op) = tokens[pos], ["==", "!=", "<", "<=", ">", ">="].contains(op) {
                pos += 1
                return .compare(op, a, try parseAtom())
            }
            return a
        }
        mutating func parseAtom() throws(PlanError) -> WhenExpression {
            guard pos < tokens.count else { throw PlanError("\"\(source)\" ends too early") }
            let t = tokens[pos]
            pos += 1
            switch t {
            case .lit(let v): return .literal(v)
            case .ref(let r): return .reference(try Reference.parse(r))
            case .lparen:
                let e = try parseOr()
                guard pos < tokens.count, tokens[pos] == .rparen else { throw PlanError("missing ')' in \"\(source)\"") }
                pos += 1
                return e
            default: throw PlanError("unexpected '\(t)' in \"\(source)\"")
            }
        }
    }
}
