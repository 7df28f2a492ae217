import JSON
import Testing
@testable import Schema

@Suite("Errors and locations")
struct ErrorReportingTests {
    let schema: CompiledSchema

    init() throws {
        schema = try Schema.compile(try JSONValue.parse(#"""
        {
          "$id": "https://example.com/envelope",
          "type": "object",
          "required": ["id", "tool", "input"],
          "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9-]{8,}$"},
            "tool": {"$ref": "#/$defs/toolName"},
            "priority": {"enum": ["low", "normal", "high"]},
            "input": {"type": "object", "additionalProperties": false,
                      "properties": {"n": {"type": "integer", "minimum": 1}}},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "uniqueItems": true}
          },
          "additionalProperties": false,
          "$defs": {"toolName": {"type": "string", "pattern": "^[a-z]+\\.[a-z_]+$"}}
        }
        """#))
    }

    func errors(_ text: String) throws -> [ValidationError] {
        schema.validate(try JSONValue.parse(text)).errors
    }

    @Test func validInstance() throws {
        let r = schema.validate(try JSONValue.parse(#"{"id":"abcd-1234","tool":"http.request","input":{"n":2},"tags":["a","b"]}"#))
        #expect(r.isValid)
        #expect(r.errors.isEmpty)
        #expect(r.description == "valid")
    }

    @Test func missingRequired() throws {
        let e = try errors(#"{"id":"abcd-1234","tool":"http.request"}"#)
        #expect(e.count == 1)
        #expect(e[0].instanceLocation == "")
        #expect(e[0].keywordLocation == "/required")
        #expect(e[0].keyword == "required")
        #expect(e[0].message == #"the required property "input" is missing"#)
        #expect(e[0].absoluteKeywordLocation == "https://example.com/envelope#/required")
    }

    @Test func nestedLocationsThroughRef() throws {
        let e = try errors(#"{"id":"abcd-1234","tool":"HTTP","input":{}}"#)
        #expect(e.count == 1)
        #expect(e[0].instanceLocation == "/tool")
        #expect(e[0].keywordLocation == "/properties/tool/$ref/pattern")
        #expect(e[0].absoluteKeywordLocation == "https://example.com/envelope#/$defs/toolName/pattern")
        #expect(e[0].message.contains("does not match the pattern"))
    }

    @Test func collectsEveryError() throws {
        let e = try errors(#"{"id":"x","tool":"a.b","input":{"n":0,"extra":1},"tags":["abcd","a","a"],"priority":"urgent","zzz":true}"#)
        let pairs = Set(e.map { "\($0.instanceLocation) \($0.keywordLocation)" })
        #expect(pairs == [
            "/id /properties/id/pattern",
            "/input/n /properties/input/properties/n/minimum",
            "/input/extra /properties/input/additionalProperties",
            "/tags/0 /properties/tags/items/maxLength",
            "/tags /properties/tags/uniqueItems",
            "/priority /properties/priority/enum",
            "/zzz /additionalProperties",
        ])
        let byLoc = Dictionary(e.map { ($0.instanceLocation, $0.message) }, uniquingKeysWith: { a, _ in a })
        #expect(byLoc["/input/n"] == "0 is less than the minimum of 1")
        #expect(byLoc["/input/extra"] == #"the property "extra" is not allowed (no additional properties)"#)
        #expect(byLoc["/tags"] == "the array items at 1 and 2 are equal, but items must be unique")
        #expect(byLoc["/priority"] == #""urgent" is not one of the allowed values: "low", "normal", "high""#)
        #expect(byLoc["/tags/0"] == #""abcd" is longer than 3 characters"#)
        #expect(!schema.isValid(try JSONValue.parse(#"{"id":"x"}"#)))
    }

    @Test func basicOutputFormat() throws {
        let r = schema.validate(try JSONValue.parse(#"{"id":"abcd-1234","tool":"http.request"}"#))
        let out = r.basicOutput
        #expect(out["valid"] == false)
        #expect(out["errors"]?[0]?["keywordLocation"] == "/required")
        #expect(out["errors"]?[0]?["instanceLocation"] == "")
        #expect(out["errors"]?[0]?["error"]?.stringValue?.contains("input") == true)
        #expect(schema.validate(try JSONValue.parse(#"{"id":"abcd-1234","tool":"a.b","input":{}}"#)).basicOutput == ["valid": true])
    }

    @Test func typeMessages() throws {
        let e = try errors(#"[1]"#)
        #expect(e.count == 1)
        #expect(e[0].message == "expected an object, but got an array")
        let s = try Schema.compile(["type": ["string", "null"]])
        #expect(s.validate(1.5).errors.first?.message == "expected null or a string, but got a number")
        #expect(s.validate(2.0).errors.first?.message == "expected null or a string, but got an integer")
    }

    @Test func escapedPointerTokens() throws {
        let s = try Schema.compile(["properties": ["a/b": ["properties": ["~x": ["type": "string"]]]]])
        let e = s.validate(["a/b": ["~x": 1]]).errors
        #expect(e.count == 1)
        #expect(e[0].instanceLocation == "/a~1b/~0x")
        #expect(e[0].keywordLocation == "/properties/a~1b/properties/~0x/type")
    }

    @Test func combinators() throws {
        let s = try Schema.compile(try JSONValue.parse(#"""
        {"oneOf": [{"type": "integer"}, {"minimum": 0}], "not": {"const": 7},
         "allOf": [{"maximum": 100}], "anyOf": [{"type": "string"}, {"multipleOf": 2}]}
        """#))
        #expect(s.validate(-2).isValid)
        let e = s.validate(4).errors.map(\.keywordLocation)
        #expect(e == ["/oneOf"])
        #expect(s.validate(4).errors[0].message.contains("more than one"))
        #expect(s.validate(7).errors.map(\.keywordLocation).sorted() == ["/anyOf", "/not", "/oneOf"])
        #expect(s.validate(102).errors.map(\.keywordLocation).sorted() == ["/allOf/0/maximum", "/oneOf"])
    }

    @Test func unevaluatedAndItemsMessages() throws {
        let s = try Schema.compile(try JSONValue.parse(#"""
        {"prefixItems": [{"type": "string"}], "items": false,
         "properties": {"o": {"allOf": [{"properties": {"a": true}}], "unevaluatedProperties": false}}}
        """#))
        let e1 = s.validate(["x", 1]).errors
        #expect(e1.count == 1 && e1[0].keywordLocation == "/items" && e1[0].message == "the array has 2 items, but only 1 is allowed")
        let e2 = s.validate(["o": ["a": 1, "b": 2]]).errors
        #expect(e2.count == 1)
        #expect(e2[0].instanceLocation == "/o/b")
        #expect(e2[0].keywordLocation == "/properties/o/unevaluatedProperties")
    }
}

@Suite("Compilation, registry, options")
struct CompilationTests {
    @Test func invalidSchemasAreRejected() {
        #expect(throws: SchemaCompileError.self) { try Schema.compile(["type": "strng"]) }
        #expect(throws: SchemaCompileError.self) { try Schema.compile(["minLength": -1]) }
        #expect(throws: SchemaCompileError.self) { try Schema.compile(["$ref": "https://nowhere.example/x.json"]) }
        #expect(throws: SchemaCompileError.self) { try Schema.compile(["pattern": "(unclosed"]) }
        #expect(throws: SchemaCompileError.self) { try Schema.compile(["$schema": "https://unknown.example/meta"]) }
        do {
            _ = try Schema.compile(["properties": ["a": ["type": 5]]])
            Issue.record("should throw")
        } catch let e as SchemaCompileError {
            #expect(!e.metaschemaErrors.isEmpty)
            #expect(e.description.contains("meta-schema"))
        } catch {
            Issue.record("wrong error \(error)")
        }
    }

    @Test func registryResolvesRemoteRefs() throws {
        var reg = SchemaRegistry()
        reg.add(["$defs": ["port": ["type": "integer", "minimum": 1, "maximum": 65535]]], uri: "https://nova.example/common.json")
        let s = try Schema.compile(["properties": ["port": ["$ref": "https://nova.example/common.json#/$defs/port"]]], registry: reg)
        #expect(s.validate(["port": 80]).isValid)
        let e = s.validate(["port": 0]).errors
        #expect(e.first?.keywordLocation == "/properties/port/$ref/minimum")
        #expect(e.first?.absoluteKeywordLocation == "https://nova.example/common.json#/$defs/port/minimum")
        #expect(reg.uris.contains("https://nova.example/common.json"))
        #expect(reg.uris.contains(Schema.draft202012))
    }

    @Test func metaschemaIsEmbedded() throws {
        let meta = try Schema.compile(["$ref": .string(Schema.draft202012)])
        #expect(meta.validate(["type": "object", "properties": ["a": ["minLength": 1]]]).isValid)
        #expect(!meta.validate(["type": "object", "properties": ["a": ["minLength": -1]]]).isValid)
    }

    @Test func formatAssertionIsOptIn() throws {
        let s = try Schema.compile(["format": "date-time"])
        #expect(s.validate("not a date").isValid)
        let strict = try Schema.compile(["format": "date-time"], options: ValidationOptions(formatAssertion: true))
        #expect(!strict.validate("not a date").isValid)
        #expect(strict.validate("2024-02-29T23:59:60Z").isValid)
        #expect(s.validate("nope", options: ValidationOptions(formatAssertion: true)).errors.first?.message == #""nope" is not a valid date-time"#)
    }

    @Test func deepRecursionIsBounded() throws {
        let s = try Schema.compile(["$defs": ["a": ["$ref": "#/$defs/b"], "b": ["$ref": "#/$defs/a"]], "$ref": "#/$defs/a"])
        let r = s.validate(1)
        #expect(!r.isValid)
        #expect(r.errors.first?.message.contains("reference cycle") == true)
    }

    @Test func legacyDraftsAreAccepted() throws {
        let s = try Schema.compile(try JSONValue.parse(#"""
        {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "string"}], "additionalItems": false,
         "definitions": {"n": {"type": "integer"}}, "dependencies": {"a": ["b"]}}
        """#))
        #expect(s.validate(["x"]).isValid)
        #expect(!s.validate(["x", 1]).isValid)
        #expect(!s.validate(["a": 1]).isValid)
        let d4 = try Schema.compile(try JSONValue.parse(#"""
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "number", "maximum": 10, "exclusiveMaximum": true}
        """#))
        #expect(d4.validate(9.5).isValid)
        #expect(!d4.validate(10).isValid)
    }

    @Test func concurrentValidation() async throws {
        let s = try Schema.compile(try JSONValue.parse(#"""
        {"type": "object", "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"},
         "items": {"type": "array", "items": {"$ref": "#"}}}, "unevaluatedProperties": false}
        """#))
        let good: JSONValue = ["name": "abc", "items": [["name": "x"], ["items": []]]]
        let bad: JSONValue = ["name": "ABC", "items": [["zzz": 1]]]
        let results = await withTaskGroup(of: (Bool, Int).self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var ok = 0
                    var errs = 0
                    for _ in 0..<500 {
                        if s.validate(good).isValid { ok += 1 }
                        errs += s.validate(bad).errors.count
                    }
                    return (ok == 500, errs)
                }
            }
            var out: [(Bool, Int)] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(results.allSatisfy { $0.0 && $0.1 == 1000 })
    }
}

@Suite("ECMA-262 patterns")
struct PatternTests {
    func m(_ p: String, _ s: String) throws -> Bool { try ECMARegex(p).search(s) }

    @Test func basics() throws {
        #expect(try m("abc", "xxabcxx"))
        #expect(try !m("^abc$", "abc\n"))
        #expect(try m("^abc$", "abc"))
        #expect(try m("^[a-z][a-z0-9_.-]{2,63}$", "http.request"))
        #expect(try !m("^[a-z][a-z0-9_.-]{2,63}$", "Http.request"))
        #expect(try !m("^[a-z]{2,3}$", "abcd"))
        #expect(try m("^a{2}$", "aa"))
        #expect(try m("^(foo|bar)+baz$", "foobarfoobaz"))
        #expect(try !m("^(foo|bar)+baz$", "baz"))
        #expect(try m("^\\d+$", "0123"))
        #expect(try !m("^\\d+$", "١٢٣"))  // ECMA \d is ASCII only
        #expect(try m("^\\w+$", "a_Z9"))
        #expect(try !m("^\\w+$", "é"))
        #expect(try m("^\\s$", "\u{00A0}"))
        #expect(try m("^.$", "😀"))
        #expect(try !m("^.$", "\n"))
        #expect(try m("^[^a-c]+$", "xyz"))
        #expect(try !m("^[^a-c]+$", "xaz"))
        #expect(try m("^[\\d\\-]+$", "12-3"))
        #expect(try m("^[\\D]$", "x"))
        #expect(try m("\\bfoo\\b", "a foo b"))
        #expect(try !m("\\bfoo\\b", "afoob"))
        #expect(try m("^(?=.*\\d)(?!.*x).+$", "ab1"))
        #expect(try !m("^(?=.*\\d)(?!.*x).+$", "ab1x"))
        #expect(try m("^\\u00e9\\x41\\u{1F600}$", "éA😀"))
        #expect(try m("^a*?b??c+?$", "c"))
        #expect(try m("^(?:a|)*$", "aaa"))
        #expect(try m("^(?<year>\\d{4})-\\d{2}$", "2024-01"))
        #expect(try m("^\\$\\{[a-z]+\\}$", "${abc}"))
        #expect(try m("a\\{,2\\}", "a{,2}"))  // a lone brace is a syntax error with the u flag
        #expect(try m("", "anything"))
        // Pathological for backtrackers, linear here.
        #expect(try !m("^(a+)+$", String(repeating: "a", count: 5000) + "b"))
    }

    /// The precomputed DFA and the NFA simulation must agree everywhere.
    @Test func dfaAgreesWithNFA() throws {
        let patterns = ["abc", "^abc$", "a|b|cd", "^(ab|a)*c?$", "[^a-c]x", "\\d{2,4}$", "^$", "$", "^", "x*", "é+ü?$",
                        "^[a-z][a-z0-9_.-]{0,6}$", "(?:a|b)+c", "[\\s\\S]", "^.{3}$", "[😀-😂]", "a{2}b{0,1}$"]
        let alphabet: [Character] = ["a", "b", "c", "d", "x", "1", "2", "é", "ü", " ", "\n", "😀", "_", "."]
        var rng = SystemRandomNumberGenerator()
        for p in patterns {
            let r = try ECMARegex(p)
            let dfa = try #require(r.dfa, "no DFA for \(p)")
            guard case .automaton(let nfa) = r.engine else { Issue.record("no NFA for \(p)"); continue }
            for len in 0..<7 {
                for _ in 0..<40 {
                    var s = ""
                    for _ in 0..<len { s.append(alphabet.randomElement(using: &rng)!) }
                    var copy = s
                    let a = copy.withUTF8 { dfa.search($0) }
                    let b = nfa.search(s.unicodeScalars.map(\.value))
                    #expect(a == b, "pattern \(p) on \(s.debugDescription): DFA \(a), NFA \(b)")
                }
            }
        }
    }

    /// Backreferences, lookbehind and `\p{…}` are the project's own engine's too.
    @Test func noFallback() throws {
        let p = try Pattern("^(a)\\1$")
        #expect(p.test("aa") == .match)
        #expect(p.test("ab") == .noMatch)
        #expect(try Pattern("^\\p{Lu}+$").test("ÀB") == .match)
        #expect(try Pattern("(?<=a)b").test("ab") == .match)
    }

    @Test func invalidPatterns() {
        for bad in ["(", "[a-", "a**", "+", "[z-a]", "a{2,1}", "{", "a{,2}", "\\1", "(?<=a)*"] {
            #expect(throws: (any Error).self, "\(bad)") { try Pattern(bad) }
        }
    }
}

@Suite("Formats (assertion mode)")
struct FormatTests {
    func ok(_ f: String, _ s: String) -> Bool { Format(name: f)!.check(s) }

    @Test func checks() {
        #expect(ok("date", "2024-02-29") && !ok("date", "2023-02-29") && !ok("date", "2024-13-01"))
        #expect(ok("time", "12:30:00.5+02:00") && !ok("time", "12:30:00") && !ok("time", "24:00:00Z"))
        #expect(ok("date-time", "1985-04-12T23:20:50.52Z") && !ok("date-time", "1985-04-12 23:20:50Z"))
        #expect(ok("duration", "P1Y2M3DT4H5M6S") && ok("duration", "P2W") && !ok("duration", "P") && !ok("duration", "PT") && !ok("duration", "P1D2Y"))
        #expect(ok("email", "a.b+c@example.com") && !ok("email", "a..b@example.com") && !ok("email", "nope"))
        #expect(ok("hostname", "api.example.com") && !ok("hostname", "-bad.example") && !ok("hostname", String(repeating: "a", count: 64)))
        #expect(ok("ipv4", "192.168.0.1") && !ok("ipv4", "256.1.1.1") && !ok("ipv4", "01.1.1.1"))
        #expect(ok("ipv6", "::1") && ok("ipv6", "2001:db8::8a2e:370:7334") && ok("ipv6", "::ffff:1.2.3.4") && !ok("ipv6", "1:2:3:4:5:6:7:8:9") && !ok("ipv6", ":::"))
        #expect(ok("uri", "https://example.com/a?b#c") && !ok("uri", "/relative") && !ok("uri", "http://exa mple.com"))
        #expect(ok("uri-reference", "/relative#frag") && !ok("uri-reference", "\\\\bad"))
        #expect(ok("uuid", "123e4567-e89b-12d3-a456-426614174000") && !ok("uuid", "123e4567e89b12d3a456426614174000"))
        #expect(ok("json-pointer", "/a~1b") && ok("json-pointer", "") && !ok("json-pointer", "a") && !ok("json-pointer", "/~2"))
        #expect(ok("regex", "^[a-z]+$") && !ok("regex", "(["))
        #expect(ok("relative-json-pointer", "1/a") && ok("relative-json-pointer", "0#") && !ok("relative-json-pointer", "01/a"))
    }
}

@Suite("Member names and strings compare by Unicode scalars (issue 10 item 19)")
struct ScalarNameKeywordTests {
    func valid(_ schema: String, _ instance: String) throws -> Bool {
        try Schema.compile(try JSONValue.parse(schema)).validate(try JSONValue.parse(instance)).isValid
    }

    @Test func requiredAndDependentRequired() throws {
        #expect(try !valid("{\"required\":[\"\u{E9}\"]}", "{\"e\u{301}\":1}"))
        #expect(try valid("{\"required\":[\"\u{E9}\"]}", "{\"\u{E9}\":1}"))
        #expect(try !valid("{\"required\":[\"K\"]}", "{\"\u{212A}\":1}"))
        #expect(try !valid("{\"dependentRequired\":{\"a\":[\"\u{E9}\"]}}", "{\"a\":1,\"e\u{301}\":1}"))
    }

    @Test func constEnumUniqueItems() throws {
        #expect(try !valid("{\"const\":\"\u{E9}\"}", "\"e\u{301}\""))
        #expect(try !valid("{\"const\":{\"\u{E9}\":1}}", "{\"e\u{301}\":1}"))
        #expect(try !valid("{\"enum\":[\"K\"]}", "\"\u{212A}\""))
        #expect(try !valid("{\"enum\":[{\"K\":1}]}", "{\"\u{212A}\":1}"))
        #expect(try valid("{\"uniqueItems\":true}", "[\"\u{E9}\",\"e\u{301}\"]"))
        #expect(try valid("{\"uniqueItems\":true}", "[{\"\u{E9}\":1},{\"e\u{301}\":1}]"))
    }

    @Test func maxPropertiesAndProperties() throws {
        #expect(try !valid("{\"maxProperties\":1}", "{\"\u{E9}\":1,\"e\u{301}\":2}"))
        #expect(try !valid("{\"properties\":{\"e\u{301}\":{\"type\":\"string\"}}}", "{\"\u{E9}\":1,\"e\u{301}\":2}"))
        #expect(try valid("{\"properties\":{\"e\u{301}\":{\"type\":\"string\"}}}", "{\"\u{E9}\":1,\"e\u{301}\":\"x\"}"))
        #expect(try !valid("{\"additionalProperties\":false,\"properties\":{\"\u{E9}\":true}}", "{\"e\u{301}\":1}"))
    }
}

@Suite("Numbers beyond Int64 and Double (issue 10 item 20)")
struct BigNumberKeywordTests {
    func valid(_ schema: String, _ instance: String) throws -> Bool {
        try Schema.compile(try JSONValue.parse(schema)).validate(try JSONValue.parse(instance)).isValid
    }

    @Test func hugeLimitsCompile() throws {
        #expect(try valid("{\"maxLength\":9223372036854775808}", "\"abc\""))
        #expect(try valid("{\"minItems\":1e300}", "[]") == false)
        #expect(try valid("{\"maxItems\":1e300}", "[1,2]"))
    }

    /// "1e400" in an instance is a number that compares as infinity (as in Python's json module).
    @Test func hugeExponentInstanceComparesAsInfinity() throws {
        #expect(try valid("{\"type\":\"number\"}", "1e400"))
        #expect(try !valid("{\"type\":\"integer\"}", "1e400"))
        #expect(try !valid("{\"maximum\":1e308}", "1e400"))
        #expect(try valid("{\"minimum\":1e308}", "1e400"))
        #expect(try !valid("{\"minimum\":0}", "-1e400"))
    }

    @Test func bigIntegersCompareExactly() throws {
        #expect(try !valid("{\"enum\":[100000000000000000001]}", "100000000000000000000"))
        #expect(try valid("{\"enum\":[100000000000000000001]}", "100000000000000000001"))
        #expect(try !valid("{\"const\":-100000000000000000001}", "-100000000000000000002"))
        #expect(try !valid("{\"maximum\":18446744073709551616}", "18446744073709551617"))
        #expect(try valid("{\"maximum\":18446744073709551616}", "18446744073709551616"))
        #expect(try !valid("{\"exclusiveMaximum\":18446744073709551616}", "18446744073709551616"))
        #expect(try valid("{\"minimum\":-18446744073709551617}", "-18446744073709551616"))
        #expect(try !valid("{\"minimum\":9223372036854775807}", "-9223372036854775809"))
        // A double limit against a big instance, exactly: 2^64 as a double.
        #expect(try !valid("{\"maximum\":18446744073709551616.0}", "18446744073709551617"))
        #expect(try valid("{\"minimum\":1.5}", "18446744073709551617"))
        #expect(try valid("{\"type\":\"integer\"}", "-18446744073709551617"))
        #expect(try valid("{\"uniqueItems\":true}", "[18446744073709551616, 18446744073709551617]"))
        // Equal values are equal whatever their spelling: 1e20 is exactly 10^20.
        #expect(try !valid("{\"uniqueItems\":true}", "[1e20, 100000000000000000000]"))
        #expect(try valid("{\"enum\":[1e20]}", "100000000000000000000"))
        #expect(try !valid("{\"multipleOf\":2}", "18446744073709551617"))
        #expect(try valid("{\"multipleOf\":2}", "18446744073709551618"))
        #expect(try valid("{\"multipleOf\":0.5}", "18446744073709551617"))
        #expect(try !valid("{\"multipleOf\":1000}", "18446744073709551610"))
        #expect(try valid("{\"multipleOf\":1000}", "18446744073709551000"))
        #expect(try !valid("{\"multipleOf\":3}", "100000000000000000000"))
    }

    /// Divisors beyond UInt64 divide exactly too (long division on the decimal digits).
    @Test func bigDivisors() throws {
        let d = "100000000000000000001"  // 10^20 + 1 = 73 × 137 × 1676321 × 5964848081
        #expect(try valid("{\"multipleOf\":\(d)}", "200000000000000000002"))
        #expect(try !valid("{\"multipleOf\":\(d)}", "200000000000000000003"))
        #expect(try valid("{\"multipleOf\":\(d)}", "0"))
        #expect(try !valid("{\"multipleOf\":\(d)}", "73"))
        #expect(try valid("{\"multipleOf\":1676321}", d))
        #expect(try valid("{\"multipleOf\":10000000000000000000000000000000000000001}", "10000000000000000000000000000000000000001000"))
        #expect(try !valid("{\"multipleOf\":10000000000000000000000000000000000000001}", "10000000000000000000000000000000000000002000"))
    }
}
