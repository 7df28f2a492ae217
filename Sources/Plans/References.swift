import JSON

/// A reference such as `inputs.who` or `steps.fetch.output.body.items[0]`.
public struct Reference: Sendable, Equatable, CustomStringConvertible {
    /// One step along a path: an object key or an array index.
    public enum Segment: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    public enum Root: Sendable, Equatable {
        case input(String)
        /// `steps.<id>.<field>` where field is `output`, `status` or `error`.
        case step(id: String, field: String)
        /// `item[.path]`: the current element inside a `foreach` step.
        case item
        /// `index`: the current element's position (from 0) inside a `foreach` step.
        case index
    }

    public var root: Root
    public var path: [Segment]
    public var text: String

    public var description: String { text }

    /// The step this reference depends on, if any.
    public var stepId: String? {
        if case .step(let id, _) = root { return id }
        return nil
    }

    /// Parses `inputs.x...` or `steps.<id>.(output|status|error)...`.
    public static func parse(_ text: String) throws(PlanError) -> Reference {
        var segments: [Segment] = []
        var current = ""
        var chars = Array(text.trimmingWhitespace())
        var i = 0
        func flush() throws(PlanError) {
            guard !current.isEmpty else { throw PlanError("'\(text)': empty name in reference") }
            segments.append(.key(current))
            current = ""
        }
        while i < chars.count {
            let c = chars[i]
            if c == "." {
                if !current.isEmpty { try flush() } else if case .index? = segments.last {} else { throw PlanError("'\(text)': empty name in reference") }
            } else if c == "[" {
                if !current.isEmpty { try flush() }
                guard let close = chars[i...].firstIndex(of: "]"), let n = Int(String(chars[(i + 1)..<close])), n >= 0 else {
                    throw PlanError("'\(text)': expected [index] with a non-negative integer")
                }
                segments.append(.index(n))
                i = close
            } else {
                current.append(c)
            }
            i += 1
        }
        if !current.isEmpty { segments.append(.key(current)) }
        chars = []
        guard case .key(let head)? = segments.first else { throw PlanError("'\(text)': a reference starts with inputs. or steps.") }
        switch head {
        case "item":
            return Reference(root: .item, path: Array(segments.dropFirst()), text: text)
        case "index":
            guard segments.count == 1 else { throw PlanError("'\(text)': index is a number and has no fields") }
            return Reference(root: .index, path: [], text: text)
        case "inputs":
            guard segments.count >= 2, case .key(let name) = segments[1] else { throw PlanError("'\(text)': write inputs.<name>") }
            return Reference(root: .input(name), path: Array(segments.dropFirst(2)), text: text)
        case "steps":
            guard segments.count >= 3, case .key(let id) = segments[1], case .key(let field) = segments[2] else {
                throw PlanError("'\(text)': write steps.<id>.output[.path], steps.<id>.status or steps.<id>.error")
            }
            guard ["output", "status", "error"].contains(field) else {
                throw PlanError("'\(text)': a step has output, status and error, not '\(field)'")
            }
            return Reference(root: .step(id: id, field: field), path: Array(segments.dropFirst(3)), text: text)
        default:
            throw PlanError("'\(text)': a reference starts with inputs., steps., item or index, not '\(head)'")
        }
    }

    /// Follows `path` inside `value`; nil if a key or index is missing.
    public func follow(_ value: JSONValue) -> JSONValue? {
        var v = value
        for segment in path {
            switch segment {
            case .key(let k): guard let next = v[k] else { return nil }; v = next
            case .index(let n): guard let next = v[n] else { return nil }; v = next
            }
        }
        return v
    }
}

/// What references resolve against during a run.
public protocol ReferenceScope: Sendable {
    func input(_ name: String) -> JSONValue?
    /// `output`, `status` or `error` of a finished step; nil if the step has not finished.
    func step(_ id: String, field: String) -> JSONValue?
    /// Inside a `foreach` step: the current element; nil elsewhere.
    func item() -> JSONValue?
    /// Inside a `foreach` step: the current element's position; nil elsewhere.
    func index() -> Int?
}

extension ReferenceScope {
    public func item() -> JSONValue? { nil }
    public func index() -> Int? { nil }
}

/// Templates: JSON values whose strings may contain `${reference}`. A string that is exactly
/// one reference becomes the referenced value (any type); references inside longer text are
/// interpolated as text. `$${` escapes a literal `${`.
public enum Template {
    /// Every reference in `template`, with the JSON path where it appears.
    public static func references(in template: JSONValue, at path: String = "") throws(PlanError) -> [(reference: Reference, at: String)] {
        switch template {
        case .string(let s):
            var out: [(Reference, String)] = []
            for case .reference(let r) in try pieces(of: s) { out.append((r, path)) }
            return out
        case .array(let items):
            var out: [(Reference, String)] = []
            for (i, item) in items.enumerated() { out += try references(in: item, at: "\(path)[\(i)]") }
            return out
        case .object(let obj):
            var out: [(Reference, String)] = []
            for key in obj.keys.sorted() { out += try references(in: obj[key]!, at: path.isEmpty ? key.string : "\(path).\(key.string)") }
            return out
        default:
            return []
        }
    }

    /// Substitutes every reference. Missing values resolve to null (a whole-string reference) or
    /// an empty string (inside text); `strict` turns a missing value into an error instead.
    public static func resolve(_ template: JSONValue, in scope: some ReferenceScope, strict: Bool = true) throws(PlanError) -> JSONValue {
        switch template {
        case .string(let s):
            let parts = try pieces(of: s)
            if parts.count == 1, case .reference(let r) = parts[0] { return try value(of: r, in: scope, strict: strict) }
            if !parts.contains(where: { if case .reference = $0 { return true }; return false }) {
                if case .text(let t)? = parts.first, parts.count == 1 { return .string(t) }
            }
            var out = ""
            for part in parts {
                switch part {
                case .text(let t): out += t
                case .reference(let r):
                    let v = try value(of: r, in: scope, strict: strict)
                    if case .string(let s) = v { out += s } else if !v.isNull { out += v.serialized() }
                }
            }
            return .string(out)
        case .array(let items):
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for item in items { out.append(try resolve(item, in: scope, strict: strict)) }
            return .array(out)
        case .object(let obj):
            var out: JSONObject = [:]
            for (k, v) in obj { out[k] = try resolve(v, in: scope, strict: strict) }
            return .object(out)
        default:
            return template
        }
    }

    static func value(of r: Reference, in scope: some ReferenceScope, strict: Bool) throws(PlanError) -> JSONValue {
        let base: JSONValue?
        switch r.root {
        case .input(let name): base = scope.input(name)
        case .step(let id, let field): base = scope.step(id, field: field)
        case .item: base = scope.item()
        case .index: base = scope.index().map { .int($0) }
        }
        guard let base else {
            if strict { throw PlanError("\(r.text) has no value") }
            return .null
        }
        // A step that did not succeed has output null (documented: plans test its status);
        // a path below it is then null too. Anything else that does not resolve is an error.
        if base.isNull, case .step = r.root { return .null }
        guard let v = r.follow(base) else {
            if strict { throw PlanError("\(r.text): no such path in the value") }
            return .null
        }
        return v
    }

    enum Piece { case text(String), reference(Reference) }

    /// The position of the first `${` in `bytes` at or after `p`.
    static func opening<Bytes: RandomAccessCollection<UInt8>>(in bytes: Bytes, from p: Int) -> Int? where Bytes.Index == Int {
        var j = p
        while j + 1 < bytes.endIndex {
            if bytes[j] == 0x24 && bytes[j + 1] == 0x7B { return j }
            j += 1
        }
        return nil
    }

    static func pieces(of s: String) throws(PlanError) -> [Piece] {
        // Byte-wise: most strings hold no reference, and Foundation's substring search (which
        // this replaced) is slow on Linux. `$`, `{` and `}` are ASCII, so every cut falls on a
        // character boundary.
        var native = s
        guard native.withUTF8({ opening(in: $0, from: 0) }) != nil else { return [.text(s)] }  // plain text: no copy
        let u = Array(s.utf8)
        func text(_ range: Range<Int>) -> String { String(decoding: u[range], as: UTF8.self) }
        var out: [Piece] = []
        var pending = ""
        var p = 0
        while let j = opening(in: u, from: p) {
            if j > p, u[j - 1] == 0x24 {
                // `$${` is a literal `${`.
                pending += text(p..<(j - 1)) + "${"
                p = j + 2
                continue
            }
            pending += text(p..<j)
            guard let k = u[(j + 2)...].firstIndex(of: 0x7D) else {
                throw PlanError("unterminated ${ in \"\(s)\"")
            }
            if !pending.isEmpty { out.append(.text(pending)); pending = "" }
            out.append(.reference(try Reference.parse(text((j + 2)..<k))))
            p = k + 1
        }
        pending += text(p..<u.count)
        if !pending.isEmpty { out.append(.text(pending)) }
        return out
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
