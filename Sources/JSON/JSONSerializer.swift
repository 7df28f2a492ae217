extension JSONValue {
    /// JSON text for this value.
    ///
    /// - Parameters:
    ///   - pretty: two-space indentation and `": "` separators when `true`; compact otherwise.
    ///   - sortedKeys: object members ordered by UTF-16 code units of their names when `true`;
    ///     otherwise in dictionary order, which is not stable across processes.
    ///
    /// Doubles are written in their shortest round-trip form (`1.0`, `0.1`, `1e-07`); integral
    /// doubles keep their `.0` so that the text parses back to `.double`. ±infinity (what the
    /// parser makes of `1e400`) is written `±1e400`; NaN, which no JSON text produces, `null`.
    public func serialized(pretty: Bool = false, sortedKeys: Bool = false) -> String {
        let bytes = serializedBytes(pretty: pretty, sortedKeys: sortedKeys)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// UTF-8 JSON text for this value. See `serialized(pretty:sortedKeys:)`.
    public func serializedBytes(pretty: Bool = false, sortedKeys: Bool = false) -> [UInt8] {
        var w = JSONWriter(mode: pretty ? .pretty : .compact, sortKeys: sortedKeys)
        w.write(self, indent: 0)
        return w.out.bytes
    }

    /// Deterministic canonical UTF-8 encoding in the style of RFC 8785 (JCS): no whitespace,
    /// object members sorted by the UTF-16 code units of their names, strings escaped as
    /// ECMAScript's `JSON.stringify` does, doubles in ECMAScript's shortest round-trip number
    /// form, and integral doubles written as integers (`1.0` → `1`, `-0.0` → `0`).
    ///
    /// Differences from RFC 8785, kept deliberately: `.int` and `.bigInt` values are written
    /// exactly even beyond 2^53 (RFC 8785 would round them through IEEE 754), as are doubles from
    /// 2^63 to 10^21 (ECMAScript's rounded digits would read back as another big integer), and
    /// ±infinity (what `1e400` parses to) is written `±1e400` instead of being rejected. The output is the same for equal values,
    /// so it is suitable for hashing.
    public func canonicalBytes() -> [UInt8] {
        var w = JSONWriter(mode: .canonical, sortKeys: true)
        w.write(self, indent: 0)
        return w.out.bytes
    }

    /// Appends the canonical encoding (see `canonicalBytes()`) to `out`, for callers that
    /// assemble a larger document in one buffer.
    public func writeCanonical(into out: inout [UInt8]) {
        var w = JSONWriter(mode: .canonical, sortKeys: true)
        w.write(self, indent: 0)
        out.append(contentsOf: UnsafeBufferPointer(start: w.out.base, count: w.out.count))
    }

    /// The canonical encoding as a `String`. See `canonicalBytes()`.
    public func canonicalString() -> String {
        String(decoding: canonicalBytes(), as: UTF8.self)
    }
}

/// Builds a canonical document piece by piece in one buffer, for callers that assemble an
/// object themselves (the episode store writes its members in order and notes where `hash`
/// goes). Values are written as `canonicalBytes()` writes them; the caller supplies the
/// punctuation and the member order.
public struct CanonicalJSONWriter: ~Copyable {
    var writer: JSONWriter

    /// A writer whose buffer starts with room for `capacity` bytes.
    public init(capacity: Int = 256) {
        writer = JSONWriter(mode: .canonical, sortKeys: true, capacity: capacity)
    }

    /// The number of bytes written so far.
    public var count: Int { writer.out.count }

    /// Appends one byte as it is (punctuation: `{`, `,`, `:`, `}`, a newline).
    public mutating func append(byte: UInt8) { writer.out.append(byte) }

    /// Appends the canonical encoding of `value`.
    public mutating func write(_ value: JSONValue) { writer.write(value, indent: 0) }

    /// Appends `string` as a canonical JSON string (quoted and escaped).
    public mutating func write(string: String) { writer.writeString(string) }

    /// The bytes written.
    public var bytes: [UInt8] { writer.out.bytes }
}

/// `true` when `a` sorts before `b` by UTF-16 code units (RFC 8785 member order).
///
/// Compares UTF-8 bytes, which order like code points; UTF-16 order differs from code point
/// order only between U+E000–U+FFFF (lead byte 0xEE/0xEF) and the supplementary planes (lead
/// byte ≥ 0xF0, surrogates 0xD800–0xDFFF in UTF-16, which sort first). Equal prefixes keep both
/// strings at the same position within a character, so only the first differing byte matters.
public func utf16Less(_ a: String, _ b: String) -> Bool {
    let fast = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y in utf8OrderAsUTF16(x, y) }
    }
    if let fast = fast, let result = fast { return result }
    return a.utf16.lexicographicallyPrecedes(b.utf16)
}

@inline(__always)
func utf8OrderAsUTF16(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool {
    let n = min(x.count, y.count)
    var i = 0
    while i < n {
        let p = x[i], q = y[i]
        if p != q {
            // A BMP character at or above U+E000 against a supplementary one: UTF-16 puts the
            // supplementary one (a surrogate pair) first.
            if p >= 0xEE && q >= 0xEE && (p >= 0xF0) != (q >= 0xF0) { return p >= 0xF0 }
            return p < q
        }
        i += 1
    }
    return x.count < y.count
}

/// A growable byte buffer for `JSONWriter`: appends are a capacity check and a store (an
/// `Array` append also checks that its storage is uniquely referenced, a runtime call per byte).
struct ByteSink: ~Copyable {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    mutating func append(_ b: UInt8) {
        if count == capacity { grow(to: count + 1) }
        base[count] = b
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        let n = bytes.count
        if n == 0 { return }
        if capacity - count < n { grow(to: count + n) }
        (base + count).update(from: bytes.baseAddress!, count: n)
        count += n
    }

    mutating func append(_ s: StaticString) {
        append(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    mutating func append<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        for b in bytes { append(b) }
    }

    @inline(never)
    mutating func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// Drops what was written after the first `n` bytes.
    mutating func truncate(to n: Int) { count = min(count, n) }

    /// The bytes written, as an array (one copy).
    var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// An object member's position and name, with the name's first 8 UTF-8 bytes as an integer:
/// comparing those orders most names without reading their strings.
struct SortedMember {
    let name: String
    let index: Int
    /// The first 8 bytes, big-endian, zero-padded.
    let prefix: UInt64
    /// Whether the prefix orders like UTF-16: no byte at or above 0xEE in it (see `utf16Less`).
    let prefixOrders: Bool

    init(name: String, index: Int) {
        self.name = name
        self.index = index
        var name = name
        (prefix, prefixOrders) = name.withUTF8 { Self.prefix(of: $0) }
    }

    @inline(__always)
    static func prefix(of u: UnsafeBufferPointer<UInt8>) -> (UInt64, Bool) {
        var p: UInt64 = 0
        var high: UInt8 = 0
        let n = min(u.count, 8)
        for i in 0..<n {
            p = p << 8 | UInt64(u[i])
            high |= u[i] >= 0xEE ? 1 : 0
        }
        return (n == 8 ? p : p << (8 * UInt64(8 - n)), high == 0)
    }

    static func precedes(_ a: SortedMember, _ b: SortedMember) -> Bool {
        if a.prefix != b.prefix && a.prefixOrders && b.prefixOrders { return a.prefix < b.prefix }
        return utf16Less(a.name, b.name)
    }
}

struct JSONWriter: ~Copyable {
    enum Mode { case compact, pretty, canonical }
    let mode: Mode
    let sortKeys: Bool
    var out: ByteSink

    init(mode: Mode, sortKeys: Bool, capacity: Int = 256) {
        self.mode = mode
        self.sortKeys = sortKeys
        out = ByteSink(capacity: capacity)
    }

    mutating func newline(_ indent: Int) {
        out.append(0x0A)
        for _ in 0..<indent { out.append(0x20); out.append(0x20) }
    }

    mutating func write(_ v: JSONValue, indent: Int) {
        switch v {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .int(let i): writeInt(i)
        case .double(let d): writeDouble(d)
        case .bigInt(let b):
            // Canonically, a big integer equal to a double is written as that double is, so
            // equal values always have the same canonical bytes (10^21 and 1e21: "1e+21").
            if mode == .canonical, let d = b.exactDouble { writeDouble(d) } else { out.append(contentsOf: b.description.utf8) }
        case .string(let s): writeString(s)
        case .array(let a):
            if a.isEmpty { out.append(0x5B); out.append(0x5D); return }
            out.append(0x5B)
            for (i, e) in a.enumerated() {
                if i > 0 { out.append(0x2C) }
                if mode == .pretty { newline(indent + 1) }
                write(e, indent: indent + 1)
            }
            if mode == .pretty { newline(indent) }
            out.append(0x5D)
        case .object(let o):
            if o.isEmpty { out.append(0x7B); out.append(0x7D); return }
            out.append(0x7B)
            var first = true
            func member(_ k: String, _ e: JSONValue, _ w: inout JSONWriter) {
                if !first { w.out.append(0x2C) }
                first = false
                if w.mode == .pretty { w.newline(indent + 1) }
                w.writeString(k)
                w.out.append(0x3A)
                if w.mode == .pretty { w.out.append(0x20) }
                w.write(e, indent: indent + 1)
            }
            if sortKeys && o.count == 1, let (k, e) = o.first {
                member(k.string, e, &self)
            } else if sortKeys {
                // The members' positions, sorted by name on the stack: no copy of the members,
                // no hash lookup afterwards, and most names told apart by their first 8 bytes.
                withUnsafeTemporaryAllocation(of: SortedMember.self, capacity: o.count) { buffer in
                    var order = buffer
                    var n = 0
                    o.withMembers { members in
                        for i in 0..<members.count {
                            (order.baseAddress! + n).initialize(to: SortedMember(name: members[i].key.string, index: i))
                            n += 1
                        }
                        order.sort(by: SortedMember.precedes)
                        for m in order { member(m.name, members[m.index].value, &self) }
                    }
                    _ = order.deinitialize()
                }
            } else {
                o.withMembers { members in
                    for i in 0..<members.count { member(members[i].key.string, members[i].value, &self) }
                }
            }
            if mode == .pretty { newline(indent) }
            out.append(0x7D)
        }
    }

    mutating func writeInt(_ i: Int) {
        if i == 0 { out.append(0x30); return }
        var buf: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        var m = i.magnitude
        withUnsafeMutableBytes(of: &buf) { raw in
            var p = 24
            while m > 0 {
                p -= 1
                raw[p] = UInt8(truncatingIfNeeded: m % 10) + 0x30
                m /= 10
            }
            if i < 0 { out.append(0x2D) }
            out.append(UnsafeBufferPointer(rebasing: raw.bindMemory(to: UInt8.self)[p..<24]))
        }
    }

    mutating func writeDouble(_ d: Double) {
        guard d.isFinite else {
            // ±infinity (what the parser makes of e.g. 1e400) is written as ±1e400, which parses
            // back to the same value (also in the canonical encoding, where RFC 8785 has no
            // answer); NaN, which no JSON text produces, as null.
            out.append(d.isInfinite ? (d < 0 ? "-1e400" : "1e400") : "null")
            return
        }
        if mode == .canonical {
            // ECMAScript writes integers below 10^21 without an exponent, rounded to 17
            // significant digits; beyond 2^63 such text would parse back as a different, exact
            // big integer, so those doubles are written with their exact digits instead.
            if d.magnitude >= 9223372036854775808.0 && d.magnitude < 1e21 {
                out.append(contentsOf: JSONBigInt.exactIntegerText(d).utf8)
                return
            }
            withECMAScriptNumber(d) { out.append($0) }
        } else {
            out.append(contentsOf: d.description.utf8)
        }
    }

    mutating func writeString(_ s: String) {
        out.append(0x22)
        // Native strings lend their UTF-8 in place; others are copied into one first.
        if s.utf8.withContiguousStorageIfAvailable({ writeEscaped($0) }) == nil {
            var copy = s
            copy.withUTF8 { writeEscaped($0) }
        }
        out.append(0x22)
    }

    /// Whether any of the 8 bytes in `w` is a control character, `"` or `\` (the classic
    /// zero-byte test: a byte's high bit survives `(x - 0x01) & ~x` only when it was zero).
    @inline(__always)
    static func needsEscape(_ w: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5C)
        let control = (w &- ones &* 0x20) & ~w           // some byte < 0x20 (bytes ≥ 0x80 excluded by ~w)
        let quoted = (quote &- ones) & ~quote
        let escaped = (backslash &- ones) & ~backslash
        return (control | quoted | escaped) & high != 0
    }

    /// The characters of a string, escaped as JSON requires (no quotes).
    mutating func writeEscaped(_ buf: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        var i = 0
        let n = buf.count
        let raw = UnsafeRawPointer(buf.baseAddress)
        while i < n {
            // Eight bytes at a time while none of them needs an escape.
            if let raw, n - i >= 8, !Self.needsEscape(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
                continue
            }
            let b = buf[i]
            if b >= 0x20 && b != 0x22 && b != 0x5C { i += 1; continue }
            if runStart < i { out.append(UnsafeBufferPointer(rebasing: buf[runStart..<i])) }
            out.append(0x5C)
            switch b {
            case 0x22: out.append(0x22)
            case 0x5C: out.append(0x5C)
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            default:
                func hexDigit(_ d: UInt8) -> UInt8 { d < 10 ? 0x30 + d : 0x57 + d }
                out.append(UInt8(ascii: "u")); out.append(0x30); out.append(0x30)
                out.append(hexDigit(b >> 4)); out.append(hexDigit(b & 0xF))
            }
            i += 1
            runStart = i
        }
        if runStart < n { out.append(UnsafeBufferPointer(rebasing: buf[runStart..<n])) }
    }
}

/// Formats a finite double as ECMAScript's `Number.prototype.toString` does (the number form
/// RFC 8785 requires): shortest round-trip digits, integers without a fraction, exponent form
/// outside [1e-6, 1e21).
func ecmaScriptNumberString(_ d: Double) -> String {
    withECMAScriptNumber(d) { String(decoding: $0, as: UTF8.self) }
}

/// The shortest decimal representation of a finite double's magnitude as digits × 10^exponent
/// (digits without trailing zeros; (0, 0) for zero), or nil if the digits do not fit UInt64.
/// Swift's `description` gives the shortest round-trip (and closest) digits; this reads them
/// without allocating (nothing for descriptions of up to 15 characters).
public func decimalDigits(_ d: Double) -> (digits: UInt64, exponent: Int)? {
    var text = d.magnitude.description
    return text.withUTF8 { src in
        var digits: UInt64 = 0, fraction = 0, seenPoint = false, i = 0
        while i < src.count, src[i] != UInt8(ascii: "e"), src[i] != UInt8(ascii: "E") {
            let c = src[i]
            i += 1
            if c == UInt8(ascii: ".") { seenPoint = true; continue }
            let (m, o1) = digits.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c &- UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            digits = a
            if seenPoint { fraction += 1 }
        }
        var exponent = -fraction
        if i < src.count {  // the exponent: e[+-]digits
            i += 1
            let negative = src[i] == UInt8(ascii: "-")
            if src[i] == UInt8(ascii: "-") || src[i] == UInt8(ascii: "+") { i += 1 }
            var e = 0
            while i < src.count { e = e * 10 + Int(src[i] &- UInt8(ascii: "0")); i += 1 }
            exponent += negative ? -e : e
        }
        if digits == 0 { return (0, 0) }
        while digits % 10 == 0 { digits /= 10; exponent += 1 }
        return (digits, exponent)
    }
}

/// Calls `body` with the text `ecmaScriptNumberString(d)` returns, laid out in a buffer on the
/// stack: every recorded run encodes several numbers (durations), and this allocates nothing
/// beyond what `Double.description` does (nothing for up to 15 characters).
func withECMAScriptNumber<R>(_ d: Double, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
    // The shortest round-trip digits are at most 17: they always fit.
    guard let (value, exponent) = decimalDigits(d), value != 0 else {
        return withUnsafeBytes(of: UInt8(ascii: "0")) { body($0.assumingMemoryBound(to: UInt8.self)) }
    }
    // Bytes 0..<32 hold the significant digits; 32..<64 the result (at most 25 bytes:
    // "-0.00000" and 17 digits).
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { buf in
        let zero = UInt8(ascii: "0")
        /// Writes `v` in decimal at `start`; returns how many digits it wrote.
        func writeDecimal(_ v: UInt64, at start: Int) -> Int {
            var width = 1, m = v
            while m >= 10 { m /= 10; width += 1 }
            m = v
            for j in stride(from: start + width - 1, through: start, by: -1) {
                buf[j] = zero + UInt8(m % 10)
                m /= 10
            }
            return width
        }
        let k = writeDecimal(value, at: 0)
        // The value is 0.d1…dk × 10^n.
        let n = k + exponent
        var o = 32
        func put(_ c: UInt8) { buf[o] = c; o += 1 }
        func putDigits(_ range: Range<Int>) { for j in range { put(buf[j]) } }
        if d < 0 { put(UInt8(ascii: "-")) }
        if k <= n && n <= 21 {
            putDigits(0..<k)
            for _ in 0..<(n - k) { put(zero) }
        } else if n > 0 && n <= 21 {
            putDigits(0..<n)
            put(UInt8(ascii: "."))
            putDigits(n..<k)
        } else if n > -6 && n <= 0 {
            put(zero)
            put(UInt8(ascii: "."))
            for _ in 0..<(-n) { put(zero) }
            putDigits(0..<k)
        } else {
            let e = n - 1
            put(buf[0])
            if k > 1 {
                put(UInt8(ascii: "."))
                putDigits(1..<k)
            }
            put(UInt8(ascii: "e"))
            put(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            o += writeDecimal(UInt64(e.magnitude), at: o)
        }
        return body(UnsafeBufferPointer(rebasing: buf[32..<o]))
    }
}
