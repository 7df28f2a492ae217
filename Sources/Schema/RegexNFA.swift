/// Linear-time matching for patterns without backreferences: a Thompson NFA run as a set of
/// states advanced one scalar at a time (a Pike VM without captures, which a yes/no search
/// does not need).
///
/// Lookarounds are assertions about a position. Each one is precomputed for every position of
/// the input by a single sweep in the opposite direction (a lookahead's body, reversed, swept
/// from the end; a lookbehind's body swept from the start), innermost first, so the whole
/// search stays O(input × pattern).
struct RegexNFA: Sendable {
    enum Op: UInt8, Sendable {
        case char, set, split, jump, match, start, end, wordBoundary, notWordBoundary
        /// `a` = lookaround index; `b` = 1 when negative.
        case look
    }

    struct Inst: Sendable {
        var op: Op
        var a: Int32
        var b: Int32
    }

    struct Lookaround: Sendable {
        let program: [Inst]
        /// Direction of the precomputing sweep: a lookbehind's body is swept forward.
        let forward: Bool
    }

    /// Instruction limit for all programs together: counted repetitions are expanded, so
    /// `(a{0,1000}){0,1000}` would be a million instructions; such patterns go to the
    /// backtracking engine, whose repetitions are counters.
    static let maxProgramSize = 50_000

    let main: [Inst]
    /// Innermost first: a lookaround's body refers only to lookarounds before it.
    let lookarounds: [Lookaround]
    let sets: [RegexCharSet]
    let anchoredAtStart: Bool
    /// A precomputed DFA for `main` when it has no `\b`, `\B` or lookaround and stays small.
    let dfa: RegexDFA?

    /// Nil when the pattern has backreferences or is too large once expanded.
    init?(_ node: RegexNode) {
        guard !node.hasBackreference else { return nil }
        var compiler = Compiler()
        guard let main = compiler.program(node, reversed: false) else { return nil }
        self.main = main
        lookarounds = compiler.lookarounds
        sets = compiler.sets
        anchoredAtStart = main.first?.op == .start
        dfa = lookarounds.isEmpty ? RegexDFA(program: main, sets: sets, anchored: anchoredAtStart) : nil
    }

    private struct Compiler {
        var lookarounds: [Lookaround] = []
        var sets: [RegexCharSet] = []
        var size = 0

        mutating func program(_ node: RegexNode, reversed: Bool) -> [Inst]? {
            var code: [Inst] = []
            guard emit(node, reversed: reversed, &code) else { return nil }
            code.append(Inst(op: .match, a: 0, b: 0))
            size += code.count
            return size <= RegexNFA.maxProgramSize ? code : nil
        }

        /// Appends `node`; `reversed` matches it right to left (sequences in reverse order).
        mutating func emit(_ node: RegexNode, reversed: Bool, _ code: inout [Inst]) -> Bool {
            if size + code.count > RegexNFA.maxProgramSize { return false }
            switch node {
            case .empty:
                return true
            case .char(let c):
                code.append(Inst(op: .char, a: Int32(bitPattern: c), b: 0))
            case .set(let s):
                sets.append(s)
                code.append(Inst(op: .set, a: Int32(sets.count - 1), b: 0))
            case .seq(let items):
                for item in reversed ? items.reversed() : items {
                    guard emit(item, reversed: reversed, &code) else { return false }
                }
            case .alt(let alternatives):
                // split L1, next; L1: a; jmp end; next: split L2, next2; …
                var jumps: [Int] = []
                for (k, alternative) in alternatives.enumerated() {
                    if k < alternatives.count - 1 {
                        let split = code.count
                        code.append(Inst(op: .split, a: Int32(split + 1), b: 0))
                        guard emit(alternative, reversed: reversed, &code) else { return false }
                        jumps.append(code.count)
                        code.append(Inst(op: .jump, a: 0, b: 0))
                        code[split].b = Int32(code.count)
                    } else {
                        guard emit(alternative, reversed: reversed, &code) else { return false }
                    }
                }
                for j in jumps { code[j].a = Int32(code.count) }
            case .group(let body, _):
                return emit(body, reversed: reversed, &code)
            case .repetition(let body, let minimum, let maximum, _, _):
                return emitRepetition(body, minimum, maximum, reversed: reversed, &code)
            case .start: code.append(Inst(op: .start, a: 0, b: 0))
            case .end: code.append(Inst(op: .end, a: 0, b: 0))
            case .wordBoundary(let negated): code.append(Inst(op: negated ? .notWordBoundary : .wordBoundary, a: 0, b: 0))
            case .look(let body, let behind, let negative):
                // A lookahead body is swept backward from the end, so it is compiled reversed.
                guard let program = program(body, reversed: !behind) else { return false }
                lookarounds.append(Lookaround(program: program, forward: behind))
                code.append(Inst(op: .look, a: Int32(lookarounds.count - 1), b: negative ? 1 : 0))
            case .backreference:
                return false
            }
            return true
        }

        mutating func emitRepetition(_ body: RegexNode, _ minimum: Int, _ maximum: Int?, reversed: Bool,
                                     _ code: inout [Inst]) -> Bool {
            // Greedy and lazy are the same for a yes/no search. The expansion is bounded by
            // maxProgramSize, checked before each copy.
            for _ in 0..<minimum {
                guard emit(body, reversed: reversed, &code) else { return false }
            }
            if let maximum {
                // Nested optionals (?:x(?:x(?:x)?)?)? keep each closure small.
                var splits: [Int] = []
                for _ in 0..<(maximum - minimum) {
                    splits.append(code.count)
                    code.append(Inst(op: .split, a: Int32(code.count + 1), b: 0))
                    guard emit(body, reversed: reversed, &code) else { return false }
                }
                for s in splits { code[s].b = Int32(code.count) }
            } else {
                // L: split body, end; body; jmp L
                let loop = code.count
                code.append(Inst(op: .split, a: Int32(loop + 1), b: 0))
                guard emit(body, reversed: reversed, &code) else { return false }
                code.append(Inst(op: .jump, a: Int32(loop), b: 0))
                code[loop].b = Int32(code.count)
            }
            return true
        }
    }

    // MARK: matching

    /// `true` when the pattern matches somewhere in `input` (Unicode scalars).
    func search(_ input: [UInt32]) -> Bool {
        var results: [[Bool]] = []
        results.reserveCapacity(lookarounds.count)
        for look in lookarounds {
            results.append(sweep(look.program, input, forward: look.forward, lookResults: results, stopAtMatch: false).matchedAt)
        }
        return sweep(main, input, forward: true, lookResults: results, stopAtMatch: true, anchored: anchoredAtStart).found
    }

    static func isWordChar(_ c: UInt32) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
    }

    /// Runs `code` over `input` in one direction, starting a thread at every position (at the
    /// first only when `anchored`). With `stopAtMatch` it returns as soon as `match` is
    /// reached; otherwise it records, for each position, whether a thread started at or
    /// before it (in sweep order) reaches `match` there.
    private func sweep(_ code: [Inst], _ input: [UInt32], forward: Bool, lookResults: [[Bool]], stopAtMatch: Bool,
                       anchored: Bool = false) -> (found: Bool, matchedAt: [Bool]) {
        let n = code.count
        let count = input.count
        var matchedAt = stopAtMatch ? [] : [Bool](repeating: false, count: count + 1)
        var current = SparseSet(capacity: n), next = SparseSet(capacity: n)
        var stack: [Int32] = []
        stack.reserveCapacity(n)

        // Adds pc's epsilon closure at `pos` to `set`; true when it reaches `match`.
        func closure(_ pc0: Int32, _ pos: Int, _ set: inout SparseSet) -> Bool {
            var reached = false
            stack.append(pc0)
            while let pcValue = stack.popLast() {
                let pc = Int(pcValue)
                if !set.insert(pc) { continue }
                let inst = code[pc]
                switch inst.op {
                case .char, .set: break
                case .match: reached = true
                case .jump: stack.append(inst.a)
                case .split: stack.append(inst.b); stack.append(inst.a)
                case .start: if pos == 0 { stack.append(Int32(pc + 1)) }
                case .end: if pos == count { stack.append(Int32(pc + 1)) }
                case .wordBoundary, .notWordBoundary:
                    let before = pos > 0 && Self.isWordChar(input[pos - 1])
                    let after = pos < count && Self.isWordChar(input[pos])
                    if (before != after) == (inst.op == .wordBoundary) { stack.append(Int32(pc + 1)) }
                case .look:
                    if lookResults[Int(inst.a)][pos] == (inst.b == 0) { stack.append(Int32(pc + 1)) }
                }
            }
            return reached
        }

        var pos = forward ? 0 : count
        let last = forward ? count : 0
        var matched = closure(0, pos, &current)
        while true {
            if matched {
                if stopAtMatch { return (true, []) }
                matchedAt[pos] = true
            }
            if pos == last || (anchored && current.count == 0) { break }
            let c = forward ? input[pos] : input[pos - 1]
            let nextPos = forward ? pos + 1 : pos - 1
            next.clear()
            matched = false
            for k in 0..<current.count {
                let pc = current.dense[k]
                let inst = code[pc]
                let ok: Bool
                switch inst.op {
                case .char: ok = UInt32(bitPattern: inst.a) == c
                case .set: ok = sets[Int(inst.a)].contains(c)
                default: ok = false
                }
                if ok && closure(Int32(pc + 1), nextPos, &next) { matched = true }
            }
            if !anchored && closure(0, nextPos, &next) { matched = true }
            swap(&current, &next)
            pos = nextPos
        }
        return (false, matchedAt)
    }
}

/// A set of small integers with O(1) insert and clear (dense + sparse arrays).
struct SparseSet {
    private(set) var dense: [Int]
    private var sparse: [Int]
    private(set) var count = 0

    init(capacity: Int) {
        dense = [Int](repeating: 0, count: capacity)
        sparse = [Int](repeating: 0, count: capacity)
    }

    /// False when already present.
    mutating func insert(_ v: Int) -> Bool {
        let s = sparse[v]
        if s < count && dense[s] == v { return false }
        sparse[v] = count
        dense[count] = v
        count += 1
        return true
    }

    mutating func clear() { count = 0 }
}
