/// An ECMA-262 regular expression with the `u` flag (and no other flag), answering only
/// "does the pattern match somewhere in this string?" — all `pattern`, `patternProperties`
/// and the `regex` format need.
///
/// The whole ECMA-262 Unicode-mode syntax is accepted: classes, `\d \w \s \p{…} \P{…}`,
/// escapes (`\uD83D\uDE00` pairs, `\u{…}`, `\cX`, `\0`, `\xHH`), capturing and named groups,
/// backreferences (`\1`, `\k<name>`; one to a group that did not participate matches the
/// empty string), greedy and lazy quantifiers, `^ $ \b \B`, lookahead and lookbehind. What
/// ECMA-262 rejects in Unicode mode is a `RegexSyntaxError` (lone `{`, unknown escapes, `\2`
/// with one group, a quantified lookaround, …). Matching is per Unicode scalar.
///
/// Two engines, both bounded:
/// - `RegexNFA`, linear in the input (with a DFA when the pattern allows), for every pattern
///   without backreferences whose expanded program stays under `RegexNFA.maxProgramSize`;
/// - `RegexBacktracker` for the rest, which throws `RegexTooComplex` past a fixed step budget
///   instead of running for exponential time.
struct ECMARegex: Sendable {
    enum Engine: Sendable {
        case automaton(RegexNFA)
        case backtracking(RegexBacktracker)
    }

    let engine: Engine

    init(_ source: String) throws(RegexSyntaxError) {
        var parser = RegexParser(source)
        let (node, groups) = try parser.parse()
        if let nfa = RegexNFA(node) {
            engine = .automaton(nfa)
        } else {
            engine = .backtracking(RegexBacktracker(node, groups: groups))
        }
    }

    /// The precomputed DFA, when the linear engine has one (tests compare it with the NFA).
    var dfa: RegexDFA? {
        if case .automaton(let nfa) = engine { return nfa.dfa }
        return nil
    }

    /// `true` when the pattern matches anywhere in `s`.
    func search(_ s: String) throws(RegexTooComplex) -> Bool {
        switch engine {
        case .automaton(let nfa):
            if let dfa = nfa.dfa {
                // Borrow the UTF-8 bytes when the string is contiguous (native strings).
                if let r = s.utf8.withContiguousStorageIfAvailable({ dfa.search($0) }) { return r }
                var copy = s
                return copy.withUTF8 { dfa.search($0) }
            }
            return nfa.search(s.unicodeScalars.map(\.value))
        case .backtracking(let matcher):
            return try matcher.search(s.unicodeScalars.map(\.value))
        }
    }
}
