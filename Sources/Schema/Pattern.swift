/// A compiled ECMA-262 regular expression for `pattern`, `patternProperties` and the `regex`
/// format. Searches (not anchored) as JSON Schema requires.
///
/// Most schema patterns are handled by `ECMARegex`, a small backtracking matcher written for
/// the ECMA-262 subset schemas use (classes, escapes, groups, alternation, greedy and lazy
/// quantifiers, anchors, lookahead); it is immutable after construction and `Sendable`.
/// Anything outside that subset (backreferences, lookbehind, named groups, `\p{…}`) falls back
/// to Swift `Regex` with ECMA-like options.
final class Pattern: @unchecked Sendable {
    // `@unchecked Sendable`: `fast` is an immutable Sendable value. `slow` holds a Swift
    // `Regex`, which is not declared Sendable; it is a value whose compiled program is built
    // once and then only read by matching. We force that one-time lazy compilation here in
    // `init` (by running a match) before the pattern can be shared, so concurrent matches
    // only read it.
    let source: String
    private let fast: ECMARegex?
    private let slow: Regex<AnyRegexOutput>?

    init(_ source: String) throws {
        self.source = source
        if let r = try? ECMARegex(source) {
            fast = r
            slow = nil
        } else {
            let r = try Regex(Pattern.translate(source))
                .matchingSemantics(.unicodeScalar)
                .asciiOnlyDigits()
                .asciiOnlyWordCharacters()
            _ = try? r.firstMatch(in: "warm up")
            slow = r
            fast = nil
        }
    }

    /// `true` when the pattern matches anywhere in `s`.
    func matches(_ s: String) -> Bool {
        if let r = fast?.search(s) { return r }  // no copy of the matcher
        guard let slow else { return false }
        return (try? slow.firstMatch(in: s)) != nil
    }

    /// Rewrites ECMA-262 syntax that Swift's regex syntax reads differently.
    static func translate(_ p: String) -> String {
        // `\cX` control escapes and `\u{…}` are read the same; `\d`, `\w` are made ASCII by
        // options. `\/` is an identity escape in both. Nothing to rewrite for the subset that
        // reaches this fallback.
        p
    }
}
