/// The search gave up: the pattern needs backtracking (it has backreferences, or counted
/// repetitions too large to expand) and this input would take more than the step budget.
struct RegexTooComplex: Error, CustomStringConvertible, Sendable {
    let budget: Int
    var description: String {
        "the regular expression is too complex to evaluate on this input (over \(budget) backtracking steps)"
    }
}

/// A backtracking matcher with ECMA-262 semantics (captures, backreferences, lookarounds in
/// both directions, repetition with per-iteration capture reset and the empty-iteration
/// check), used only for what the linear-time `RegexNFA` cannot do. Work is bounded: each
/// search may execute at most `stepBudget` instructions and keep at most `stackBudget`
/// saved states, then it throws `RegexTooComplex`. The state lives in heap arrays, never on
/// the call stack, so no input can exhaust the stack.
struct RegexBacktracker: Sendable {
    static let stepBudget = 5_000_000
    static let stackBudget = 1_000_000

    enum Op: UInt8, Sendable {
        /// `a`: scalar / set index; `back`: consume the scalar before the position.
        case char, set
        /// Try `a` first, then `b`.
        case split
        case jump, match
        /// Capture slot `a` := position.
        case save
        /// Capture slots `a ..< b` := unset (a repetition's groups, at each iteration).
        case clear
        /// Backreference to group `a`, matched backward when `back`.
        case backref
        case start, end, wordBoundary, notWordBoundary
        /// Run program `a`; `b` = 1 when negative.
        case look
        /// Registers `a` (count) := 0.
        case loopInit
        /// Repetition head: count register `a`, min `b`, max `c` (-1: none), exit `d`,
        /// `back` = lazy; the body starts at the next instruction.
        case loopHead
        /// Register `a + 1` := position (where this iteration started).
        case loopMark
        /// Repetition tail: count register `a`, min `b`, head `c`.
        case loopTail
    }

    struct Inst: Sendable {
        var op: Op
        var back = false
        var a: Int32 = 0
        var b: Int32 = 0
        var c: Int32 = 0
        var d: Int32 = 0
    }

    /// Program 0 is the pattern; the others are lookaround bodies.
    let programs: [[Inst]]
    let sets: [RegexCharSet]
    let slotCount: Int
    let registerCount: Int
    let anchoredAtStart: Bool

    init(_ node: RegexNode, groups: Int) {
        var compiler = Compiler()
        compiler.programs.append([])
        var code: [Inst] = []
        compiler.emit(node, back: false, &code)
        code.append(Inst(op: .match))
        compiler.programs[0] = code
        programs = compiler.programs
        sets = compiler.sets
        slotCount = 2 * (groups + 1)
        registerCount = compiler.registers
        anchoredAtStart = code.first?.op == .start
    }

    private struct Compiler {
        var programs: [[Inst]] = []
        var sets: [RegexCharSet] = []
        var registers = 0

        mutating func emit(_ node: RegexNode, back: Bool, _ code: inout [Inst]) {
            switch node {
            case .empty:
                break
            case .char(let c):
                code.append(Inst(op: .char, back: back, a: Int32(bitPattern: c)))
            case .set(let s):
                sets.append(s)
                code.append(Inst(op: .set, back: back, a: Int32(sets.count - 1)))
            case .seq(let items):
                // Backward (inside a lookbehind) the terms are matched right to left.
                for item in back ? items.reversed() : items { emit(item, back: back, &code) }
            case .alt(let alternatives):
                var jumps: [Int] = []
                for (k, alternative) in alternatives.enumerated() {
                    if k < alternatives.count - 1 {
                        let split = code.count
                        code.append(Inst(op: .split, a: Int32(split + 1)))
                        emit(alternative, back: back, &code)
                        jumps.append(code.count)
                        code.append(Inst(op: .jump))
                        code[split].b = Int32(code.count)
                    } else {
                        emit(alternative, back: back, &code)
                    }
                }
                for j in jumps { code[j].a = Int32(code.count) }
            case .group(let body, let index):
                let (first, second) = back ? (2 * index + 1, 2 * index) : (2 * index, 2 * index + 1)
                code.append(Inst(op: .save, a: Int32(first)))
                emit(body, back: back, &code)
                code.append(Inst(op: .save, a: Int32(second)))
            case .repetition(let body, let minimum, let maximum, let greedy, let groups):
                if maximum == 0 { return }
                let register = Int32(registers)
                registers += 2
                code.append(Inst(op: .loopInit, a: register))
                let head = code.count
                code.append(Inst(op: .loopHead, back: !greedy, a: register, b: Int32(minimum),
                                 c: maximum.map { Int32($0) } ?? -1))
                code.append(Inst(op: .loopMark, a: register))
                if !groups.isEmpty {
                    code.append(Inst(op: .clear, a: Int32(2 * groups.lowerBound), b: Int32(2 * groups.upperBound)))
                }
                emit(body, back: back, &code)
                code.append(Inst(op: .loopTail, a: register, b: Int32(minimum), c: Int32(head)))
                code[head].d = Int32(code.count)
            case .start: code.append(Inst(op: .start))
            case .end: code.append(Inst(op: .end))
            case .wordBoundary(let negated): code.append(Inst(op: negated ? .notWordBoundary : .wordBoundary))
            case .look(let body, let behind, let negative):
                let index = programs.count
                programs.append([])
                var sub: [Inst] = []
                emit(body, back: behind, &sub)
                sub.append(Inst(op: .match))
                programs[index] = sub
                code.append(Inst(op: .look, a: Int32(index), b: negative ? 1 : 0))
            case .backreference(let index):
                code.append(Inst(op: .backref, back: back, a: Int32(index)))
            }
        }
    }

    // MARK: matching

    /// `true` when the pattern matches somewhere in `input` (Unicode scalars).
    func search(_ input: [UInt32]) throws(RegexTooComplex) -> Bool {
        var run = Run(matcher: self, input: input)
        let lastStart = anchoredAtStart ? 0 : input.count
        for start in 0...lastStart {
            run.reset()
            if try run.exec(0, start) { return true }
        }
        return false
    }

    private struct Choice {
        var pc: Int32
        var pos: Int
        var log: Int
    }

    /// Undo record: capture slot `index` (or register `-index - 1`) had `old`.
    private struct Undo {
        var index: Int32
        var old: Int
    }

    private struct Run {
        let matcher: RegexBacktracker
        let input: [UInt32]
        var slots: [Int]
        var registers: [Int]
        var choices: [Choice] = []
        var undo: [Undo] = []
        var steps = 0

        init(matcher: RegexBacktracker, input: [UInt32]) {
            self.matcher = matcher
            self.input = input
            slots = [Int](repeating: -1, count: matcher.slotCount)
            registers = [Int](repeating: 0, count: matcher.registerCount)
        }

        mutating func reset() {
            for k in slots.indices { slots[k] = -1 }
            choices.removeAll(keepingCapacity: true)
            undo.removeAll(keepingCapacity: true)
        }

        mutating func setSlot(_ k: Int, _ v: Int) {
            undo.append(Undo(index: Int32(k), old: slots[k]))
            slots[k] = v
        }

        mutating func setRegister(_ k: Int, _ v: Int) {
            undo.append(Undo(index: Int32(-k - 1), old: registers[k]))
            registers[k] = v
        }

        mutating func rollback(to height: Int) {
            while undo.count > height {
                let u = undo.removeLast()
                if u.index >= 0 { slots[Int(u.index)] = u.old } else { registers[Int(-u.index - 1)] = u.old }
            }
        }

        func isWordAt(_ k: Int) -> Bool { k >= 0 && k < input.count && RegexNFA.isWordChar(input[k]) }

        /// Runs program `program` from `start`; on success the captures it set stay (and are
        /// undone by the caller's backtracking), its untried alternatives are dropped (a
        /// lookaround is atomic).
        mutating func exec(_ program: Int, _ start: Int) throws(RegexTooComplex) -> Bool {
            let code = matcher.programs[program]
            let base = choices.count
            var pc = 0
            var pos = start
            let n = input.count
            while true {
                steps += 1
                if steps > RegexBacktracker.stepBudget || choices.count + undo.count > RegexBacktracker.stackBudget {
                    throw RegexTooComplex(budget: RegexBacktracker.stepBudget)
                }
                let inst = code[pc]
                var ok = true
                switch inst.op {
                case .char, .set:
                    let k = inst.back ? pos - 1 : pos
                    if k < 0 || k >= n {
                        ok = false
                    } else {
                        let c = input[k]
                        ok = inst.op == .char ? UInt32(bitPattern: inst.a) == c : matcher.sets[Int(inst.a)].contains(c)
                    }
                    if ok {
                        pos = inst.back ? pos - 1 : pos + 1
                        pc += 1
                    }
                case .split:
                    choices.append(Choice(pc: inst.b, pos: pos, log: undo.count))
                    pc = Int(inst.a)
                case .jump:
                    pc = Int(inst.a)
                case .match:
                    choices.removeLast(choices.count - base)
                    return true
                case .save:
                    setSlot(Int(inst.a), pos)
                    pc += 1
                case .clear:
                    for k in Int(inst.a)..<Int(inst.b) where slots[k] != -1 { setSlot(k, -1) }
                    pc += 1
                case .backref:
                    let s = slots[2 * Int(inst.a)], e = slots[2 * Int(inst.a) + 1]
                    if s >= 0 && e >= s {
                        // A group that did not participate matches the empty string.
                        let length = e - s
                        let from = inst.back ? pos - length : pos
                        if from < 0 || from + length > n {
                            ok = false
                        } else {
                            var k = 0
                            while k < length && input[s + k] == input[from + k] { k += 1 }
                            ok = k == length
                        }
                        if ok { pos = inst.back ? pos - length : pos + length }
                    }
                    if ok { pc += 1 }
                case .start:
                    ok = pos == 0
                    pc += 1
                case .end:
                    ok = pos == n
                    pc += 1
                case .wordBoundary, .notWordBoundary:
                    let boundary = isWordAt(pos - 1) != isWordAt(pos)
                    ok = boundary == (inst.op == .wordBoundary)
                    pc += 1
                case .look:
                    let height = undo.count
                    let found = try exec(Int(inst.a), pos)
                    if inst.b == 1 {
                        rollback(to: height)  // a negative lookaround leaves no captures
                        ok = !found
                    } else {
                        ok = found
                    }
                    pc += 1
                case .loopInit:
                    setRegister(Int(inst.a), 0)
                    pc += 1
                case .loopHead:
                    let count = registers[Int(inst.a)]
                    if inst.c >= 0 && count >= Int(inst.c) {
                        pc = Int(inst.d)
                    } else if count < Int(inst.b) {
                        pc += 1
                    } else if inst.back {
                        // Lazy: leave first, iterate on backtracking.
                        choices.append(Choice(pc: Int32(pc + 1), pos: pos, log: undo.count))
                        pc = Int(inst.d)
                    } else {
                        choices.append(Choice(pc: inst.d, pos: pos, log: undo.count))
                        pc += 1
                    }
                case .loopMark:
                    setRegister(Int(inst.a) + 1, pos)
                    pc += 1
                case .loopTail:
                    let count = registers[Int(inst.a)]
                    // ECMA-262 RepeatMatcher: once the minimum is met, an iteration that
                    // matched the empty string fails.
                    if count >= Int(inst.b) && pos == registers[Int(inst.a) + 1] {
                        ok = false
                    } else {
                        setRegister(Int(inst.a), count + 1)
                        pc = Int(inst.c)
                    }
                }
                if ok { continue }
                // Backtrack.
                guard choices.count > base else { return false }
                let choice = choices.removeLast()
                rollback(to: choice.log)
                pc = Int(choice.pc)
                pos = choice.pos
            }
        }
    }
}
