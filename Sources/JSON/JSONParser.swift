/// An error thrown by `JSONValue.parse` when the input is not valid RFC 8259 JSON.
///
/// `offset` is the 0-based byte offset of the problem; `line` and `column` are 1-based, with the
/// column counted in Unicode scalars from the start of the line.
public struct JSONParseError: Error, CustomStringConvertible, Sendable, Equatable {
    /// 0-based byte offset into the input.
    public let offset: Int
    /// 1-based line number.
    public let line: Int
    /// 1-based column (Unicode scalars since the start of the line).
    public let column: Int
    /// What was wrong, in plain English.
    public let message: String

    /// Creates an error; normally only the parser does this.
    public init(offset: Int, line: Int, column: Int, message: String) {
        self.offset = offset
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        "JSON parse error at line \(line), column \(column) (byte \(offset)): \(message)"
    }
}

extension JSONValue {
    /// The deepest nesting of arrays and objects that `parse` accepts.
    public static let maximumParseDepth = 512

    /// Parses UTF-8 JSON text (RFC 8259, strict: no comments, no trailing commas, no NaN or
    /// Infinity, no leading zeros, no control characters in strings, valid UTF-8 only).
    ///
    /// A lone UTF-16 surrogate in a `\u` escape is replaced by U+FFFD. A UTF-8 byte order mark
    /// at the very start is skipped. Nesting deeper than `maximumParseDepth` is an error.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var p = Parser(bytes)
        return try p.parseDocument()
    }

    /// Parses UTF-8 JSON bytes. See `parse(_: UnsafeRawBufferPointer)`.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let r: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { buf in
            do throws(JSONParseError) { return .success(try parse(buf)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    /// Parses JSON text. See `parse(_: UnsafeRawBufferPointer)`.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let r: Result<JSONValue, JSONParseError> = text.withUTF8 { buf in
            do throws(JSONParseError) {
                return .success(try parse(UnsafeRawBufferPointer(buf)))
            } catch { return .failure(error) }
        }
        return try r.get()
    }
}

/// Single-pass recursive-descent parser over a byte buffer.
struct Parser {
    let base: UnsafePointer<UInt8>?
    let count: Int
    var pos = 0
    var depth = 0
    /// Scratch buffer reused for strings with escapes.
    var scratch: [UInt8] = []
    /// Members of the objects being parsed (innermost last), so that each object's storage is
    /// created once at its final size instead of growing.
    var members: [JSONObject.Element] = []
    /// Elements of the arrays being parsed, for the same reason.
    var elements: [JSONValue] = []

    init(_ bytes: UnsafeRawBufferPointer) {
        base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
        count = bytes.count
    }

    @inline(__always)
    func byte(_ i: Int) -> UInt8 { base.unsafelyUnwrapped[i] }

    // MARK: errors

    func error(_ message: String, at offset: Int? = nil) -> JSONParseError {
        let off = min(offset ?? pos, count)
        var line = 1
        var lineStart = 0
        var i = 0
        while i < off {
            if byte(i) == 0x0A { line += 1; lineStart = i + 1 }
            i += 1
        }
        // Column in Unicode scalars: count bytes that are not UTF-8 continuation bytes.
        var column = 1
        i = lineStart
        while i < off {
            if byte(i) & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return JSONParseError(offset: off, line: line, column: column, message: message)
    }

    func describeByte(at i: Int) -> String {
        guard i < count else { return "end of input" }
        let b = byte(i)
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return "byte 0x" + (hex.count == 1 ? "0" + hex : hex)
    }

    // MARK: structure

    @inline(__always)
    mutating func skipWhitespace() {
        while pos < count {
            let b = byte(pos)
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { return }
        }
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        if count >= 3, byte(0) == 0xEF, byte(1) == 0xBB, byte(2) == 0xBF { pos = 3 }
        skipWhitespace()
        guard pos < count else { throw error("empty input: expected a JSON value") }
        let v = try parseValue()
        skipWhitespace()
        if pos < count {
            throw error("unexpected \(describeByte(at: pos)) after the end of the JSON value")
        }
        return v
    }

    mutating func parseValue() throws(JSONParseError) -> JSONValue {
        guard pos < count else { throw error("unexpected end of input: expected a value") }
        switch byte(pos) {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw error("NaN and Infinity are not valid JSON numbers")
        case UInt8(ascii: "]"), UInt8(ascii: "}"):
            throw error("unexpected \(describeByte(at: pos)): expected a value (trailing comma?)")
        default:
            throw error("unexpected \(describeByte(at: pos)): expected a value")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        let w = word.utf8Start
        let start = pos
        for i in 0..<n {
            guard pos + i < count, byte(pos + i) == w[i] else {
                throw error("invalid literal: expected '\(word)'", at: start)
            }
        }
        pos += n
        if pos < count {
            let b = byte(pos)
            if (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) {
                throw error("invalid literal: expected '\(word)'", at: start)
            }
        }
    }

    mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > JSONValue.maximumParseDepth {
            throw error("nesting too deep: more than \(JSONValue.maximumParseDepth) levels of arrays/objects")
        }
    }

    mutating func parseObject() throws(JSONParseError) -> JSONValue {
        try enter()
        pos += 1  // {
        skipWhitespace()
        if pos < count, byte(pos) == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return .object([:])
        }
        let base = members.count
        while true {
            guard pos < count else { throw error("unexpected end of input inside an object") }
            guard byte(pos) == UInt8(ascii: "\"") else {
                if byte(pos) == UInt8(ascii: "}") {
                    throw error("trailing comma before '}' is not allowed")
                }
                throw error("unexpected \(describeByte(at: pos)): expected a string member name")
            }
            let key = try parseString()
            skipWhitespace()
            guard pos < count, byte(pos) == UInt8(ascii: ":") else {
                throw error("unexpected \(describeByte(at: pos)): expected ':' after member name")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue()
            members.append((key: JSONKey(key), value: value))
            skipWhitespace()
            guard pos < count else { throw error("unexpected end of input inside an object") }
            let b = byte(pos)
            pos += 1
            if b == UInt8(ascii: ",") {
                skipWhitespace()
                continue
            }
            if b == UInt8(ascii: "}") { break }
            pos -= 1
            throw error("unexpected \(describeByte(at: pos)): expected ',' or '}' in object")
        }
        depth -= 1
        // A repeated name: the last one wins.
        return .object(JSONObject(parsed: Self.takeTail(of: &members, from: base, leaving: (key: "", value: .null))))
    }

    /// Moves `stack[base...]` into a new array and drops them from `stack`. Moved, not copied:
    /// a copy retained every string, array and object value once and the removal released it
    /// again. The moved-from slots get `filler` (no storage of its own) before the removal.
    @inline(__always)
    static func takeTail<Element>(of stack: inout [Element], from base: Int, leaving filler: Element) -> [Element] {
        let n = stack.count - base
        let taken = stack.withUnsafeMutableBufferPointer { source in
            [Element](unsafeUninitializedCapacity: n) { target, initialized in
                target.baseAddress!.moveInitialize(from: source.baseAddress! + base, count: n)
                (source.baseAddress! + base).initialize(repeating: filler, count: n)
                initialized = n
            }
        }
        stack.removeSubrange(base...)
        return taken
    }

    mutating func parseArray() throws(JSONParseError) -> JSONValue {
        try enter()
        pos += 1  // [
        skipWhitespace()
        if pos < count, byte(pos) == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return .array([])
        }
        let base = elements.count
        while true {
            skipWhitespace()
            if pos < count, byte(pos) == UInt8(ascii: "]") {
                throw error("trailing comma before ']' is not allowed")
            }
            elements.append(try parseValue())
            skipWhitespace()
            guard pos < count else { throw error("unexpected end of input inside an array") }
            let b = byte(pos)
            pos += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "]") { break }
            pos -= 1
            throw error("unexpected \(describeByte(at: pos)): expected ',' or ']' in array")
        }
        depth -= 1
        return .array(Self.takeTail(of: &elements, from: base, leaving: .null))
    }

    // MARK: strings

    mutating func parseString() throws(JSONParseError) -> String {
        let open = pos
        pos += 1  // opening quote
        let start = pos
        // Fast scan for the closing quote, 8 bytes at a time while no byte needs attention
        // (quote, backslash, control character or non-ASCII).
        let p = base.unsafelyUnwrapped
        var i = pos
        var high: UInt8 = 0
        while i + 8 <= count {
            let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            let q = w ^ (ones &* 0x22)
            let bs = w ^ (ones &* 0x5C)
            let special = ((q &- ones) & ~q) | ((bs &- ones) & ~bs) | ((w &- ones &* 0x20) & ~w) | w
            if special & highs != 0 { break }
            i += 8
        }
        while i < count {
            let b = p[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
            high |= b
            i += 1
        }
        pos = i
        if pos < count, byte(pos) == UInt8(ascii: "\"") {
            let buf = UnsafeBufferPointer(start: p + start, count: pos - start)
            pos += 1
            if high < 0x80 { return String(decoding: buf, as: UTF8.self) }  // all ASCII: valid
            guard let s = String(validating: buf, as: UTF8.self) else {
                throw error("invalid UTF-8 in string", at: firstInvalidUTF8(from: start, to: pos - 1))
            }
            return s
        }
        if pos < count, byte(pos) < 0x20 {
            throw error("unescaped control character (U+00\(hex2(byte(pos)))) in string")
        }
        var ascii = high < 0x80
        guard pos < count else { throw error("unterminated string", at: open) }
        // Slow path with escapes.
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: base.unsafelyUnwrapped + start, count: pos - start))
        while true {
            guard pos < count else { throw error("unterminated string", at: open) }
            let b = byte(pos)
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw error("unescaped control character (U+00\(hex2(b))) in string") }
            if b >= 0x80 { ascii = false }
            if b != UInt8(ascii: "\\") {
                scratch.append(b)
                pos += 1
                continue
            }
            let escStart = pos
            pos += 1
            guard pos < count else { throw error("unterminated string", at: open) }
            let e = byte(pos)
            pos += 1
            switch e {
            case UInt8(ascii: "\""): scratch.append(0x22)
            case UInt8(ascii: "\\"): scratch.append(0x5C)
            case UInt8(ascii: "/"): scratch.append(0x2F)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4(escStart)
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    // High surrogate: pair with a following \uDC00-\uDFFF, else U+FFFD.
                    if pos + 1 < count, byte(pos) == UInt8(ascii: "\\"), byte(pos + 1) == UInt8(ascii: "u") {
                        let save = pos
                        pos += 2
                        let low = try parseHex4(save)
                        if low >= 0xDC00 && low < 0xE000 {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save  // not a low surrogate: reprocess it on its own
                            scalar = 0xFFFD
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    scalar = 0xFFFD  // lone low surrogate
                }
                appendUTF8(scalar)
            default:
                throw error("invalid escape sequence '\\\(Character(Unicode.Scalar(e)))' in string", at: escStart)
            }
        }
        if ascii { return String(decoding: scratch, as: UTF8.self) }
        guard let s = String(validating: scratch, as: UTF8.self) else {
            throw error("invalid UTF-8 in string", at: firstInvalidUTF8(from: start, to: pos - 1))
        }
        return s
    }

    func hex2(_ b: UInt8) -> String {
        let s = String(b, radix: 16, uppercase: true)
        return s.count == 1 ? "0" + s : s
    }

    mutating func parseHex4(_ escStart: Int) throws(JSONParseError) -> UInt32 {
        guard pos + 4 <= count else { throw error("incomplete \\u escape in string", at: escStart) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = byte(pos)
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid \\u escape in string: expected 4 hex digits", at: escStart)
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func appendUTF8(_ s: UInt32) {
        if s < 0x80 {
            scratch.append(UInt8(s))
        } else if s < 0x800 {
            scratch.append(UInt8(0xC0 | (s >> 6)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        } else if s < 0x10000 {
            scratch.append(UInt8(0xE0 | (s >> 12)))
            scratch.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        } else {
            scratch.append(UInt8(0xF0 | (s >> 18)))
            scratch.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            scratch.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            scratch.append(UInt8(0x80 | (s & 0x3F)))
        }
    }

    /// Offset of the first byte that starts an invalid UTF-8 sequence in [from, to).
    func firstInvalidUTF8(from: Int, to: Int) -> Int {
        var i = from
        while i < to {
            let b = byte(i)
            var need = 0
            var minScalar: UInt32 = 0
            var scalar: UInt32 = 0
            if b < 0x80 { i += 1; continue }
            else if b & 0xE0 == 0xC0 { need = 1; minScalar = 0x80; scalar = UInt32(b & 0x1F) }
            else if b & 0xF0 == 0xE0 { need = 2; minScalar = 0x800; scalar = UInt32(b & 0x0F) }
            else if b & 0xF8 == 0xF0 { need = 3; minScalar = 0x10000; scalar = UInt32(b & 0x07) }
            else { return i }
            if i + need >= to { return i }
            for k in 1...need {
                let c = byte(i + k)
                if c & 0xC0 != 0x80 { return i }
                scalar = scalar << 6 | UInt32(c & 0x3F)
            }
            if scalar < minScalar || scalar > 0x10FFFF || (scalar >= 0xD800 && scalar < 0xE000) { return i }
            i += need + 1
        }
        return from
    }

    // MARK: numbers

    mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = pos
        var negative = false
        if byte(pos) == UInt8(ascii: "-") {
            negative = true
            pos += 1
        }
        guard pos < count, isDigit(byte(pos)) else {
            throw error("invalid number: expected a digit after '-'", at: start)
        }
        // Integer part.
        var mantissa: UInt64 = 0
        var digits = 0          // significant digits accumulated into mantissa
        var droppedDigits = 0   // integer digits beyond what fits the mantissa
        if byte(pos) == UInt8(ascii: "0") {
            pos += 1
            if pos < count, isDigit(byte(pos)) {
                throw error("invalid number: leading zeros are not allowed", at: start)
            }
        } else {
            while pos < count, isDigit(byte(pos)) {
                let d = UInt64(byte(pos) - UInt8(ascii: "0"))
                if digits < 19 {
                    mantissa = mantissa * 10 + d
                    if mantissa != 0 { digits += 1 }
                } else {
                    droppedDigits += 1
                }
                pos += 1
            }
        }
        var isInteger = true
        var fractionDigits = 0
        if pos < count, byte(pos) == UInt8(ascii: ".") {
            isInteger = false
            pos += 1
            guard pos < count, isDigit(byte(pos)) else {
                throw error("invalid number: expected a digit after '.'")
            }
            while pos < count, isDigit(byte(pos)) {
                let d = UInt64(byte(pos) - UInt8(ascii: "0"))
                if digits < 19 {
                    mantissa = mantissa * 10 + d
                    if mantissa != 0 { digits += 1 }
                    fractionDigits += 1
                }
                pos += 1
            }
        }
        var exponent = 0
        if pos < count, byte(pos) | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            pos += 1
            var expNegative = false
            if pos < count, byte(pos) == UInt8(ascii: "+") || byte(pos) == UInt8(ascii: "-") {
                expNegative = byte(pos) == UInt8(ascii: "-")
                pos += 1
            }
            guard pos < count, isDigit(byte(pos)) else {
                throw error("invalid number: expected a digit in the exponent")
            }
            while pos < count, isDigit(byte(pos)) {
                if exponent < 100_000 { exponent = exponent * 10 + Int(byte(pos) - UInt8(ascii: "0")) }
                pos += 1
            }
            if expNegative { exponent = -exponent }
        }
        if isInteger && droppedDigits == 0 {
            if negative {
                if mantissa <= UInt64(Int.max) + 1 {
                    return .int(mantissa == UInt64(Int.max) + 1 ? Int.min : -Int(mantissa))
                }
            } else if mantissa <= UInt64(Int.max) {
                return .int(Int(mantissa))
            }
        }
        if isInteger {
            // Beyond Int: keep the digits (the leading '-' and digits were checked above).
            let text = String(decoding: UnsafeBufferPointer(start: base.unsafelyUnwrapped + start, count: pos - start), as: UTF8.self)
            if let big = JSONBigInt(text) { return .bigInt(big) }
        }
        // Clinger's fast path: exact when the mantissa and the power of ten are exact doubles.
        let e10 = exponent - fractionDigits + droppedDigits
        if droppedDigits == 0 && mantissa < (1 << 53) && e10 >= -22 && e10 <= 22 {
            var d = Double(mantissa)
            if e10 < 0 { d /= Parser.powersOf10[-e10] } else { d *= Parser.powersOf10[e10] }
            return .double(negative ? -d : d)
        }
        let text = String(decoding: UnsafeBufferPointer(start: base.unsafelyUnwrapped + start, count: pos - start), as: UTF8.self)
        guard let d = Double(text) else { throw error("invalid number", at: start) }
        // A magnitude beyond Double's range (e.g. 1e400) is a valid JSON number: it becomes
        // ±infinity (as in Python's json module), never a parse error.
        return .double(d)
    }

    @inline(__always)
    func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    static let powersOf10: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]
}
