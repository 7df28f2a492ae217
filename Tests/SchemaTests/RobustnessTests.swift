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
