/// A set of Unicode code points: sorted, disjoint, non-adjacent ranges plus an ASCII bitmap
/// for the common case. Immutable once built.
struct RegexCharSet: Sendable, Hashable {
    private(set) var ranges: [ClosedRange<UInt32>] = []
    private var asciiLow: UInt64 = 0
    private var asciiHigh: UInt64 = 0

    static let maxScalar: UInt32 = 0x10FFFF

    init() {}

    init(_ ranges: [ClosedRange<UInt32>]) {
        self.ranges = Self.normalized(ranges)
        rebuildBitmap()
    }

    init(scalar c: UInt32) { self.init([c...c]) }

    static let all = RegexCharSet([0...maxScalar])
    static let digits = RegexCharSet([0x30...0x39])
    static let word = RegexCharSet([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    /// ECMA-262 WhiteSpace and LineTerminator: TAB VT FF SP NBSP ZWNBSP, Zs, LF CR LS PS.
    static let space = RegexCharSet([0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                     0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000,
                                     0xFEFF...0xFEFF])
    /// `.` without the `s` flag: everything but the line terminators.
    static let dot = RegexCharSet([0x0A...0x0A, 0x0D...0x0D, 0x2028...0x2029]).inverted()

    var isEmpty: Bool { ranges.isEmpty }

    @inline(__always)
    func contains(_ c: UInt32) -> Bool {
        if c < 64 { return asciiLow & (1 << UInt64(c)) != 0 }
        if c < 128 { return asciiHigh & (1 << UInt64(c - 64)) != 0 }
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if ranges[mid].upperBound < c { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].lowerBound <= c
    }

    func union(_ other: RegexCharSet) -> RegexCharSet { RegexCharSet(ranges + other.ranges) }

    func inverted() -> RegexCharSet {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            next = r.upperBound + 1
        }
        if next <= Self.maxScalar { out.append(next...Self.maxScalar) }
        var s = RegexCharSet()
        s.ranges = out
        s.rebuildBitmap()
        return s
    }

    private static func normalized(_ input: [ClosedRange<UInt32>]) -> [ClosedRange<UInt32>] {
        let sorted = input.sorted { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    private mutating func rebuildBitmap() {
        asciiLow = 0
        asciiHigh = 0
        for r in ranges where r.lowerBound < 128 {
            for c in r.lowerBound...min(r.upperBound, 127) {
                if c < 64 { asciiLow |= 1 << UInt64(c) } else { asciiHigh |= 1 << UInt64(c - 64) }
            }
        }
    }
}

/// The Unicode properties `\p{…}` accepts in ECMA-262 (`u` flag), from the generated table
/// in `RegexUnicodeData.swift`.
enum UnicodeProperty {
    /// Name → encoded ranges, keyed `gc:Lu`, `bin:Alphabetic`, `sc:Greek`, `scx:Grek`.
    private static let table: [String: Substring] = {
        var t: [String: Substring] = [:]
        for line in unicodePropertyData.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            for name in parts[1].split(separator: ",") { t["\(parts[0]):\(name)"] = parts[2] }
        }
        return t
    }()

    /// The set named by the text between the braces of `\p{…}`, or nil when ECMA-262 does not
    /// know the name (names and values are case-sensitive, no loose matching).
    static func set(_ body: String) -> RegexCharSet? {
        let key: String
        if let eq = body.firstIndex(of: "=") {
            let name = body[..<eq], value = body[body.index(after: eq)...]
            switch name {
            case "General_Category", "gc": key = "gc:\(value)"
            case "Script", "sc": key = "sc:\(value)"
            case "Script_Extensions", "scx": key = "scx:\(value)"
            default: return nil
            }
        } else if table["gc:\(body)"] != nil {
            key = "gc:\(body)"
        } else {
            key = "bin:\(body)"
        }
        return table[key].map(decode)
    }

    /// Decodes alternating (gap, length - 1) numbers, each a little-endian base-32 varint in
    /// base64 digits: 0–31 end a number, 32–63 carry 5 bits and continue it.
    static func decode(_ s: Substring) -> RegexCharSet {
        var ranges: [ClosedRange<UInt32>] = []
        var numbers: [UInt32] = []
        var value: UInt32 = 0, shift: UInt32 = 0
        for b in s.utf8 {
            let d: UInt32
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): d = UInt32(b - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): d = UInt32(b - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "+"): d = 62
            default: d = 63
            }
            value |= (d & 31) << shift
            if d >= 32 {
                shift += 5
            } else {
                numbers.append(value)
                value = 0
                shift = 0
            }
        }
        var prev: Int64 = -1
        var k = 0
        while k + 1 < numbers.count {
            let lo = prev + 1 + Int64(numbers[k])
            let hi = lo + Int64(numbers[k + 1])
            ranges.append(UInt32(lo)...UInt32(hi))
            prev = hi
            k += 2
        }
        return RegexCharSet(ranges)
    }
}
