/// A compiled ECMA-262 regular expression (`u` flag) for `pattern`, `patternProperties` and
/// the `regex` format. Searches (not anchored) as JSON Schema requires.
///
/// Every pattern is handled by the project's own engine, `ECMARegex` — never by Swift
/// `Regex`, whose syntax and semantics differ from ECMA-262 and which can trap or backtrack
/// for exponential time. Matching is linear in the input for patterns without
/// backreferences; the others run under a step budget and report `tooComplex` past it.
final class Pattern: Sendable {
    let source: String
    private let regex: ECMARegex

    /// The result of one search.
    enum Outcome: Sendable, Equatable {
        case match
        case noMatch
        /// The backtracking budget ran out: the answer is unknown.
        case tooComplex(String)
    }

    /// The pattern's DFA, when it has one, in flat tables held apart from `regex`, so that a
    /// search reaches it without copying the engine out of its enum (which retains every
    /// table it holds). `dfaOwner` keeps it alive; `dfa` lends it without retaining.
    private let dfaOwner: FlatDFA?
    private let dfa: Unmanaged<FlatDFA>?

    init(_ source: String) throws(RegexSyntaxError) {
        self.source = source
        regex = try ECMARegex(source)
        dfaOwner = regex.dfa.map(FlatDFA.init)
        dfa = dfaOwner.map { Unmanaged.passUnretained($0) }
    }

    /// Searches `s`; `tooComplex` carries a message for the validation error.
    @inline(__always)
    func test(_ s: String) -> Outcome {
        if let dfa, let found = s.utf8.withContiguousStorageIfAvailable({ bytes in
            dfa._withUnsafeGuaranteedRef { $0.search(bytes) }
        }) {
            return found ? .match : .noMatch
        }
        return slowTest(s)
    }

    @inline(never)
    private func slowTest(_ s: String) -> Outcome {
        do {
            return try regex.search(s) ? .match : .noMatch
        } catch {
            return .tooComplex(error.description)
        }
    }
}

/// A `RegexDFA`'s tables in memory of their own (read without retaining arrays), for the
/// search `Pattern.test` runs on every string it checks. Same answers as `RegexDFA.search`.
final class FlatDFA: Sendable {
    private let dfa: RegexDFA
    private let classCount: Int
    private let acceptAtStart: Bool
    nonisolated(unsafe) private let asciiClass: UnsafeMutableBufferPointer<UInt8>
    /// `RegexDFA.transitions` with each next state stored as the offset of its row (state ×
    /// `classCount`; negative entries unchanged): the search then adds a class to the entry it
    /// loaded, with no multiplication on the byte-to-byte dependency chain.
    nonisolated(unsafe) private let transitions: UnsafeMutableBufferPointer<Int32>
    nonisolated(unsafe) private let acceptAtEnd: UnsafeMutableBufferPointer<Bool>

    init(_ dfa: RegexDFA) {
        self.dfa = dfa
        classCount = dfa.classCount
        acceptAtStart = dfa.acceptNow[0]
        asciiClass = .frozen(dfa.asciiClass)
        let classes = dfa.classCount
        precondition(dfa.transitions.count <= Int(Int32.max), "DFA table too large")
        transitions = .frozen(dfa.transitions.map { $0 >= 0 ? $0 * Int32(classes) : $0 })
        acceptAtEnd = .frozen(dfa.acceptAtEnd)
    }

    deinit {
        asciiClass.deallocate()
        transitions.deallocate()
        acceptAtEnd.deallocate()
    }

    func search(_ input: UnsafeBufferPointer<UInt8>) -> Bool {
        if acceptAtStart { return true }
        let n = input.count
        var state = 0  // the offset of the current state's row
        var i = 0
        while i < n {
            let b = input[i]
            let cls: Int
            if b < 0x80 {
                cls = Int(asciiClass[Int(b)])
                i &+= 1
            } else {
                let (c, len) = RegexDFA.decode(input, i)
                cls = dfa.classOf(c)
                i &+= len
            }
            let next = transitions[state &+ cls]
            if next < 0 { return next == -2 }
            state = Int(next)
        }
        return acceptAtEnd[state / classCount]
    }
}
