/// An RFC 6901 JSON Pointer such as `/a/b~1c/0`.
///
/// The pointer is held as its unescaped reference tokens; `description` is the escaped string
/// form. The empty pointer `""` refers to the whole document.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The unescaped reference tokens, outermost first.
    public var tokens: [String]

    /// The pointer for the given unescaped tokens.
    public init(tokens: [String] = []) {
        self.tokens = tokens
    }

    /// Parses the string form (`""` or `/`-prefixed, with `~0` and `~1` escapes).
    /// - Throws: `JSONPointerError` when the string does not start with `/` or has a bad `~`
    ///   escape.
    public init(parsing text: String) throws(JSONPointerError) {
        if text.isEmpty { tokens = []; return }
        guard text.utf8.first == UInt8(ascii: "/") else {
            throw JSONPointerError(pointer: text, message: "a JSON Pointer must be empty or start with '/'")
        }
        var result: [String] = []
        for raw in text.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            guard let t = JSONPointer.unescape(Substring(raw)) else {
                throw JSONPointerError(pointer: text, message: "'~' must be followed by '0' or '1'")
            }
            result.append(t)
        }
        tokens = result
    }

    /// Parses the string form; traps on an invalid literal.
    public init(stringLiteral value: String) {
        do { try self.init(parsing: value) } catch { fatalError("\(error)") }
    }

    /// Parses a URI fragment (with or without the leading `#`): percent-decodes it, then parses
    /// the result as a JSON Pointer (RFC 6901 §6).
    public init(uriFragment: String) throws(JSONPointerError) {
        var f = Substring(uriFragment)
        if f.first == "#" { f = f.dropFirst() }
        guard let decoded = JSONPointer.percentDecode(f) else {
            throw JSONPointerError(pointer: uriFragment, message: "invalid percent-encoding")
        }
        try self.init(parsing: decoded)
    }

    /// The escaped string form, e.g. `/a~1b/0`.
    public var description: String {
        var s = ""
        for t in tokens {
            s.append("/")
            s.append(JSONPointer.escape(t))
        }
        return s
    }

    /// `true` for the empty pointer (the whole document).
    public var isRoot: Bool { tokens.isEmpty }

    /// This pointer with one more token.
    public func appending(_ token: String) -> JSONPointer {
        JSONPointer(tokens: tokens + [token])
    }

    /// This pointer with one more array-index token.
    public func appending(_ index: Int) -> JSONPointer {
        JSONPointer(tokens: tokens + [String(index)])
    }

    /// The parent pointer, or `nil` for the root.
    public var parent: JSONPointer? {
        tokens.isEmpty ? nil : JSONPointer(tokens: Array(tokens.dropLast()))
    }

    /// Escapes one reference token: `~` → `~0`, `/` → `~1`.
    public static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var s = ""
        s.reserveCapacity(token.utf8.count + 2)
        for c in token.unicodeScalars {
            switch c {
            case "~": s += "~0"
            case "/": s += "~1"
            default: s.unicodeScalars.append(c)
            }
        }
        return s
    }

    /// Unescapes one reference token (`~1` → `/`, `~0` → `~`); `nil` for a bad `~` escape.
    public static func unescape<S: StringProtocol>(_ token: S) -> String? {
        guard token.utf8.contains(UInt8(ascii: "~")) else { return String(token) }
        var out: [UInt8] = []
        var it = token.utf8.makeIterator()
        while let b = it.next() {
            if b == UInt8(ascii: "~") {
                switch it.next() {
                case UInt8(ascii: "0"): out.append(UInt8(ascii: "~"))
                case UInt8(ascii: "1"): out.append(UInt8(ascii: "/"))
                default: return nil
                }
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-decodes `%XX` sequences; `nil` for a malformed escape or invalid UTF-8.
    public static func percentDecode<S: StringProtocol>(_ s: S) -> String? {
        guard s.utf8.contains(UInt8(ascii: "%")) else { return String(s) }
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        func hexVal(_ b: UInt8) -> UInt8? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let h = hexVal(bytes[i + 1]), let l = hexVal(bytes[i + 2]) else { return nil }
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// The value this pointer refers to in `document`, or `nil` when it does not exist.
    /// Array tokens must be canonical decimal indices (`0`, `17`; not `01`, not `-`).
    public func value(in document: JSONValue) -> JSONValue? {
        var cur = document
        for t in tokens {
            switch cur {
            case .object(let o):
                guard let next = o[t] else { return nil }
                cur = next
            case .array(let a):
                guard let i = JSONPointer.arrayIndex(t), i < a.count else { return nil }
                cur = a[i]
            default:
                return nil
            }
        }
        return cur
    }

    /// The value at the pointer given in string form, or `nil` when the pointer is invalid or
    /// the value does not exist.
    public static func value(at pointer: String, in document: JSONValue) -> JSONValue? {
        guard let p = try? JSONPointer(parsing: pointer) else { return nil }
        return p.value(in: document)
    }

    /// The value at `pointer` in `document`, or `nil` when it does not exist.
    public static func value(at pointer: JSONPointer, in document: JSONValue) -> JSONValue? {
        pointer.value(in: document)
    }

    /// The array index a token denotes, or `nil` when it is not a canonical decimal index.
    public static func arrayIndex(_ token: String) -> Int? {
        let u = token.utf8
        guard let f = u.first, f >= UInt8(ascii: "0"), f <= UInt8(ascii: "9") else { return nil }
        if f == UInt8(ascii: "0") && u.count > 1 { return nil }
        guard u.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(token)
    }
}

/// A malformed JSON Pointer string.
public struct JSONPointerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The text that failed to parse.
    public let pointer: String
    /// What was wrong.
    public let message: String

    public var description: String { "invalid JSON Pointer \"\(pointer)\": \(message)" }
}

extension JSONValue {
    /// The value at `pointer` (RFC 6901 string form), or `nil`.
    public func value(at pointer: String) -> JSONValue? {
        JSONPointer.value(at: pointer, in: self)
    }
}
