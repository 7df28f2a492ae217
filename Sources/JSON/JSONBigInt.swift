/// An integer written in JSON text whose value is outside `Int`'s range, kept exactly.
///
/// JSON puts no bound on numbers (RFC 8259 §6); rounding `18446744073709551617` to a `Double`
/// would make it equal to `18446744073709551616`, so a schema's `enum`, `maximum`,
/// `uniqueItems` or `multipleOf` would answer wrongly. The value is stored as its sign and its
/// decimal digits (no leading zeros) and compared exactly with `Int`, `Double` and other big
/// integers. Values that fit `Int` are never `JSONBigInt` (see `JSONValue.integer(text:)`), so a
/// big integer is always below every `Int` (negative) or above every `Int` (positive).
public struct JSONBigInt: Sendable, Hashable, CustomStringConvertible {
    /// The decimal text, e.g. `-18446744073709551617` (an optional `-`, digits without leading
    /// zeros). One stored `String`, sign included, so that `JSONValue` stays 24 bytes a value
    /// rather than 32 (a separate `Bool` made it 25): every array and object of values is that
    /// much smaller to walk.
    public let description: String

    /// `true` for a value below zero.
    public var isNegative: Bool { description.utf8.first == UInt8(ascii: "-") }
    /// The decimal digits of the magnitude, most significant first, without leading zeros.
    public var magnitude: Substring { isNegative ? description.dropFirst() : description[...] }

    /// Creates a big integer from decimal text (an optional `-` and digits); `nil` when the text
    /// is not an integer or its value fits `Int`.
    public init?(_ text: some StringProtocol) {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else { return nil }
        while digits.count > 1, digits.first == "0" { digits = digits.dropFirst() }
        if Int(negative ? "-" + digits : String(digits)) != nil { return nil }
        description = negative ? "-" + digits : String(digits)
    }

    /// The nearest `Double` (correctly rounded; ±infinity beyond Double's range).
    public var doubleValue: Double { Double(description) ?? (isNegative ? -.infinity : .infinity) }

    /// The `Double` equal to this value, when one exists.
    public var exactDouble: Double? {
        let d = doubleValue
        guard d.isFinite, JSONBigInt.exactIntegerText(d) == description else { return nil }
        return d
    }

    /// Compares with an `Int`: always below (negative) or above (positive) it.
    public func compare(_ other: Int) -> Int { isNegative ? -1 : 1 }

    /// Compares exactly with another big integer: negative, zero or positive.
    public func compare(_ other: JSONBigInt) -> Int {
        if isNegative != other.isNegative { return isNegative ? -1 : 1 }
        let m = JSONBigInt.compareMagnitudes(magnitude, other.magnitude)
        return isNegative ? -m : m
    }

    /// Compares exactly with a `Double` (NaN compares as equal, as nothing orders it).
    public func compare(_ d: Double) -> Int {
        if d.isNaN { return 0 }
        if d == .infinity { return -1 }
        if d == -.infinity { return 1 }
        // Every double of magnitude below 2^63 lies strictly between the negative and the
        // positive big integers; doubles beyond are integers with an exact decimal text.
        guard d.magnitude >= 9223372036854775808.0 else { return isNegative ? -1 : 1 }
        let text = JSONBigInt.exactIntegerText(d.magnitude)
        if isNegative != (d < 0) { return isNegative ? -1 : 1 }
        let m = JSONBigInt.compareMagnitudes(magnitude, text)
        return isNegative ? -m : m
    }

    /// The remainder of the magnitude divided by `m` (m > 0).
    public func magnitudeRemainder(dividingBy m: UInt64) -> UInt64 {
        JSONBigInt.remainder(ofDigits: magnitude.utf8, dividingBy: m)
    }

    /// The remainder of the number written with the ASCII decimal `digits`, divided by `m` (m > 0).
    public static func remainder<Digits: Sequence>(ofDigits digits: Digits, dividingBy m: UInt64) -> UInt64 where Digits.Element == UInt8 {
        var r: UInt64 = 0
        for c in digits {
            let (hi, lo) = r.multipliedFullWidth(by: 10)
            let (sum, carry) = lo.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            r = m.dividingFullWidth((hi + (carry ? 1 : 0), sum)).remainder
        }
        return r
    }

    /// The number of trailing zero decimal digits of the magnitude.
    public var trailingDecimalZeros: Int {
        var n = 0
        for c in magnitude.utf8.reversed() {
            guard c == UInt8(ascii: "0") else { break }
            n += 1
        }
        return n
    }

    static func compareMagnitudes(_ a: some StringProtocol, _ b: some StringProtocol) -> Int {
        let (la, lb) = (a.utf8.count, b.utf8.count)
        if la != lb { return la < lb ? -1 : 1 }
        for (x, y) in zip(a.utf8, b.utf8) where x != y { return x < y ? -1 : 1 }
        return 0
    }

    /// The exact decimal text of an integral finite double (`-0.0` → `0`).
    public static func exactIntegerText(_ d: Double) -> String {
        precondition(d.isFinite && d.rounded(.towardZero) == d, "not an integral double")
        if d.magnitude < 9223372036854775808.0 { return String(Int(d)) }
        // significand × 2^k in base-10^9 limbs (least significant first).
        var limbs: [UInt32] = []
        var s = d.significandBitPattern | (1 << 52)
        while s > 0 { limbs.append(UInt32(s % 1_000_000_000)); s /= 1_000_000_000 }
        for _ in 0..<(Int(d.exponent) - 52) {
            var carry: UInt64 = 0
            for i in limbs.indices {
                let v = UInt64(limbs[i]) * 2 + carry
                limbs[i] = UInt32(v % 1_000_000_000)
                carry = v / 1_000_000_000
            }
            if carry > 0 { limbs.append(UInt32(carry)) }
        }
        var text = d < 0 ? "-" : ""
        text += String(limbs.last!)
        for limb in limbs.dropLast().reversed() {
            let part = String(limb)
            text += String(repeating: "0", count: 9 - part.count) + part
        }
        return text
    }
}

extension JSONValue {
    /// The JSON value of integer text: `.int` when it fits `Int`, `.bigInt` otherwise; `nil`
    /// when the text is not an optional `-` followed by digits.
    public static func integer(text: some StringProtocol) -> JSONValue? {
        if let i = Int(text) { return .int(i) }
        return JSONBigInt(text).map(JSONValue.bigInt)
    }

    /// Compares two numbers exactly (`.int`, `.bigInt`, `.double` in any combination): negative,
    /// zero or positive; `nil` when either is not a number.
    public static func compareNumbers(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case let (.int(x), .int(y)): return x < y ? -1 : (x == y ? 0 : 1)
        case let (.double(x), .double(y)): return x < y ? -1 : (x == y ? 0 : 1)
        case let (.int(x), .double(y)): return compareIntToDouble(x, y)
        case let (.double(x), .int(y)): return -compareIntToDouble(y, x)
        case let (.bigInt(x), .bigInt(y)): return x.compare(y)
        case let (.bigInt(x), .int(y)): return x.compare(y)
        case let (.int(x), .bigInt(y)): return -y.compare(x)
        case let (.bigInt(x), .double(y)): return x.compare(y)
        case let (.double(x), .bigInt(y)): return -y.compare(x)
        default: return nil
        }
    }

    /// Exact comparison of an `Int` with a `Double` (NaN compares as equal).
    public static func compareIntToDouble(_ a: Int, _ b: Double) -> Int {
        if b.isNaN { return 0 }
        if b >= 9223372036854775808.0 { return -1 }  // 2^63: above every Int
        if b < -9223372036854775808.0 { return 1 }
        let bf = b.rounded(.down)
        let bi = Int(bf)
        if a < bi { return -1 }
        if a > bi { return 1 }
        return bf == b ? 0 : -1
    }
}
