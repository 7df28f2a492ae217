import JSON
import Testing
@testable import Schema

/// Schemas reach the host from tool manifests: whatever numbers they hold, compiling and
/// validating must give an answer, never trap.
@Suite("Schema-derived numbers")
struct SchemaNumberTests {
    /// Each count keyword with limits at and beyond the `Int` range, checked against small
    /// instances (the answers python-jsonschema gives).
    @Test func countLimitsAtTheEdgesOfInt() throws {
        let huge: [JSONValue] = [.int(2305843009213693952), .int(Int.max), .double(9223372036854775808.0), .double(1e300)]
        let instances: [(String, small: JSONValue, empty: JSONValue)] = [
            ("Length", "abc", ""), ("Items", [1, 2], []), ("Properties", ["a": 1], [:]),
        ]
        for (suffix, small, empty) in instances {
            for limit in huge {
                let minSchema = try Schema.compile(["min" + suffix: limit])
                #expect(!minSchema.isValid(small), "min\(suffix) \(limit)")
                #expect(!minSchema.validate(empty).isValid, "min\(suffix) \(limit)")
                let maxSchema = try Schema.compile(["max" + suffix: limit])
                #expect(maxSchema.isValid(small), "max\(suffix) \(limit)")
                #expect(maxSchema.validate(empty).isValid, "max\(suffix) \(limit)")
            }
        }
    }

    @Test func containsLimitsAtTheEdgesOfInt() throws {
        for limit: JSONValue in [.int(Int.max), .double(1e300)] {
            let minC = try Schema.compile(["contains": ["type": "integer"], "minContains": limit])
            #expect(!minC.isValid([1, 2, 3]))
            #expect(minC.validate([1]).errors.first?.keyword == "minContains")
            let maxC = try Schema.compile(["contains": ["type": "integer"], "maxContains": limit])
            #expect(maxC.isValid([1, 2, 3]))
        }
    }

    @Test func fractionalOrNegativeCountsAreRefused() {
        for bad: JSONValue in [.double(1.5), .int(-1), .double(-1e300), "3"] {
            #expect(throws: SchemaCompileError.self) { try Schema.compile(["minLength": bad]) }
            #expect(throws: SchemaCompileError.self) { try Schema.compile(["maxItems": bad], options: ValidationOptions(validateSchema: false)) }
        }
    }
}

/// `[[[…]]]` with `levels` arrays around `inner`.
func nestedArrays(_ levels: Int, around inner: JSONValue = 1) -> JSONValue {
    var v = inner
    for _ in 0..<levels { v = .array([v]) }
    return v
}

/// A `$ref` chain `#/$defs/r0` → `r1` → … → `r<hops - 1>`, whose last link is `end`.
func referenceChain(_ hops: Int, end: JSONValue) -> JSONValue {
    var defs: [String: JSONValue] = [:]
    for i in 0..<(hops - 1) { defs["r\(i)"] = ["$ref": .string("#/$defs/r\(i + 1)")] }
    defs["r\(hops - 1)"] = end
    return ["$defs": .object(defs), "$ref": "#/$defs/r0"]
}

/// Schemas must never hang the host: a reference cycle that never moves into the instance is
/// reported as such, and evaluation work per validation is bounded.
@Suite("Reference cycles and evaluation work")
struct EvaluationWorkTests {
    func stopMessage(_ s: CompiledSchema, _ v: JSONValue) -> String? {
        let r = s.validate(v)
        #expect(!s.isValid(v))
        #expect(r.errors.count == 1)
        return r.errors.first?.message
    }

    @Test func cyclesWithoutProgressAreReported() throws {
        let schemas: [JSONValue] = [
            ["allOf": [["$ref": "#"], ["$ref": "#"]]],
            ["not": ["$ref": "#"]],
            ["anyOf": [["type": "string"], ["$ref": "#"]]],
            ["$defs": ["a": ["$ref": "#/$defs/b"], "b": ["oneOf": [["$ref": "#/$defs/a"], true]]], "$ref": "#/$defs/a"],
            ["properties": ["x": ["$ref": "#/$defs/loop"]], "$defs": ["loop": ["if": ["$ref": "#/$defs/loop"], "then": true]]],
        ]
        for schema in schemas {
            let s = try Schema.compile(schema)
            let instance: JSONValue = ["x": 1]
            let message = stopMessage(s, instance) ?? ""
            #expect(message.contains("reference cycle"), "\(schema): \(message)")
            #expect(s.validate(instance).errors.first?.keyword == "$ref")
        }
    }

    /// Re-entering the same subschema at the same value in a different mode (here boolean-only
    /// under `not`) may stop early: no cycle unless it really recurses forever.
    @Test func recursionThatStopsIsNotACycle() throws {
        let s = try Schema.compile(["type": "string", "not": ["$ref": "#"]])
        #expect(s.validate(1).errors.map(\.keyword) == ["type"])
        #expect(stopMessage(s, "a")?.contains("reference cycle") == true)
        // A reference back to an ancestor that moves into the instance terminates.
        let tree = try Schema.compile(["type": "object", "properties": ["kids": ["items": ["anyOf": [["$ref": "#"], ["type": "integer"]]]]]])
        #expect(tree.isValid(["kids": [1, ["kids": [2, ["kids": []]]]]]))
        #expect(!tree.isValid(["kids": [1, ["kids": ["x"]]]]))
    }

    /// 2^40 evaluations without any cycle: stopped by the work budget.
    @Test func exponentialWorkIsBounded() throws {
        var defs: [String: JSONValue] = ["d40": ["type": "integer"]]
        for i in 0..<40 { defs["d\(i)"] = ["allOf": [["$ref": .string("#/$defs/d\(i + 1)")], ["$ref": .string("#/$defs/d\(i + 1)")]]] }
        let s = try Schema.compile(["$defs": .object(defs), "$ref": "#/$defs/d0"])
        let message = stopMessage(s, 1) ?? ""
        #expect(message.contains("after following 1001000 references"), "\(message)")
        #expect(message.contains("maximumEvaluationSteps"), "\(message)")
    }

    /// The budget grows with the instance: large valid data is not refused.
    @Test func budgetScalesWithTheInstance() throws {
        let schema: JSONValue = ["items": ["$ref": "#/$defs/n"], "$defs": ["n": ["allOf": [["$ref": "#/$defs/i"], ["$ref": "#/$defs/i"]]], "i": ["type": "integer"]]]
        let small = ValidationOptions(maximumEvaluationSteps: 20, evaluationStepsPerValue: 8)
        let s = try Schema.compile(schema, options: small)
        let data = JSONValue.array((0..<1000).map { .int($0) })
        #expect(s.validate(data).isValid)
        #expect(s.isValid(data))
        var defs: [String: JSONValue] = ["d12": ["type": "integer"]]
        for i in 0..<12 { defs["d\(i)"] = ["allOf": [["$ref": .string("#/$defs/d\(i + 1)")], ["$ref": .string("#/$defs/d\(i + 1)")]]] }
        let blowUp = try Schema.compile(["items": ["$ref": "#/$defs/d0"], "$defs": .object(defs)], options: small)
        #expect(!blowUp.isValid(data))
        #expect(blowUp.validate([1, 2]).errors.first?.message.contains("maximumEvaluationSteps") == true)
    }
}

/// Nesting of data and of references are limited separately, each with its own message.
@Suite("Depth limits")
struct DepthLimitTests {
    @Test func recursiveSchemaAcceptsDataAsDeepAsTheParserAllows() throws {
        let s = try Schema.compile(["items": ["$ref": "#"]])
        #expect(s.validate(nestedArrays(300)).isValid)
        let deepest = String(repeating: "[", count: JSONValue.maximumParseDepth) + String(repeating: "]", count: JSONValue.maximumParseDepth)
        let parsed = try JSONValue.parse(deepest)
        #expect(s.validate(parsed).isValid)
        #expect(s.isValid(parsed))
        #expect(ValidationOptions().maximumInstanceDepth == JSONValue.maximumParseDepth)
    }

    @Test func dataDeeperThanTheLimitSaysSo() throws {
        let s = try Schema.compile(["items": ["$ref": "#"]])
        let r = s.validate(nestedArrays(JSONValue.maximumParseDepth + 1))
        #expect(r.errors.count == 1)
        #expect(r.errors.first?.message.contains("maximumInstanceDepth") == true, "\(r)")
        #expect(r.errors.first?.message.contains("512") == true, "\(r)")
        let shallow = try Schema.compile(["items": ["$ref": "#"]], options: ValidationOptions(maximumInstanceDepth: 3))
        #expect(shallow.isValid(nestedArrays(2)))
        #expect(shallow.isValid(nestedArrays(3, around: [])))
        #expect(shallow.validate(nestedArrays(4)).errors.first?.message.contains("nested more than 3 levels") == true)
        // Schemas that do not descend do not care how deep the data is.
        #expect(try Schema.compile(["type": "array"], options: ValidationOptions(maximumInstanceDepth: 3)).isValid(nestedArrays(10)))
    }

    @Test func longReferenceChainsWithoutACycle() throws {
        let s = try Schema.compile(referenceChain(600, end: ["type": "integer"]))
        #expect(s.validate(1).isValid)
        let e = s.validate("x").errors
        #expect(e.count == 1 && e.first?.keyword == "type", "\(e)")
        let limited = try Schema.compile(referenceChain(150, end: ["type": "integer"]), options: ValidationOptions(maximumReferenceDepth: 100))
        let r = limited.validate(1)
        #expect(r.errors.count == 1)
        #expect(r.errors.first?.message.contains("maximumReferenceDepth") == true, "\(r)")
        #expect(r.errors.first?.message.contains("100") == true, "\(r)")
        #expect(r.errors.first?.message.contains("cycle") == false, "\(r)")
    }

    /// Every limit on its own allows this (512 levels of data, 200 references per level), but
    /// together they would overflow the thread's stack: a clear error instead of a crash.
    @Test func stackUseIsBounded() throws {
        let s = try Schema.compile(referenceChain(200, end: ["items": ["$ref": "#/$defs/r0"]]))
        #expect(s.isValid(nestedArrays(3)))
        let r = s.validate(nestedArrays(JSONValue.maximumParseDepth))
        #expect(r.errors.count == 1)
        #expect(r.errors.first?.message.contains("maximumStackBytes") == true, "\(r)")
        #expect(!s.isValid(nestedArrays(JSONValue.maximumParseDepth)))
    }
}

/// `properties` names are matched code point by code point (RFC 8259 §8.3), also when they
/// are longer than `NameIndex`'s length groups.
@Suite("Property name lookup")
struct PropertyNameTests {
    /// U+212A KELVIN SIGN is canonically equivalent to "K" (so Swift `==` calls them equal),
    /// U+037E GREEK QUESTION MARK to ";": different member names all the same.
    @Test(arguments: [9, 62, 63, 64, 70, 200])
    func canonicallyEquivalentNamesAreDifferentProperties(tail: Int) throws {
        let rest = String(repeating: "a", count: tail)
        for (ascii, lookalike) in [("K" + rest, "\u{212A}" + rest), (rest + ";", rest + "\u{037E}")] {
            let s = try Schema.compile(["properties": [ascii: ["type": "integer"]], "additionalProperties": false])
            #expect(s.isValid([ascii: 1]))
            #expect(!s.isValid([ascii: "x"]))
            let e = s.validate([lookalike: 1]).errors
            #expect(e.map(\.keyword) == ["additionalProperties"], "\(tail): \(e)")
            let open = try Schema.compile(["properties": [ascii: ["type": "integer"]]])
            #expect(open.isValid([lookalike: "x"]), "\(tail)")
        }
    }
}

/// Format checks against their RFCs, with the answers python-jsonschema (rfc3987, idna) and
/// jsonschema-rs agree on, and the official suite's optional format cases.
@Suite("Formats against their RFCs")
struct FormatRFCTests {
    func ok(_ f: String, _ s: String) -> Bool { Format(name: f)!.check(s) }

    @Test func uriFollowsRFC3986() {
        let valid = ["http://host:8080/", "http://host:/", "http://[::1]:80/", "http://[v1.x]/", "a:b", "urn:isbn:0451450523",
                     "http://a:b@[::1]:1/p?q#f", "file:///etc/passwd", "http://host/%20?a=b/c?d#e/f?g", "HTTP://H/", "mailto:a@b"]
        for s in valid { #expect(ok("uri", s), "\(s)") }
        let invalid = ["http://host:80a/", "http://host:8080a", "http://example.com:abc/path", "p://2001:0d", "p://2001:0db8::1/",
                       "http://[::1]x/", "http://[::1]]/", "http://a@b@c/", "https://[@example.org/test.txt", "http://[vx.x]/",
                       "http://[v1.]/", "http:/[::1]", "http://host/?q=[", "http://host/#f[", "http://host/#a#b", "http://h/%zz",
                       "1a:b", "http://ex ample/", "http://h/é"]
        for s in invalid { #expect(!ok("uri", s), "\(s)") }
    }

    @Test func uriReferenceFollowsRFC3986() {
        for s in ["", "#", "?", "/relative#frag", "./a:b", "//h", "//user@host:1", "//[::1]/", "a?b:c"] { #expect(ok("uri-reference", s), "\(s)") }
        for s in ["[", "]", "a[b", "/a[b]", "/[::1]", "?q[]", "#f[]", "//host:80a/", "//example.com:abc/p", "//a@b@example.com/",
                  "a:b:c[", ":a", "1a:b", "%", "%2g", "\\\\x", "a b", "//[::1"] {
            #expect(!ok("uri-reference", s), "\(s)")
        }
    }

    @Test func iriFollowsRFC3987() {
        for s in ["http://é.com:80/ü", "http://\u{e9}x\u{e0}mple/\u{fc}?\u{e4}#\u{f6}", "http://h/\u{10000}", "urn:\u{e9}", "http://h/?\u{e000}"] {
            #expect(ok("iri", s), "\(s)")
        }
        for s in ["p://2001:0d", "http://host:80a/", "http://2001:0db8:85a3:0000:0000:8a2e:0370:7334", "http://h/\u{e000}",
                  "http://h/\u{fffe}", "http://[::1]é/", "/relative"] {
            #expect(!ok("iri", s), "\(s)")
        }
        for s in ["ü", "#é", "/\u{10000}"] { #expect(ok("iri-reference", s), "\(s)") }
        for s in ["[", "//é:8a/", "/\u{e000}", "\u{e9}:\u{e0}"] { #expect(!ok("iri-reference", s), "\(s)") }
    }

    /// IDNA2008 (RFC 5890–5893), as python-jsonschema's `idna` and the official suite.
    @Test func idnHostnameFollowsIDNA2008() {
        let valid = ["example.com", "EXAMPLE.com", "b\u{fc}cher.example", "\u{4e2d}\u{6587}.com", "xn--bcher-kva.example",
                     "\u{df}\u{3c2}\u{f0b}\u{3007}", "\u{6fd}\u{6fe}", "l\u{b7}l", "\u{3b1}\u{375}\u{3b2}", "\u{5d0}\u{5f3}\u{5d1}",
                     "\u{30fb}\u{3041}", "\u{30fb}\u{4e08}", "\u{915}\u{94d}\u{200d}\u{937}", "\u{915}\u{94d}\u{200c}\u{937}",
                     "\u{628}\u{64a}\u{200c}\u{628}\u{64a}", "a\u{3002}b", "a\u{ff0e}b", "a\u{ff61}b",
                     String(repeating: "\u{3c0}\u{3b1}\u{3c1}\u{3ac}\u{3b4}\u{3b5}\u{3b9}\u{3b3}\u{3bc}\u{3b1}", count: 5) + "\u{3c0}\u{3b1}\u{3002}com"]
        for s in valid { #expect(ok("idn-hostname", s), "\(s.unicodeScalars.map { String($0.value, radix: 16) })") }
        let invalid = ["\u{301}", "\u{302e}", "\u{301}a", "\u{903}hello", "\u{302e}\u{c2e4}\u{b840}.\u{d14c}\u{c2a4}\u{d2b8}",
                       "\u{c2e4}\u{302e}\u{b840}", "a\u{301}", "\u{1100}\u{1161}", "\u{c0}", "\u{212a}", "\u{ff41}", "\u{640}\u{7fa}",
                       "\u{3031}\u{3032}", "a\u{b7}l", "\u{b7}l", "\u{375}S", "A\u{5f3}", "\u{30fb}", "def\u{30fb}abc",
                       "\u{628}\u{660}\u{6f0}", "\u{915}\u{200d}\u{937}", "\u{200c}", "0\u{627}", "a\u{5d0}", "\u{5d0}0\u{660}",
                       "0a.\u{5d0}", "xn--X", "xn--7a", "xn--0ca24w", "xn---9uc", "XN--aa---o47jg78q", "xn--abc", "ab--c", "-a", "a-",
                       "example.", "a..b", "a b", String(repeating: "a", count: 64)]
        for s in invalid { #expect(!ok("idn-hostname", s), "\(s.unicodeScalars.map { String($0.value, radix: 16) })") }
    }

    /// A-labels in plain hostnames must decode to valid U-labels (the official suite).
    @Test func hostnameChecksALabels() {
        for s in ["xn--bcher-kva.example", "XN--BCHER-KVA.example", "a-b.c", "1.2.3.example"] { #expect(ok("hostname", s), "\(s)") }
        for s in ["xn--X", "xn--hello-zed", "xn--07jt112bpxg.xn--9t4b11yi5a", "xn--l-fda", "xn--ngb6iyr", "xn--02b508i",
                  "XN--aa---o47jg78q", "example.", "b\u{fc}cher.example"] {
            #expect(!ok("hostname", s), "\(s)")
        }
    }
}
