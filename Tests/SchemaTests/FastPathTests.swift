import JSON
import Testing
@testable import Schema

/// The shortcuts `isValid` takes (assertion-only subschemas checked in one loop, objects
/// checked cheapest member first, evaluated members as position bit sets, string enums
/// without hashing, number limits stored flat) must give the answers of the general path,
/// which `validate` takes.
@Suite("isValid shortcuts agree with validate")
struct FastPathTests {
    /// Both entry points, which must agree.
    func outcome(_ schema: CompiledSchema, _ instance: JSONValue) -> Bool {
        let full = schema.validate(instance).isValid
        #expect(schema.isValid(instance) == full, "isValid and validate disagree on \(instance)")
        return full
    }

    func compile(_ text: String, options: ValidationOptions = ValidationOptions()) throws -> CompiledSchema {
        try Schema.compile(try JSONValue.parse(text), options: options)
    }

    @Test func unevaluatedPropertiesPastSixtyFourMembers() throws {
        // 100 names annotated through allOf, 40 by the node's own properties: positions go
        // well past the 64 kept inline.
        let inAllOf = (0..<100).map { "\"p\($0)\": {\"type\": \"integer\"}" }.joined(separator: ",")
        let own = (100..<140).map { "\"p\($0)\": true" }.joined(separator: ",")
        let schema = try compile(#"{"allOf": [{"properties": {\#(inAllOf)}}], "properties": {\#(own)}, "unevaluatedProperties": false}"#)
        var members: JSONObject = [:]
        for i in 0..<140 { members[JSONKey("p\(i)")] = .int(i) }
        #expect(outcome(schema, .object(members)))
        members["p145"] = .int(145)
        #expect(!outcome(schema, .object(members)))
        let errors = schema.validate(.object(members)).errors
        #expect(errors.count == 1 && errors[0].instanceLocation == "/p145" && errors[0].keyword == "unevaluatedProperties")
        members["p145"] = nil
        members["p7"] = "seven"  // fails inside allOf: no annotation, and the object is invalid
        #expect(!outcome(schema, .object(members)))
    }

    @Test func stringEnumsCompareCodePoints() throws {
        let schema = try compile(#"{"enum": ["\u00e9", "low", "normal"]}"#)
        #expect(outcome(schema, "\u{E9}"))
        #expect(!outcome(schema, "e\u{301}"))  // canonically equivalent, different code points
        #expect(outcome(schema, "low"))
        #expect(!outcome(schema, "lo"))
        #expect(!outcome(schema, 1))
        let mixed = try compile(#"{"enum": [1, "a"]}"#)
        #expect(outcome(mixed, .double(1.0)))
        #expect(outcome(mixed, "a"))
        #expect(!outcome(mixed, "b"))
    }

    @Test func numberLimitsOfEveryKind() throws {
        let double = try compile(#"{"minimum": 1.5, "exclusiveMaximum": 2.5}"#)
        #expect(!outcome(double, 1))
        #expect(outcome(double, 2))
        #expect(outcome(double, .double(1.5)))
        #expect(!outcome(double, .double(2.5)))
        #expect(outcome(double, "not a number"))
        let big = try compile(#"{"maximum": 100000000000000000000000000000, "exclusiveMinimum": -100000000000000000000000000000}"#)
        #expect(outcome(big, .int(Int.max)))
        #expect(outcome(big, .int(Int.min)))
        #expect(!outcome(big, try JSONValue.parse("100000000000000000000000000001")))
        #expect(!outcome(big, try JSONValue.parse("-100000000000000000000000000000")))
        #expect(!outcome(big, .double(1e30)))
    }

    @Test func objectsFailOnAnyMemberInEitherPass() throws {
        // Three members whose subschemas are not leaves (more than the two the second pass
        // looks up by name), a leaf member, a required one and additionalProperties.
        let schema = try compile(#"""
        {"type": "object", "required": ["id"], "additionalProperties": {"type": "string"},
         "properties": {"id": {"type": "integer"}, "a": {"properties": {"x": {"type": "integer"}}},
                        "b": {"properties": {"x": {"type": "integer"}}}, "c": {"properties": {"x": {"type": "integer"}}}}}
        """#)
        let good: JSONValue = ["id": 1, "a": ["x": 1], "b": ["x": 2], "c": ["x": 3], "extra": "s"]
        #expect(outcome(schema, good))
        for (name, bad) in [("a", ["x": "1"]), ("b", ["x": "2"]), ("c", ["x": "3"])] as [(String, JSONValue)] {
            guard case .object(var o) = good else { return }
            o[name] = bad
            #expect(!outcome(schema, .object(o)))
        }
        guard case .object(var o) = good else { return }
        o["extra"] = 5  // additionalProperties, a leaf
        #expect(!outcome(schema, .object(o)))
        o["extra"] = nil
        o["id"] = nil  // required
        #expect(!outcome(schema, .object(o)))
        // One deferred member only, failing, behind oneOf (the alternatives' context).
        let alternatives = try compile(#"""
        {"oneOf": [{"required": ["kind"], "properties": {"kind": {"const": "a"}, "body": {"properties": {"n": {"type": "integer"}}}}},
                   {"required": ["kind"], "properties": {"kind": {"const": "b"}, "body": {"properties": {"n": {"type": "string"}}}}}]}
        """#)
        #expect(outcome(alternatives, ["kind": "a", "body": ["n": 1]]))
        #expect(!outcome(alternatives, ["kind": "a", "body": ["n": "1"]]))
        #expect(outcome(alternatives, ["kind": "b", "body": ["n": "1"]]))
    }

    @Test func leafShortcutKeepsTheDepthLimit() throws {
        let schema = try compile(#"{"properties": {"a": {"properties": {"b": {"type": "integer"}}}}}"#,
                                 options: ValidationOptions(maximumInstanceDepth: 1))
        let deep: JSONValue = ["a": ["b": 1]]
        #expect(!schema.isValid(deep))
        let errors = schema.validate(deep).errors
        #expect(errors.count == 1 && errors[0].message.contains("maximumInstanceDepth"))
        #expect(schema.isValid(["a": 1]))  // "a" itself is within the limit
    }

    /// An array of leaves (`Node.isShallow`) against the same keywords with `items` behind
    /// `allOf`, which no shortcut takes: every instance gets the same answer. The arrays are
    /// members (`{"t": …}`): the shortcut is taken where a member or an item is evaluated.
    @Test func arraysOfLeavesAgreeWithTheGeneralPath() throws {
        func member(_ schema: String) throws -> CompiledSchema { try compile(#"{"properties": {"t": \#(schema)}}"#) }
        let fast = try member(#"{"type": "array", "maxItems": 4, "uniqueItems": true, "items": {"type": "string", "maxLength": 3}}"#)
        let general = try member(#"{"type": "array", "maxItems": 4, "uniqueItems": true, "items": {"allOf": [{"type": "string", "maxLength": 3}]}}"#)
        #expect(fast.shallowNodeCount == 1 && general.shallowNodeCount == 0)
        let strings: [(JSONValue, Bool)] = [
            ([], true), (["a"], true), (["a", "b"], true), (["a", "a"], false), (["abc", "abcd"], false),
            (["\u{E9}\u{E9}\u{E9}"], true),    // 3 characters in 6 bytes
            (["e\u{301}e\u{301}"], false),     // 4 code points
            (["\u{E9}", "e\u{301}"], true),     // canonically equivalent, different code points: unique
            (["\u{212A}", "K"], true),           // Kelvin sign and K
            (["a", "b", "c", "d", "e"], false), ([1], false), (["x", nil], false), ("not an array", false),
        ]
        for (instance, valid) in strings {
            #expect(outcome(fast, ["t": instance]) == valid, "\(instance)")
            #expect(outcome(general, ["t": instance]) == valid, "\(instance)")
        }
        let fastNumbers = try member(#"{"uniqueItems": true, "items": {"minimum": 0}}"#)
        let generalNumbers = try member(#"{"uniqueItems": true, "items": {"allOf": [{"minimum": 0}]}}"#)
        #expect(fastNumbers.shallowNodeCount == 1 && generalNumbers.shallowNodeCount == 0)
        let numbers: [(JSONValue, Bool)] = [
            ([1, 2], true), ([1, .double(1.0)], false), ([.double(0.5), .double(0.5)], false), ([1, "1"], true),
            (try JSONValue.parse("[100000000000000000000000, 100000000000000000000000]"), false),
            (try JSONValue.parse("[100000000000000000000000, 100000000000000000000001]"), true),
            (try JSONValue.parse("[100000000000000000000000, 1e23]"), true),  // 1e23 is not exactly a double
            ([["a": 1], ["a": .double(1.0)]], false), ([[1, 2], [2, 1]], true), ([-1], false), ([true, 1], true),
            (.object(["a": 1]), true),
        ]
        for (instance, valid) in numbers {
            #expect(outcome(fastNumbers, ["t": instance]) == valid, "\(instance)")
            #expect(outcome(generalNumbers, ["t": instance]) == valid, "\(instance)")
        }
        // Not shallow (`contains` applies a subschema), but its items are leaves: checked in
        // one loop (`evalItems`), at the root too.
        let withContains = try compile(#"{"contains": {"const": "a"}, "items": {"maxLength": 1}}"#)
        let withContainsGeneral = try compile(#"{"contains": {"const": "a"}, "items": {"allOf": [{"maxLength": 1}]}}"#)
        for (instance, valid) in [(["a", "b"], true), (["a", "bc"], false), (["b"], false), (["a", "\u{E9}"], true)] as [(JSONValue, Bool)] {
            #expect(outcome(withContains, instance) == valid, "\(instance)")
            #expect(outcome(withContainsGeneral, instance) == valid, "\(instance)")
        }
    }

    @Test func arrayOfLeavesShortcutKeepsTheDepthLimit() throws {
        let text = #"{"properties": {"t": {"type": "array", "uniqueItems": true, "items": {"type": "string"}}}}"#
        let limited = try compile(text, options: ValidationOptions(maximumInstanceDepth: 1))
        let doc: JSONValue = ["t": ["x"]]
        #expect(!limited.isValid(doc))  // "x" is at depth 2
        let errors = limited.validate(doc).errors
        #expect(errors.count == 1 && errors[0].message.contains("maximumInstanceDepth"))
        #expect(limited.isValid(["t": []]))
        #expect(try compile(text, options: ValidationOptions(maximumInstanceDepth: 2)).isValid(doc))
    }

    @Test func patternsFromTheFlatTables() throws {
        let schema = try compile(#"{"pattern": "^[a-z]+-[0-9]{2}$", "propertyNames": {"pattern": "^é+$"}}"#)
        #expect(outcome(schema, "abc-12"))
        #expect(!outcome(schema, "abc-123"))
        #expect(!outcome(schema, "Abc-12"))
        #expect(outcome(schema, ["éé": 1]))
        #expect(!outcome(schema, ["e": 1]))
        #expect(!outcome(schema, ["e\u{301}": 1]))
    }

    /// `anyOf`/`oneOf` skip an alternative whose `AlternativeFilter` fails (its types, one
    /// property with an assertion-only subschema, along its `$ref` chain). The same
    /// alternatives wrapped in `allOf` get no filter: both spellings must give the same answers.
    @Test func alternativeFiltersChangeNoAnswer() throws {
        let defs = #"""
        "$defs": {
          "circle": {"type": "object", "required": ["kind", "r"],
                     "properties": {"kind": {"const": "circle"}, "r": {"type": "number", "minimum": 0}}},
          "square": {"$ref": "#/$defs/squareBody", "type": ["object", "null"]},
          "squareBody": {"required": ["kind"], "properties": {"kind": {"enum": ["square", "box"]}, "side": {"type": "integer"}}},
          "coded": {"properties": {"code": {"pattern": "^C[0-9]+$"}, "é": {"const": 1}}},
          "int": {"type": "integer", "$ref": "#/$defs/num"},
          "num": {"type": "number"},
          "never": false
        }
        """#
        let alternatives = ["circle", "square", "coded", "int", "never"].map { "{\"$ref\": \"#/$defs/\($0)\"}" }
        let wrapped = alternatives.map { "{\"allOf\": [\($0)]}" }
        let instances: [String] = [
            #"{"kind": "circle", "r": 1}"#, #"{"kind": "circle", "r": -1}"#, #"{"kind": "square", "side": 2}"#,
            #"{"kind": "box"}"#, #"{"side": 2}"#, #"{"r": 2}"#, "null", "3", "3.0", "3.5", #""circle""#,
            #"{"code": "C12"}"#, #"{"code": "X12", "kind": "box"}"#, #"{"é": 2}"#, #"{"é": 2, "kind": "box"}"#,
            #"{"kind": "circle", "r": 1, "code": "C1"}"#, "[]", #"{"e\u0301": 2, "kind": "circle", "r": 1}"#,
        ]
        for keyword in ["oneOf", "anyOf"] {
            let filtered = try compile("{\(defs), \"\(keyword)\": [\(alternatives.joined(separator: ","))]}")
            let unfiltered = try compile("{\(defs), \"\(keyword)\": [\(wrapped.joined(separator: ","))]}")
            for text in instances {
                let v = try JSONValue.parse(text)
                #expect(outcome(filtered, v) == outcome(unfiltered, v), "\(keyword) disagrees on \(text)")
            }
        }
        // The answers themselves, for the oneOf spelling ("coded" holds for every non-object
        // and for objects whose "code" and "\u00e9", where present, pass).
        let oneOf = try compile("{\(defs), \"oneOf\": [\(alternatives.joined(separator: ","))]}")
        let expected: [(String, Bool)] = [
            (#"{"kind": "circle", "r": 1}"#, false),               // circle and coded
            (#"{"kind": "circle", "r": 1, "code": "X"}"#, true),   // circle only
            (#"{"kind": "box", "code": "X"}"#, true),              // square only
            (#"{"kind": "box", "code": "C1"}"#, false),            // square and coded
            ("3", false), ("3.5", true), ("null", false),          // int and coded; coded; square and coded
            (#"{"\u00e9": 2, "kind": "circle", "r": 1}"#, true),   // coded fails on its const
            (#"{"e\u0301": 2, "kind": "circle", "r": 1}"#, false), // another member: coded holds
        ]
        for (text, valid) in expected {
            #expect(outcome(oneOf, try JSONValue.parse(text)) == valid, "oneOf on \(text)")
        }
        // A cycle of references among alternatives is still reported, not looped over.
        let cyclic = try compile(##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "anyOf": [{"$ref": "#/$defs/a"}]}"##)
        #expect(!cyclic.isValid(.object([:])))
    }
}
