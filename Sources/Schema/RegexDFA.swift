/// A deterministic automaton built eagerly from an NFA program by subset construction.
///
/// Scalars are grouped into classes that every instruction treats alike (split points of all
/// literals and ranges); ASCII maps to its class through a table, other scalars by binary
/// search. Each DFA state is a set of NFA threads; for an unanchored search the start
/// closure is added after every step. `^` is honoured only in the initial state and `$` by a
/// per-state "accepts at end" flag.
struct RegexDFA: Sendable {
    static let maxStates = 1024
    /// Construction gives up (the NFA simulation is used) past these sizes, so that building
    /// the table never costs more than a bounded amount of work.
    static let maxProgram = 2_000
    static let maxWork = 4_000_000

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

    init?(program: [RegexNFA.Inst], sets: [RegexCharSet], anchored: Bool) {
        guard program.count <= RegexDFA.maxProgram else { return nil }
        var effort = 0
        for inst in program {
            switch inst.op {
            case .wordBoundary, .notWordBoundary, .look: return nil
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
                for r in sets[Int(inst.a)].ranges {
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
        guard sortedPoints.count * max(consuming.count, 1) <= RegexDFA.maxWork else { return nil }
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
                effort += 1
                if !seen.insert(pc).inserted { continue }
                let inst = program[pc]
                switch inst.op {
                case .char, .set: out.append(pc)
                case .match: match = true
                case .jump: stack.append(Int(inst.a))
                case .split: stack.append(Int(inst.b)); stack.append(Int(inst.a))
                case .start: if atStart { stack.append(pc + 1) }
                case .end:
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
            guard states.count < RegexDFA.maxStates else { return nil }
            let i = states.count
            if !initial { stateIndex[key] = i }
            states.append(threads)
            now.append(match)
            // Accepting at the end: follow the pending `$`s with atEnd.
            let pendingEnds = threads.filter { program[$0].op == .end }.map { $0 + 1 }
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
                for pc in states[s] where program[pc].op != .end && matches(pc, rep) { seeds.append(pc + 1) }
                seeds += restart
                if seeds.isEmpty { continue }
                let (threads, match) = closure(seeds, atStart: false, atEnd: false)
                if effort > RegexDFA.maxWork { return nil }
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
                        let (c, len) = Self.decode(input, i)
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

    /// The scalar at byte offset i of valid UTF-8, and its length.
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
}
