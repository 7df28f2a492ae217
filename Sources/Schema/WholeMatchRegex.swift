/// An ECMA-262 regular expression (Unicode mode) that must match a whole string, for callers
/// outside JSON Schema (policy `shell_args`). Same engine and guarantees as `pattern`: no
/// pattern can crash the process, and matching is linear or bounded (`matches` answers
/// `false`, never hangs, when the backtracking budget is exhausted — a fail-closed answer for
/// an allowlist).
public struct WholeMatchRegex: Sendable {
    private let regex: ECMARegex
    /// The pattern as written.
    public let source: String

    /// Compiles `source`; throws a message naming the syntax error and its offset.
    public init(_ source: String) throws(WholeMatchRegexError) {
        self.source = source
        do { regex = try ECMARegex("^(?:" + source + ")$") } catch {
            throw WholeMatchRegexError(message: "'\(source)' is not a valid regular expression (ECMA-262, u flag): \(error)")
        }
    }

    /// Whether the whole of `s` matches; `false` when the match is too complex to decide.
    public func matches(_ s: String) -> Bool {
        (try? regex.search(s)) ?? false
    }
}

/// A pattern `WholeMatchRegex` cannot compile.
public struct WholeMatchRegexError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
