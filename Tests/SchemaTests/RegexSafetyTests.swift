import JSON
import Testing
@testable import Schema

/// Issue 10 items 17 and 18: a schema's `pattern` must never crash or hang the host.
@Suite("Regex safety")
struct RegexSafetyTests {
    func validate(_ pattern: String, _ instance: String) throws -> ValidationResult {
        let schema = try Schema.compile(.object(["pattern": .string(pattern)]))
        return schema.validate(.string(instance))
    }

    /// Backreferences to groups quantified `{0}` (never captured) used to kill the process
    /// inside Swift's regex compiler. ECMA-262: such a backreference matches the empty string.
    @Test func zeroQuantifiedGroupBackreferencesCompile() throws {
        for p in ["(a){0}\\1", "(){0}\\1", "(?<n>a){0}\\k<n>"] {
            #expect(try validate(p, "").isValid, "\(p)")
            #expect(try validate(p, "xyz").isValid, "\(p)")
        }
        #expect(try validate("^(a){0}\\1b$", "b").isValid)
        #expect(try !validate("^(a){0}\\1b$", "ab").isValid)
    }

    /// Patterns that made Swift `Regex` backtrack exponentially now get exact answers from
    /// the linear-time engine (none of them has a backreference that needs backtracking
    /// except the second, which the budgeted backtracker answers at once).
    @Test func pathologicalPatternsAnswer() throws {
        #expect(try !validate("(a+)+\\p{Any}{0}$", String(repeating: "a", count: 20) + "!").isValid)
        #expect(try validate("^(a|a)*\\1?$", String(repeating: "a", count: 25)).isValid)
        #expect(try !validate("^(a{0,100}){0,100}$", "ab").isValid)
        #expect(try validate("^(a{0,100}){0,100}$", String(repeating: "a", count: 300)).isValid)
    }

    /// A pattern that needs backtracking (it has a backreference) and would take
    /// exponential time ends with a clear "too complex" error instead of hanging.
    @Test func backtrackingIsBounded() throws {
        let r = try validate("^(a|a)*\\1?$", String(repeating: "a", count: 40) + "b")
        #expect(!r.isValid)
        #expect(r.errors.count == 1)
        #expect(r.errors.first?.message.contains("too complex") == true, "\(r)")
        // The same for patternProperties: the key cannot be classified, so validation fails
        // with the same error rather than silently skipping the subschema.
        let s = try Schema.compile(try JSONValue.parse(#"{"patternProperties": {"^(a|a)*\\1?$": false}}"#))
        let key = String(repeating: "a", count: 40) + "b"
        let e = s.validate(.object([key: .int(1)]))
        #expect(!e.isValid)
        #expect(e.errors.first?.message.contains("too complex") == true, "\(e)")
    }

    /// Bounded work for backtracking also holds for huge counted repetitions that the
    /// linear-time engine cannot expand.
    @Test func hugeCountsAreBounded() throws {
        let r = try validate("^(a{0,1000}){0,1000}\\1$", String(repeating: "a", count: 50) + "b")
        #expect(r.errors.allSatisfy { $0.message.contains("too complex") || $0.message.contains("does not match") })
        #expect(!r.isValid)
    }

    /// Nesting is limited so that parsing and compiling cannot exhaust the stack; past the
    /// limit the schema is refused with a clear message.
    @Test func deepNestingIsRefusedNotACrash() throws {
        let ok = String(repeating: "(", count: RegexParser.maxNesting - 1) + "a" + String(repeating: ")", count: RegexParser.maxNesting - 1)
        #expect(try validate(ok, "a").isValid)
        let deep = String(repeating: "(", count: 100_000) + "a" + String(repeating: ")", count: 100_000)
        let e = #expect(throws: SchemaCompileError.self) { try Schema.compile(.object(["pattern": .string(deep)])) }
        #expect(e?.message.contains("nested more than") == true)
    }

    /// Long patterns and long inputs: no recursion on either, answers stay exact.
    @Test func longPatternsAndInputs() throws {
        let alternation = (0..<20_000).map { "w\($0)x" }.joined(separator: "|")
        #expect(try validate("^(?:\(alternation))$", "w19999x").isValid)
        #expect(try !validate("^(?:\(alternation))$", "w20000x").isValid)
        let long = String(repeating: "ab", count: 200_000)
        #expect(try validate("^(?:ab)*$", long).isValid)
        #expect(try validate("(?<=a)b(?=a)", long).isValid)
        #expect(try validate("^(a)(?:b\\1)*b$", long).isValid)
    }
}
