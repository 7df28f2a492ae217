/// A regular-expression matcher for the ECMA-262 subset JSON Schemas use, answering only
/// "does the pattern match somewhere in this string?" — all `pattern` needs.
///
/// The pattern is compiled to a small NFA program and run as a Thompson simulation (a set of
/// states advanced one Unicode scalar at a time), so matching is linear in the input and
/// immune to catastrophic backtracking. Supported: literals and identity escapes, `.`,
/// character classes with ranges and `\d \w \s \D \W \S`, `\t \n \v \f \r \0 \cX \xHH \uHHHH
/// \u{…}`, groups `( )` `(?: )` `(?<name> )`, alternation, `* + ? {n} {n,} {n,m}` (greedy and
/// lazy — equivalent for a yes/no search), `^ $ \b \B` and lookahead `(?= )` `(?! )`.
/// Backreferences, lookbehind and `\p{…}` throw `Unsupported`, and the caller falls back to
/// Swift `Regex`. Patterns are matched per Unicode scalar (the ECMA-262 `u` flag).
struct ECMARegex: Sendable {
    struct Unsupported: Error, CustomStringConvertible {
        let description: String
    }

    /// Instruction opcodes.
    enum Op: UInt8, Sendable {
        case char, set, split, jump, match, lineStart, lineEnd, wordBoundary, notWordBoundary, lookahead, negativeLookahead
    }

    struct Inst: Sendable {
        var op: Op
        var a: Int32
        var b: Int32
    }

    /// A set of scalars: an ASCII bitmap plus sorted ranges for the rest.
    struct CharSet: Sendable {
        var low: UInt64 = 0
        var high: UInt64 = 0
        var ranges: [ClosedRange<UInt32>] = []  // non-ASCII part
        var negated = false

        mutating func add(_ r: ClosedRange<UInt32>) {
            var lo = r.lowerBound
            while lo <= r.upperBound && lo < 128 {
                if lo < 64 { low |= 1 << UInt64(lo) } else { high |= 1 << UInt64(lo - 64) }
                lo += 1
            }
            if lo <= r.upperBound { ranges.append(lo...r.upperBound) }
        }

        mutating func add(_ other: CharSet) {
            // Only non-negated sets are merged (negated class escapes are expanded first).
            low |= other.low
            high |= other.high
            ranges += other.ranges
        }

        @inline(__always)
        func contains(_ c: UInt32) -> Bool {
            var r: Bool
            if c < 64 { r = low & (1 << UInt64(c)) != 0 }
            else if c < 128 { r = high & (1 << UInt64(c - 64)) != 0 }
            else {
                r = false
                for range in ranges where range.contains(c) { r = true; break }
            }
            return r != negated
        }

        /// The complement, expressed without `negated` (for `\D` etc. inside classes).
        func inverted() -> CharSet {
            var s = CharSet()
            s.low = ~low
            s.high = ~high
            var next: UInt32 = 128
            for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
                if r.lowerBound > next { s.ranges.append(next...(r.lowerBound - 1)) }
                next = max(next, r.upperBound &+ 1)
            }
            if next <= 0x10FFFF { s.ranges.append(next...0x10FFFF) }
            return s
        }
    }

    indirect enum Node {
        case empty
        case char(UInt32)
        case set(CharSet)
        case seq([Node])
        case alt([Node])
        case repetition(Node, min: Int, max: Int?)
        case lineStart, lineEnd, wordBoundary, notWordBoundary
        case lookahead(Node, negative: Bool)
    }

    /// Program 0 is the pattern; others are lookahead bodies.
    let programs: [[Inst]]
    let sets: [CharSet]
    /// The pattern can only match at position 0 (starts with `^` in every branch).
    let anchoredAtStart: Bool
    /// A precomputed DFA for the main program when it has no `\b`, `\B` or lookahead and
    /// stays small; matching then costs one table step per input scalar.
    let dfa: DFA?

    static let maxProgramSize = 20_000

    init(_ source: String) throws {
        var parser = RegexParser(Array(source.unicodeScalars.map(\.value)))
        let ast = try parser.parse()
        var compiler = RegexCompiler()
        let main = try compiler.compileProgram(ast)
        compiler.programs[0] = main
        programs = compiler.programs
        sets = compiler.sets
        anchoredAtStart = main.first?.op == .lineStart
        dfa = DFA(program: main, sets: compiler.sets, anchored: main.first?.op == .lineStart)
    }

    // MARK: matching

    /// `true` when the pattern matches anywhere in `s`.
    func search(_ s: String) -> Bool {
        // Borrow the bytes when the string is contiguous UTF-8 (native strings), so that no
        // copy (and no retain) of the string is made.
        if let r = s.utf8.withContiguousStorageIfAvailable({ buf in search(bytes: buf) }) { return r }
        var copy = s
        return copy.withUTF8 { search(bytes: $0) }
    }

    @inline(__always)
    func search(bytes buf: UnsafeBufferPointer<UInt8>) -> Bool {
        if let dfa { return dfa.search(buf) }
        return run(program: 0, input: buf, start: 0, anchored: anchoredAtStart)
    }

    @inline(__always)
    static func decode(_ buf: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(buf[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(buf[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 {
            return ((b0 & 0x0F) << 12 | UInt32(buf[i + 1] & 0x3F) << 6 | UInt32(buf[i + 2] & 0x3F), 3)
        }
        return ((b0 & 0x07) << 18 | UInt32(buf[i + 1] & 0x3F) << 12 | UInt32(buf[i + 2] & 0x3F) << 6 | UInt32(buf[i + 3] & 0x3F), 4)
    }

    @inline(__always)
    static func isWordChar(_ c: UInt32) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
    }

    /// The scalar before byte offset `i` (0 at the start).
    static func previousScalar(_ buf: UnsafeBufferPointer<UInt8>, _ i: Int) -> UInt32? {
        if i == 0 { return nil }
        var j = i - 1
        while j > 0 && buf[j] & 0xC0 == 0x80 { j -= 1 }
        return decode(buf, j).0
    }

    /// Thompson simulation of `programs[program]` over `input` from byte offset `start`.
    func run(program: Int, input: UnsafeBufferPointer<UInt8>, start: Int, anchored: Bool) -> Bool {
        let prog = programs[program]
        let n = prog.count
        return withUnsafeTemporaryAllocation(of: Int32.self, capacity: 5 * n + 2) { mem -> Bool in
            // Two sparse sets (dense + sparse arrays) and one work stack.
            let base = mem.baseAddress!
            var curDense = base, nextDense = base + n
            let curSparse0 = base + 2 * n, nextSparse0 = base + 3 * n
            var curSparse = curSparse0, nextSparse = nextSparse0
            let stack = base + 4 * n
            var curCount = 0, nextCount = 0
            let count = input.count

            return prog.withUnsafeBufferPointer { code -> Bool in
                // Adds pc and its epsilon closure at position `pos` to the "next" set.
                // Returns true when `match` is reachable.
                func closure(_ pc0: Int32, _ pos: Int, _ dense: UnsafeMutablePointer<Int32>, _ sparse: UnsafeMutablePointer<Int32>, _ size: inout Int) -> Bool {
                    var sp = 0
                    stack[sp] = pc0
                    sp += 1
                    while sp > 0 {
                        sp -= 1
                        let pc = Int(stack[sp])
                        let s = Int(UInt32(bitPattern: sparse[pc]))  // memory starts uninitialized
                        if s < size && dense[s] == Int32(pc) { continue }
                        sparse[pc] = Int32(size)
                        dense[size] = Int32(pc)
                        size += 1
                        let inst = code[pc]
                        switch inst.op {
                        case .char, .set:
                            break
                        case .match:
                            return true
                        case .jump:
                            stack[sp] = inst.a; sp += 1
                        case .split:
                            // Push b first so a is explored first (order is irrelevant for a
                            // yes/no answer, but this keeps the stack shallow).
                            stack[sp] = inst.b; sp += 1
                            stack[sp] = inst.a; sp += 1
                        case .lineStart:
                            if pos == 0 { stack[sp] = Int32(pc + 1); sp += 1 }
                        case .lineEnd:
                            if pos == count { stack[sp] = Int32(pc + 1); sp += 1 }
                        case .wordBoundary, .notWordBoundary:
                            let before = ECMARegex.previousScalar(input, pos).map(ECMARegex.isWordChar) ?? false
                            let after = pos < count ? ECMARegex.isWordChar(ECMARegex.decode(input, pos).0) : false
                            if (before != after) == (inst.op == .wordBoundary) { stack[sp] = Int32(pc + 1); sp += 1 }
                        case .lookahead, .negativeLookahead:
                            let r = run(program: Int(inst.a), input: input, start: pos, anchored: true)
                            if r == (inst.op == .lookahead) { stack[sp] = Int32(pc + 1); sp += 1 }
                        }
                    }
                    return false
                }

                var pos = start
                if closure(0, pos, curDense, curSparse, &curCount) { return true }
                while pos < count {
                    let (c, len) = ECMARegex.decode(input, pos)
                    let nextPos = pos + len
                    nextCount = 0
                    var i = 0
                    while i < curCount {
                        let pc = Int(curDense[i])
                        i += 1
                        let inst = code[pc]
                        let ok: Bool
                        switch inst.op {
                        case .char: ok = UInt32(bitPattern: inst.a) == c
                        case .set: ok = sets[Int(inst.a)].contains(c)
                        default: ok = false
                        }
                        if ok, closure(Int32(pc + 1), nextPos, nextDense, nextSparse, &nextCount) { return true }
                    }
                    if !anchored {
                        if closure(0, nextPos, nextDense, nextSparse, &nextCount) { return true }
                    } else if nextCount == 0 {
                        return false
                    }
                    swap(&curDense, &nextDense)
                    swap(&curSparse, &nextSparse)
                    curCount = nextCount
                    pos = nextPos
                }
                return false
            }
        }
    }
}

/// Recursive-descent parser for the ECMA-262 pattern grammar (the subset described on
/// `ECMARegex`).
struct RegexParser {
    typealias Node = ECMARegex.Node
    typealias CharSet = ECMARegex.CharSet
    let p: [UInt32]
    var i = 0

    init(_ p: [UInt32]) { self.p = p }

    func unsupported(_ what: String) -> ECMARegex.Unsupported { ECMARegex.Unsupported(description: what) }

    var atEnd: Bool { i >= p.count }
    func peek(_ k: Int = 0) -> UInt32? { i + k < p.count ? p[i + k] : nil }
    func isChar(_ c: Character, _ k: Int = 0) -> Bool { peek(k) == c.unicodeScalars.first!.value }

    mutating func parse() throws -> Node {
        let n = try disjunction()
        if !atEnd { throw unsupported("unbalanced ')'") }
        return n
    }

    mutating func disjunction() throws -> Node {
        var alts = [try alternative()]
        while isChar("|") {
            i += 1
            alts.append(try alternative())
        }
        return alts.count == 1 ? alts[0] : .alt(alts)
    }

    mutating func alternative() throws -> Node {
        var items: [Node] = []
        while !atEnd && !isChar("|") && !isChar(")") {
            items.append(try term())
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .seq(items)
    }

    mutating func term() throws -> Node {
        let c = p[i]
        // Assertions.
        switch c {
        case 0x5E: i += 1; return .lineStart  // ^
        case 0x24: i += 1; return .lineEnd    // $
        case 0x5C where isChar("b", 1): i += 2; return .wordBoundary
        case 0x5C where isChar("B", 1): i += 2; return .notWordBoundary
        case 0x28 where isChar("?", 1) && (isChar("=", 2) || isChar("!", 2)):
            let negative = isChar("!", 2)
            i += 3
            let body = try disjunction()
            guard isChar(")") else { throw unsupported("unterminated lookahead") }
            i += 1
            // ECMA-262 (Annex B) allows quantifiers on lookahead; they are pointless — skip one.
            return .lookahead(body, negative: negative)
        default: break
        }
        let atom = try self.atom()
        return try quantified(atom)
    }

    mutating func quantified(_ atom: Node) throws -> Node {
        guard let c = peek() else { return atom }
        var minR = 0
        var maxR: Int? = nil
        switch c {
        case 0x2A: i += 1; minR = 0; maxR = nil           // *
        case 0x2B: i += 1; minR = 1; maxR = nil           // +
        case 0x3F: i += 1; minR = 0; maxR = 1             // ?
        case 0x7B:                                        // {
            guard let (a, b, len) = braceQuantifier() else { return atom }  // literal '{'
            i += len
            minR = a
            maxR = b
            if let b, b < a { throw unsupported("quantifier range out of order") }
        default:
            return atom
        }
        if isChar("?") { i += 1 }  // lazy: same answer for a yes/no search
        if isChar("*") || isChar("+") || isChar("?") || (isChar("{") && braceQuantifier() != nil) {
            throw unsupported("nothing to repeat")
        }
        switch atom {
        case .lineStart, .lineEnd, .wordBoundary, .notWordBoundary: throw unsupported("quantified assertion")
        default: break
        }
        return .repetition(atom, min: minR, max: maxR)
    }

    /// Parses `{n}`, `{n,}`, `{n,m}` at i; returns (min, max, length) or nil if not a quantifier.
    func braceQuantifier() -> (Int, Int?, Int)? {
        var k = i + 1
        func number() -> Int? {
            let s = k
            var v = 0
            while k < p.count, p[k] >= 0x30, p[k] <= 0x39 {
                v = min(v * 10 + Int(p[k] - 0x30), 1_000_000)
                k += 1
            }
            return k > s ? v : nil
        }
        guard let a = number() else { return nil }
        var b: Int? = a
        if k < p.count, p[k] == 0x2C {
            k += 1
            b = number()
        }
        guard k < p.count, p[k] == 0x7D else { return nil }
        return (a, b, k + 1 - i)
    }

    mutating func atom() throws -> Node {
        let c = p[i]
        switch c {
        case 0x2E:  // .
            i += 1
            var s = CharSet()
            s.add(0x0A...0x0A); s.add(0x0D...0x0D); s.add(0x2028...0x2029)
            s.negated = true
            return .set(s)
        case 0x28:  // (
            i += 1
            if isChar("?") {
                if isChar(":", 1) {
                    i += 2
                } else if isChar("<", 1) && !isChar("=", 2) && !isChar("!", 2) {
                    // Named group: skip the name.
                    i += 2
                    while !atEnd && !isChar(">") { i += 1 }
                    guard !atEnd else { throw unsupported("unterminated group name") }
                    i += 1
                } else {
                    throw unsupported("lookbehind or unknown group")
                }
            }
            let inner = try disjunction()
            guard isChar(")") else { throw unsupported("unterminated group") }
            i += 1
            return inner
        case 0x5B:  // [
            return .set(try characterClass())
        case 0x5C:  // backslash
            i += 1
            guard !atEnd else { throw unsupported("trailing backslash") }
            if let set = try classEscape() { return .set(set) }
            return .char(try characterEscape())
        case 0x2A, 0x2B, 0x3F:  // * + ?
            throw unsupported("nothing to repeat")
        case 0x7B:
            if braceQuantifier() != nil { throw unsupported("nothing to repeat") }
            i += 1
            return .char(c)
        case 0x29:
            throw unsupported("unbalanced ')'")
        default:
            i += 1
            return .char(c)
        }
    }

    /// `\d \D \w \W \s \S` at i (after the backslash); advances and returns the set.
    mutating func classEscape() throws -> CharSet? {
        guard let c = peek() else { return nil }
        var s = CharSet()
        switch c {
        case 0x64, 0x44: s.add(0x30...0x39)                                              // d D
        case 0x77, 0x57: s.add(0x30...0x39); s.add(0x41...0x5A); s.add(0x61...0x7A); s.add(0x5F...0x5F)  // w W
        case 0x73, 0x53:                                                                // s S
            for r: ClosedRange<UInt32> in [0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x1680...0x1680, 0x2000...0x200A,
                                           0x2028...0x2029, 0x202F...0x202F, 0x205F...0x205F, 0x3000...0x3000, 0xFEFF...0xFEFF] {
                s.add(r)
            }
        case 0x70, 0x50:                                                                // p P
            throw unsupported("Unicode property escapes")
        default:
            return nil
        }
        i += 1
        if c == 0x44 || c == 0x57 || c == 0x53 { s = s.inverted() }
        return s
    }

    /// A character escape at i (after the backslash); advances and returns the scalar.
    mutating func characterEscape() throws -> UInt32 {
        let c = p[i]
        i += 1
        switch c {
        case 0x74: return 0x09  // t
        case 0x6E: return 0x0A  // n
        case 0x76: return 0x0B  // v
        case 0x66: return 0x0C  // f
        case 0x72: return 0x0D  // r
        case 0x30:              // 0
            if let d = peek(), d >= 0x30 && d <= 0x39 { throw unsupported("octal escape") }
            return 0
        case 0x63:              // cX
            guard let x = peek(), (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A else { throw unsupported("bad \\c escape") }
            i += 1
            return x % 32
        case 0x78:              // xHH
            guard let v = hex(2) else { throw unsupported("bad \\x escape") }
            return v
        case 0x75:              // uHHHH or u{…}
            if isChar("{") {
                i += 1
                var v: UInt32 = 0
                var digits = 0
                while let d = peek(), let h = hexValue(d) {
                    v = v * 16 + h
                    digits += 1
                    i += 1
                    if v > 0x10FFFF { throw unsupported("bad \\u{} escape") }
                }
                guard digits > 0, isChar("}") else { throw unsupported("bad \\u{} escape") }
                i += 1
                return v
            }
            guard var v = hex(4) else { throw unsupported("bad \\u escape") }
            if v >= 0xD800 && v < 0xDC00, isChar("\\"), isChar("u", 1) {
                let save = i
                i += 2
                if let lo = hex(4), lo >= 0xDC00 && lo < 0xE000 {
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    i = save
                }
            }
            return v
        case 0x31...0x39, 0x6B:  // backreference \1-\9, \k<name>
            throw unsupported("backreferences")
        default:
            // Identity escape: syntax characters and other non-alphanumerics.
            let isAlnum = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A)
            if isAlnum { throw unsupported("unknown escape \\\(Character(Unicode.Scalar(c)!))") }
            return c
        }
    }

    func hexValue(_ d: UInt32) -> UInt32? {
        switch d {
        case 0x30...0x39: return d - 0x30
        case 0x41...0x46: return d - 0x41 + 10
        case 0x61...0x66: return d - 0x61 + 10
        default: return nil
        }
    }

    mutating func hex(_ n: Int) -> UInt32? {
        var v: UInt32 = 0
        for k in 0..<n {
            guard let d = peek(k), let h = hexValue(d) else { return nil }
            v = v * 16 + h
        }
        i += n
        return v
    }

    mutating func characterClass() throws -> CharSet {
        i += 1  // [
        var set = CharSet()
        if isChar("^") {
            set.negated = true
            i += 1
        }
        while true {
            guard !atEnd else { throw unsupported("unterminated character class") }
            if isChar("]") { i += 1; break }
            // One class atom (maybe a set escape).
            var lo: UInt32
            if isChar("\\") {
                i += 1
                guard !atEnd else { throw unsupported("trailing backslash") }
                if let s = try classEscape() {
                    set.add(s)
                    if isChar("-") && !isChar("]", 1) { throw unsupported("range with a class escape") }
                    continue
                }
                if isChar("b") { i += 1; lo = 0x08 } else if isChar("-") { i += 1; lo = 0x2D } else { lo = try characterEscape() }
            } else {
                lo = p[i]
                i += 1
            }
            if isChar("-") && !isChar("]", 1) && peek(1) != nil {
                i += 1
                var hi: UInt32
                if isChar("\\") {
                    i += 1
                    guard !atEnd else { throw unsupported("trailing backslash") }
                    if (try classEscape()) != nil { throw unsupported("range with a class escape") }
                    if isChar("b") { i += 1; hi = 0x08 } else if isChar("-") { i += 1; hi = 0x2D } else { hi = try characterEscape() }
                } else {
                    hi = p[i]
                    i += 1
                }
                guard lo <= hi else { throw unsupported("character class range out of order") }
                set.add(lo...hi)
            } else {
                set.add(lo...lo)
            }
        }
        return set
    }
}

/// Compiles the parsed pattern to NFA programs.
struct RegexCompiler {
    typealias Inst = ECMARegex.Inst
    var programs: [[Inst]] = [[]]
    var sets: [ECMARegex.CharSet] = []

    mutating func compileProgram(_ n: ECMARegex.Node) throws -> [Inst] {
        var code: [Inst] = []
        try emit(n, &code)
        code.append(Inst(op: .match, a: 0, b: 0))
        return code
    }

    mutating func emit(_ n: ECMARegex.Node, _ code: inout [Inst]) throws {
        if code.count > ECMARegex.maxProgramSize { throw ECMARegex.Unsupported(description: "pattern too large") }
        switch n {
        case .empty:
            break
        case .char(let c):
            code.append(Inst(op: .char, a: Int32(bitPattern: c), b: 0))
        case .set(let s):
            sets.append(s)
            code.append(Inst(op: .set, a: Int32(sets.count - 1), b: 0))
        case .seq(let items):
            for it in items { try emit(it, &code) }
        case .alt(let alts):
            // split L1, next; L1: a; jmp end; next: split L2, next2; ...
            var jumps: [Int] = []
            for (k, alt) in alts.enumerated() {
                if k < alts.count - 1 {
                    let split = code.count
                    code.append(Inst(op: .split, a: Int32(split + 1), b: 0))
                    try emit(alt, &code)
                    jumps.append(code.count)
                    code.append(Inst(op: .jump, a: 0, b: 0))
                    code[split].b = Int32(code.count)
                } else {
                    try emit(alt, &code)
                }
            }
            for j in jumps { code[j].a = Int32(code.count) }
        case .repetition(let body, let minR, let maxR):
            for _ in 0..<minR { try emit(body, &code) }
            if let maxR {
                // Nested optionals: (?:x(?:x(?:x)?)?)? — keeps each closure small.
                var splits: [Int] = []
                for _ in 0..<(maxR - minR) {
                    splits.append(code.count)
                    code.append(Inst(op: .split, a: Int32(code.count + 1), b: 0))
                    try emit(body, &code)
                }
                for s in splits { code[s].b = Int32(code.count) }
            } else {
                // L: split body, end; body; jmp L
                let l = code.count
                code.append(Inst(op: .split, a: Int32(l + 1), b: 0))
                try emit(body, &code)
                code.append(Inst(op: .jump, a: Int32(l), b: 0))
                code[l].b = Int32(code.count)
            }
        case .lineStart: code.append(Inst(op: .lineStart, a: 0, b: 0))
        case .lineEnd: code.append(Inst(op: .lineEnd, a: 0, b: 0))
        case .wordBoundary: code.append(Inst(op: .wordBoundary, a: 0, b: 0))
        case .notWordBoundary: code.append(Inst(op: .notWordBoundary, a: 0, b: 0))
        case .lookahead(let body, let negative):
            let index = programs.count
            programs.append([])
            programs[index] = try compileProgram(body)
            code.append(Inst(op: negative ? .negativeLookahead : .lookahead, a: Int32(index), b: 0))
        }
    }
}

/// A deterministic automaton built eagerly from an NFA program by subset construction.
///
/// Scalars are grouped into classes that every instruction treats alike (split points of all
/// literals and ranges); ASCII maps to its class through a table, other scalars by binary
/// search. Each DFA state is a set of NFA threads; for an unanchored search the start
/// closure is added after every step. `^` is honoured only in the initial state and `$` by a
/// per-state "accepts at end" flag.
struct DFA: Sendable {
    static let maxStates = 1024

    let classCount: Int
    /// Class of each ASCII scalar.
    let asciiClass: [UInt8]
    /// Sorted split points above 127: scalar c is in class `nonASCIIClass[k]` where k is the
    /// number of split points <= c.
    let splits: [UInt32]
    let splitClass: [UInt8]
    /// transitions[state * classCount + class]; -1 = dead, -2 = match (search succeeds).
    let transitions: [Int32]
    let acceptNow: [Bool]
    let acceptAtEnd: [Bool]
    let anchored: Bool

    init?(program: [ECMARegex.Inst], sets: [ECMARegex.CharSet], anchored: Bool) {
        for inst in program {
            switch inst.op {
            case .wordBoundary, .notWordBoundary, .lookahead, .negativeLookahead: return nil
            default: break
            }
        }
        // 1. Alphabet classes from split points.
        var points: Set<UInt32> = [0, 128]
        for inst in program {
            switch inst.op {
            case .char:
                let c = UInt32(bitPattern: inst.a)
                points.insert(c)
                points.insert(c + 1)
            case .set:
                let set = sets[Int(inst.a)]
                var prev = set.contains(0) != set.negated ? true : false
                for c in UInt32(1)..<128 {
                    let cur = set.contains(c) != set.negated
                    if cur != prev { points.insert(c) }
                    prev = cur
                }
                for r in set.ranges {
                    points.insert(r.lowerBound)
                    if r.upperBound < 0x10FFFF { points.insert(r.upperBound + 1) }
                }
            default: break
            }
        }
        let sortedPoints = points.filter { $0 <= 0x10FFFF }.sorted()
        // Each interval [sortedPoints[k], sortedPoints[k+1]) is one candidate class; merge
        // intervals with identical behaviour.
        var representatives: [UInt32] = []
        var intervalClass: [Int] = []
        var signatureToClass: [[Bool]: Int] = [:]
        let consuming = program.indices.filter { program[$0].op == .char || program[$0].op == .set }
        func matches(_ pc: Int, _ c: UInt32) -> Bool {
            let inst = program[pc]
            if inst.op == .char { return UInt32(bitPattern: inst.a) == c }
            return sets[Int(inst.a)].contains(c)
        }
        for p in sortedPoints {
            let sig = consuming.map { matches($0, p) }
            if let k = signatureToClass[sig] {
                intervalClass.append(k)
            } else {
                signatureToClass[sig] = representatives.count
                intervalClass.append(representatives.count)
                representatives.append(p)
            }
        }
        guard representatives.count < 255 else { return nil }
        classCount = representatives.count
        var ascii = [UInt8](repeating: 0, count: 128)
        var k = 0
        for c in 0..<128 {
            while k + 1 < sortedPoints.count && sortedPoints[k + 1] <= UInt32(c) { k += 1 }
            ascii[c] = UInt8(intervalClass[k])
        }
        asciiClass = ascii
        var sp: [UInt32] = []
        var sc: [UInt8] = []
        for (i, p) in sortedPoints.enumerated() where p >= 128 {
            sp.append(p)
            sc.append(UInt8(intervalClass[i]))
        }
        splits = sp
        splitClass = sc
        self.anchored = anchored

        // 2. Subset construction.
        func closure(_ seeds: [Int], atStart: Bool, atEnd: Bool) -> (threads: [Int], match: Bool) {
            var seen = Set<Int>()
            var stack = seeds
            var out: [Int] = []
            var match = false
            while let pc = stack.popLast() {
                if !seen.insert(pc).inserted { continue }
                let inst = program[pc]
                switch inst.op {
                case .char, .set: out.append(pc)
                case .match: match = true
                case .jump: stack.append(Int(inst.a))
                case .split: stack.append(Int(inst.b)); stack.append(Int(inst.a))
                case .lineStart: if atStart { stack.append(pc + 1) }
                case .lineEnd:
                    if atEnd { stack.append(pc + 1) } else { out.append(pc) }  // pending `$`
                default: return ([], false)
                }
            }
            return (out.sorted(), match)
        }
        let restart = anchored ? [] : closure([0], atStart: false, atEnd: false).threads
        var stateIndex: [[Int]: Int] = [:]
        var states: [[Int]] = []
        var trans: [Int32] = []
        var now: [Bool] = []
        var end: [Bool] = []
        func addState(_ threads: [Int], match: Bool, initial: Bool) -> Int? {
            let key = match ? threads + [-1] : threads  // accepting states are distinct
            if let i = stateIndex[key], !initial { return i }
            guard states.count < DFA.maxStates else { return nil }
            let i = states.count
            if !initial { stateIndex[key] = i }
            states.append(threads)
            now.append(match)
            // Accepting at the end: follow the pending `$`s with atEnd.
            let pendingEnds = threads.filter { program[$0].op == .lineEnd }.map { $0 + 1 }
            end.append(match || closure(pendingEnds, atStart: initial, atEnd: true).match)
            trans.append(contentsOf: [Int32](repeating: -1, count: representatives.count))
            return i
        }
        // The initial state also honours `^` (and, for empty input, `$` right after it).
        let initialClosure = closure([0], atStart: true, atEnd: false)
        var initialEnd = initialClosure
        initialEnd.match = initialEnd.match || closure([0], atStart: true, atEnd: true).match
        guard addState(initialClosure.threads, match: initialClosure.match, initial: true) != nil else { return nil }
        end[0] = initialEnd.match
        var work = [0]
        while let s = work.popLast() {
            if now[s] { continue }  // accepting: search stops here
            for (cls, rep) in representatives.enumerated() {
                var seeds: [Int] = []
                for pc in states[s] where program[pc].op != .lineEnd && matches(pc, rep) { seeds.append(pc + 1) }
                seeds += restart
                if seeds.isEmpty { continue }
                let (threads, match) = closure(seeds, atStart: false, atEnd: false)
                if threads.isEmpty && !match { continue }
                let before = states.count
                guard let t = addState(threads, match: match, initial: false) else { return nil }
                trans[s * representatives.count + cls] = Int32(t)
                if t == before { work.append(t) }
            }
        }
        // Entering an accepting state ends the search: encode that in the table.
        for k in trans.indices where trans[k] >= 0 && now[Int(trans[k])] { trans[k] = -2 }
        transitions = trans
        acceptNow = now
        acceptAtEnd = end
    }

    @inline(__always)
    func classOf(_ c: UInt32) -> Int {
        if c < 128 { return Int(asciiClass[Int(c)]) }
        // Number of split points <= c, minus one, indexes splitClass.
        var lo = 0, hi = splits.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if splits[mid] <= c { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? Int(asciiClass[127]) : Int(splitClass[lo - 1])
    }

    func search(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        if acceptNow[0] { return true }
        let n = input.count
        let classes = classCount
        return transitions.withUnsafeBufferPointer { t in
            asciiClass.withUnsafeBufferPointer { ac in
                var state = 0
                var i = 0
                while i < n {
                    let b = input[i]
                    let cls: Int
                    if b < 0x80 {
                        cls = Int(ac[Int(b)])
                        i &+= 1
                    } else {
                        let (c, len) = ECMARegex.decode(input, i)
                        cls = classOf(c)
                        i &+= len
                    }
                    let next = t[state &* classes &+ cls]
                    if next < 0 { return next == -2 }
                    state = Int(next)
                }
                return acceptAtEnd[state]
            }
        }
    }
}
