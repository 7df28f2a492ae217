/// The parsed form of an ECMA-262 pattern (`u` flag, no other flags).
indirect enum RegexNode {
    case empty
    case char(UInt32)
    case set(RegexCharSet)
    case seq([RegexNode])
    case alt([RegexNode])
    /// A capturing group, numbered from 1 in the order of its `(`.
    case group(RegexNode, index: Int)
    /// `groups` are the capturing groups inside `body`, cleared at each iteration.
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool, groups: Range<Int>)
    case start, end
    case wordBoundary(negated: Bool)
    case look(RegexNode, behind: Bool, negative: Bool)
    case backreference(Int)

    var hasBackreference: Bool {
        switch self {
        case .backreference: return true
        case .empty, .char, .set, .start, .end, .wordBoundary: return false
        case .seq(let items), .alt(let items): return items.contains { $0.hasBackreference }
        case .group(let n, _), .repetition(let n, _, _, _, _), .look(let n, _, _): return n.hasBackreference
        }
    }
}

/// A pattern that ECMA-262 (with the `u` flag) rejects, with the scalar offset where the
/// problem was found.
struct RegexSyntaxError: Error, CustomStringConvertible, Sendable {
    let message: String
    let offset: Int
    var description: String { "\(message) at offset \(offset)" }
}

/// Recursive-descent parser for the ECMA-262 `Pattern` grammar in Unicode mode (`u` flag):
/// no Annex B extensions, so lone `{ } ]`, unknown escapes, `\1` beyond the group count and
/// quantified lookarounds are syntax errors, as in any ECMA-262 engine with `u`.
struct RegexParser {
    /// Deeper nesting is refused so that parsing and compiling stay within a small stack.
    static let maxNesting = 200

    private let p: [UInt32]
    private var i = 0
    private var depth = 0
    private var nextGroup = 1
    /// From the pre-scan: the number of capturing groups and their names.
    private var groupCount = 0
    private var groupNames: [String: Int] = [:]

    init(_ source: String) {
        p = source.unicodeScalars.map(\.value)
    }

    /// Parses the whole pattern; returns the tree and the number of capturing groups.
    mutating func parse() throws(RegexSyntaxError) -> (RegexNode, groups: Int) {
        try prescanGroups()
        let node = try disjunction()
        if i < p.count { throw fail("unmatched ')'") }
        return (node, groupCount)
    }

    // MARK: helpers

    private func fail(_ message: String) -> RegexSyntaxError { RegexSyntaxError(message: message, offset: i) }
    private func peek(_ k: Int = 0) -> UInt32? { i + k < p.count ? p[i + k] : nil }
    private func at(_ c: Unicode.Scalar, _ k: Int = 0) -> Bool { peek(k) == c.value }
    private static func isDigit(_ c: UInt32?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
    private static func isSyntaxCharacter(_ c: UInt32) -> Bool {
        "^$\\.*+?()[]{}|".unicodeScalars.contains { $0.value == c }
    }

    /// Counts capturing groups and collects their names before parsing, since `\N` and
    /// `\k<name>` may refer to groups that come later.
    private mutating func prescanGroups() throws(RegexSyntaxError) {
        var k = 0
        var inClass = false
        while k < p.count {
            let c = p[k]
            if c == 0x5C { k += 2; continue }  // escape
            if inClass {
                if c == 0x5D { inClass = false }
            } else if c == 0x5B {
                inClass = true
            } else if c == 0x28 {
                let isGroup: Bool
                if k + 1 < p.count && p[k + 1] == 0x3F {
                    isGroup = k + 2 < p.count && p[k + 2] == 0x3C && k + 3 < p.count && p[k + 3] != 0x3D && p[k + 3] != 0x21
                    if isGroup {
                        let save = i
                        i = k + 3
                        let name = try groupName()
                        i = save
                        if groupNames[name] != nil { throw RegexSyntaxError(message: "duplicate group name '\(name)'", offset: k) }
                        groupNames[name] = groupCount + 1
                    }
                } else {
                    isGroup = true
                }
                if isGroup { groupCount += 1 }
            }
            k += 1
        }
    }

    // MARK: grammar

    private mutating func disjunction() throws(RegexSyntaxError) -> RegexNode {
        depth += 1
        defer { depth -= 1 }
        if depth > Self.maxNesting { throw fail("pattern nested more than \(Self.maxNesting) levels deep") }
        var alternatives = [try alternative()]
        while at("|") {
            i += 1
            alternatives.append(try alternative())
        }
        return alternatives.count == 1 ? alternatives[0] : .alt(alternatives)
    }

    private mutating func alternative() throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        while i < p.count && !at("|") && !at(")") {
            items.append(try term())
        }
        switch items.count {
        case 0: return .empty
        case 1: return items[0]
        default: return .seq(items)
        }
    }

    private mutating func term() throws(RegexSyntaxError) -> RegexNode {
        if let assertion = try assertion() {
            // In Unicode mode no assertion may be quantified (Annex B allows it without `u`).
            if let c = peek(), c == 0x2A || c == 0x2B || c == 0x3F || c == 0x7B { throw fail("nothing to repeat") }
            return assertion
        }
        let firstGroup = nextGroup
        let body = try atom()
        return try quantified(body, groups: firstGroup..<nextGroup)
    }

    private mutating func assertion() throws(RegexSyntaxError) -> RegexNode? {
        switch peek() {
        case 0x5E: i += 1; return .start
        case 0x24: i += 1; return .end
        case 0x5C where at("b", 1): i += 2; return .wordBoundary(negated: false)
        case 0x5C where at("B", 1): i += 2; return .wordBoundary(negated: true)
        case 0x28 where at("?", 1):
            let behind = at("<", 2)
            let k = behind ? 3 : 2
            guard at("=", k) || at("!", k) else { return nil }
            let negative = at("!", k)
            i += k + 1
            let body = try disjunction()
            guard at(")") else { throw fail("unterminated group") }
            i += 1
            return .look(body, behind: behind, negative: negative)
        default:
            return nil
        }
    }

    private mutating func quantified(_ body: RegexNode, groups: Range<Int>) throws(RegexSyntaxError) -> RegexNode {
        var minimum = 0
        var maximum: Int?
        switch peek() {
        case 0x2A: i += 1
        case 0x2B: i += 1; minimum = 1
        case 0x3F: i += 1; maximum = 1
        case 0x7B:
            guard let (lo, hi, length) = braceQuantifier() else { throw fail("incomplete quantifier") }
            if let hi, hi < lo { throw fail("numbers out of order in {} quantifier") }
            i += length
            minimum = lo
            maximum = hi
        default:
            return body
        }
        var greedy = true
        if at("?") {
            i += 1
            greedy = false
        }
        return .repetition(body, min: minimum, max: maximum, greedy: greedy, groups: groups)
    }

    /// `{n}`, `{n,}` or `{n,m}` at i: (n, m or nil for no upper bound, length), without
    /// consuming. Numbers saturate at `Int32.max`, as large as any input can need.
    private func braceQuantifier() -> (Int, Int?, Int)? {
        var k = i + 1
        func number() -> Int? {
            let start = k
            var v = 0
            while k < p.count, Self.isDigit(p[k]) {
                v = min(v * 10 + Int(p[k] - 0x30), Int(Int32.max))
                k += 1
            }
            return k > start ? v : nil
        }
        guard let lo = number() else { return nil }
        var hi: Int? = lo
        if k < p.count, p[k] == 0x2C {
            k += 1
            hi = number()
        }
        guard k < p.count, p[k] == 0x7D else { return nil }
        return (lo, hi, k + 1 - i)
    }

    private mutating func atom() throws(RegexSyntaxError) -> RegexNode {
        let c = p[i]
        switch c {
        case 0x2E:
            i += 1
            return .set(.dot)
        case 0x28:
            return try group()
        case 0x5B:
            return .set(try characterClass())
        case 0x5C:
            i += 1
            return try atomEscape()
        case 0x2A, 0x2B, 0x3F:
            throw fail("nothing to repeat")
        case 0x7B:
            throw fail(braceQuantifier() != nil ? "nothing to repeat" : "lone '{' (escape it as \\{)")
        case 0x7D:
            throw fail("lone '}' (escape it as \\})")
        case 0x5D:
            throw fail("lone ']' (escape it as \\])")
        default:
            i += 1
            return .char(c)
        }
    }

    private mutating func group() throws(RegexSyntaxError) -> RegexNode {
        i += 1  // (
        var capture = true
        if at("?") {
            if at(":", 1) {
                i += 2
                capture = false
            } else if at("<", 1) {
                i += 2
                _ = try groupName()  // already registered by the pre-scan
            } else {
                throw fail("invalid group")
            }
        }
        let index = nextGroup
        if capture { nextGroup += 1 }
        let body = try disjunction()
        guard at(")") else { throw fail("unterminated group") }
        i += 1
        return capture ? .group(body, index: index) : body
    }

    /// A group name after `(?<` or `\k<`, through the closing `>`.
    private mutating func groupName() throws(RegexSyntaxError) -> String {
        var name = String.UnicodeScalarView()
        while true {
            guard var c = peek() else { throw fail("unterminated group name") }
            if c == 0x3E { i += 1; break }
            if c == 0x5C {
                i += 1
                guard at("u") else { throw fail("invalid group name") }
                i += 1
                c = try unicodeEscape()
            } else {
                i += 1
                // A surrogate pair written directly cannot occur: sources are Swift strings.
            }
            let ok = name.isEmpty
                ? (c == 0x24 || c == 0x5F || Self.idStart.contains(c))
                : (c == 0x24 || c == 0x200C || c == 0x200D || Self.idContinue.contains(c))
            guard ok, let scalar = Unicode.Scalar(c) else { throw fail("invalid group name") }
            name.append(scalar)
        }
        if name.isEmpty { throw fail("empty group name") }
        return String(name)
    }

    private static let idStart = UnicodeProperty.set("ID_Start") ?? RegexCharSet()
    private static let idContinue = UnicodeProperty.set("ID_Continue") ?? RegexCharSet()

    /// After a backslash outside a class.
    private mutating func atomEscape() throws(RegexSyntaxError) -> RegexNode {
        guard let c = peek() else { throw fail("\\ at end of pattern") }
        if c >= 0x31 && c <= 0x39 {
            let start = i
            var n = 0
            while Self.isDigit(peek()) {
                n = min(n * 10 + Int(p[i] - 0x30), Int(Int32.max))
                i += 1
            }
            guard n <= groupCount else { i = start; throw fail("backreference to group \(n), which does not exist") }
            return .backreference(n)
        }
        if c == 0x6B {  // \k<name>
            i += 1
            guard at("<") else { throw fail("invalid named reference") }
            i += 1
            let start = i
            let name = try groupName()
            guard let index = groupNames[name] else { i = start; throw fail("reference to undefined group '\(name)'") }
            return .backreference(index)
        }
        if let set = try classEscape() { return .set(set) }
        return .char(try characterEscape(inClass: false))
    }

    /// `\d \D \s \S \w \W \p{…} \P{…}` at i (after the backslash), or nil.
    private mutating func classEscape() throws(RegexSyntaxError) -> RegexCharSet? {
        guard let c = peek() else { return nil }
        let set: RegexCharSet
        switch c {
        case 0x64: set = .digits
        case 0x44: set = RegexCharSet.digits.inverted()
        case 0x73: set = .space
        case 0x53: set = RegexCharSet.space.inverted()
        case 0x77: set = .word
        case 0x57: set = RegexCharSet.word.inverted()
        case 0x70, 0x50:
            i += 1
            guard at("{") else { throw fail("invalid property name") }
            i += 1
            var body = String.UnicodeScalarView()
            while let d = peek(), d != 0x7D {
                // Property names and values are ASCII letters, digits and `_` around one `=`.
                guard let s = Unicode.Scalar(d), s.isASCII else { throw fail("invalid property name") }
                body.append(s)
                i += 1
            }
            guard at("}"), let property = UnicodeProperty.set(String(body)) else {
                throw fail("invalid property name '\(String(body))'")
            }
            i += 1
            return c == 0x50 ? property.inverted() : property
        default:
            return nil
        }
        i += 1
        return set
    }

    /// A CharacterEscape at i (after the backslash): control, `\c`, `\0`, hex, Unicode and
    /// identity escapes (syntax characters and `/`; also `-` inside a class).
    private mutating func characterEscape(inClass: Bool) throws(RegexSyntaxError) -> UInt32 {
        guard let c = peek() else { throw fail("\\ at end of pattern") }
        i += 1
        switch c {
        case 0x74: return 0x09  // t
        case 0x6E: return 0x0A  // n
        case 0x76: return 0x0B  // v
        case 0x66: return 0x0C  // f
        case 0x72: return 0x0D  // r
        case 0x30:
            if Self.isDigit(peek()) { throw fail("invalid decimal escape") }
            return 0
        case 0x63:
            guard let x = peek(), (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A else { throw fail("invalid \\c escape") }
            i += 1
            return x % 32
        case 0x78:
            guard let v = hex(2) else { throw fail("invalid \\x escape") }
            return v
        case 0x75:
            return try unicodeEscape()
        case 0x2F:
            return c
        case 0x2D where inClass:
            return c
        default:
            if Self.isSyntaxCharacter(c) { return c }
            i -= 1
            throw fail("invalid escape")
        }
    }

    /// After `\u`: `HHHH` (a lead surrogate followed by `\uHHHH` trail makes one code point)
    /// or `{H…}` up to 10FFFF.
    private mutating func unicodeEscape() throws(RegexSyntaxError) -> UInt32 {
        if at("{") {
            i += 1
            var v: UInt32 = 0
            var digits = 0
            while let d = peek(), let h = Self.hexValue(d) {
                v = v * 16 + h
                digits += 1
                i += 1
                if v > RegexCharSet.maxScalar { throw fail("invalid Unicode escape") }
            }
            guard digits > 0, at("}") else { throw fail("invalid Unicode escape") }
            i += 1
            return v
        }
        guard let v = hex(4) else { throw fail("invalid Unicode escape") }
        if v >= 0xD800 && v < 0xDC00 && at("\\") && at("u", 1) {
            let save = i
            i += 2
            if let trail = hex(4), trail >= 0xDC00 && trail < 0xE000 {
                return 0x10000 + ((v - 0xD800) << 10) + (trail - 0xDC00)
            }
            i = save
        }
        return v
    }

    private static func hexValue(_ d: UInt32) -> UInt32? {
        switch d {
        case 0x30...0x39: return d - 0x30
        case 0x41...0x46: return d - 0x41 + 10
        case 0x61...0x66: return d - 0x61 + 10
        default: return nil
        }
    }

    private mutating func hex(_ n: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in 0..<n {
            guard let d = peek(k), let h = Self.hexValue(d) else { return nil }
            v = v * 16 + h
        }
        i += n
        return v
    }

    // MARK: character classes

    private enum ClassAtom {
        case scalar(UInt32)
        case set(RegexCharSet)
    }

    private mutating func characterClass() throws(RegexSyntaxError) -> RegexCharSet {
        i += 1  // [
        var negated = false
        if at("^") {
            negated = true
            i += 1
        }
        var ranges: [ClosedRange<UInt32>] = []
        var sets: [RegexCharSet] = []
        while true {
            guard i < p.count else { throw fail("unterminated character class") }
            if at("]") {
                i += 1
                break
            }
            let first = try classAtom()
            if at("-"), let after = peek(1), after != 0x5D {
                i += 1
                let second = try classAtom()
                guard case .scalar(let lo) = first, case .scalar(let hi) = second else {
                    throw fail("invalid character class range")
                }
                guard lo <= hi else { throw fail("range out of order in character class") }
                ranges.append(lo...hi)
            } else {
                switch first {
                case .scalar(let c): ranges.append(c...c)
                case .set(let s): sets.append(s)
                }
            }
        }
        var set = RegexCharSet(ranges)
        for s in sets { set = set.union(s) }
        return negated ? set.inverted() : set
    }

    private mutating func classAtom() throws(RegexSyntaxError) -> ClassAtom {
        let c = p[i]
        guard c == 0x5C else {
            i += 1
            return .scalar(c)
        }
        i += 1
        guard let e = peek() else { throw fail("\\ at end of pattern") }
        if e == 0x62 {  // \b is backspace inside a class
            i += 1
            return .scalar(0x08)
        }
        if let set = try classEscape() { return .set(set) }
        return .scalar(try characterEscape(inClass: true))
    }
}
