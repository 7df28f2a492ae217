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

    init(_ source: String) throws(RegexSyntaxError) {
        self.source = source
        regex = try ECMARegex(source)
    }

    /// Searches `s`; `tooComplex` carries a message for the validation error.
    func test(_ s: String) -> Outcome {
        do {
            return try regex.search(s) ? .match : .noMatch
        } catch {
            return .tooComplex(error.description)
        }
    }
}
