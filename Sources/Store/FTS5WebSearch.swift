/// A recall query in web-search syntax, translated to an FTS5 MATCH expression that cannot fail
/// to parse, so that the SQLite store reads the same text PostgreSQL's `websearch_to_tsquery`
/// does: words (all required), `"phrases"`, `OR` between two terms, `-word` / `-"phrase"` to
/// exclude. Every term is an FTS5 string, so punctuation (`what's`, `plan?`, `(`) is only text;
/// a word ending in `*` stays a prefix search. Agents recall with natural language, and FTS5's
/// own syntax refused ordinary punctuation.
enum FTS5WebSearch {
    /// The MATCH expression, or nil when the text has no term to look for (only punctuation, or
    /// only exclusions, which FTS5 cannot express alone): such a query matches nothing, as an
    /// empty `websearch_to_tsquery` does.
    static func matchExpression(_ text: String) -> String? {
        var groups: [[String]] = []  // AND of OR-groups
        var excluded: [String] = []
        var joinNext = false  // the previous token was OR
        for token in tokens(text) {
            switch token {
            case .or:
                joinNext = !groups.isEmpty
            case .term(let term, let negated):
                if negated {
                    excluded.append(term)
                } else if joinNext, !groups.isEmpty {
                    groups[groups.count - 1].append(term)
                } else {
                    groups.append([term])
                }
                joinNext = false
            }
        }
        guard !groups.isEmpty else { return nil }
        var expression = groups.map { $0.count == 1 ? $0[0] : "(" + $0.joined(separator: " OR ") + ")" }.joined(separator: " AND ")
        for term in excluded { expression = "(\(expression)) NOT \(term)" }
        return expression
    }

    private enum Token { case or, term(String, negated: Bool) }

    /// Splits on white space outside quotes; a quote runs to the next quote or the end.
    private static func tokens(_ text: String) -> [Token] {
        var out: [Token] = []
        var chars = text[...]
        while let c = chars.first {
            if c.isWhitespace { chars.removeFirst(); continue }
            var negated = false
            if c == "-" { negated = true; chars.removeFirst() }
            if chars.first == "\"" {
                chars.removeFirst()
                let end = chars.firstIndex(of: "\"") ?? chars.endIndex
                let phrase = String(chars[..<end])
                chars = end < chars.endIndex ? chars[chars.index(after: end)...] : chars[chars.endIndex...]
                if hasWordCharacter(phrase) { out.append(.term(quoted(phrase), negated: negated)) }
                continue
            }
            let end = chars.firstIndex(where: { $0.isWhitespace || $0 == "\"" }) ?? chars.endIndex
            var word = String(chars[..<end])
            chars = chars[end...]
            if !negated && word == "OR" { out.append(.or); continue }
            if word == "AND" { continue }  // juxtaposition is AND already
            let prefix = word.hasSuffix("*")
            while word.hasSuffix("*") { word.removeLast() }
            guard hasWordCharacter(word) else { continue }
            out.append(.term(quoted(word) + (prefix ? "*" : ""), negated: negated))
        }
        return out
    }

    /// An FTS5 string (the tokenizer reads what is inside as text). Tokens are split at quotes,
    /// so none is inside; the filter keeps that true whatever the caller passes.
    private static func quoted(_ s: String) -> String { "\"" + s.filter { $0 != "\"" } + "\"" }

    /// FTS5's unicode61 tokenizer finds no token in a string without letters or digits; an
    /// empty string term is an error, so such terms are dropped.
    private static func hasWordCharacter(_ s: String) -> Bool { s.unicodeScalars.contains { $0.properties.isAlphabetic || $0.properties.numericType != nil } }
}
