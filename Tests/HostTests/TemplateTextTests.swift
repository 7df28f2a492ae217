import Testing
import Host
import JSON

/// How a template string is cut into text and references (`Template.resolve`,
/// `Template.references`): whole-string references keep their type, references inside text
/// are interpolated, `$${` is a literal `${`, an unterminated `${` is an error.
@Suite("Template text")
struct TemplateTextTests {
    struct Scope: ReferenceScope {
        func input(_ name: String) -> JSONValue? { ["a": 5, "s": "hi", "o": ["k": [1, 2]]][name] }
        func step(_ id: String, field: String) -> JSONValue? { id == "prev" && field == "output" ? ["v": "out"] : nil }
    }

    func resolve(_ text: String) throws -> JSONValue { try Template.resolve(.string(text), in: Scope()) }

    @Test func textAndReferences() throws {
        let cases: [(String, JSONValue)] = [
            ("plain", "plain"),
            ("", ""),
            ("${inputs.a}", 5),
            ("${inputs.o}", ["k": [1, 2]]),
            ("${steps.prev.output.v}", "out"),
            ("x ${inputs.a} y", "x 5 y"),
            ("a ${inputs.s} ${inputs.a}${inputs.s}", "a hi 5hi"),
            ("é ${inputs.s}ü\u{301} 🙂", "é hiü\u{301} 🙂"),
            ("obj ${inputs.o}", #"obj {"k":[1,2]}"#),
            ("$${inputs.a}", "${inputs.a}"),
            ("$$${inputs.a}", "$${inputs.a}"),
            ("cost $5 {not} a $ { reference }", "cost $5 {not} a $ { reference }"),
            ("$${inputs.a} and ${inputs.a}", "${inputs.a} and 5"),
            ("ends with $", "ends with $"),
        ]
        for (text, expected) in cases {
            #expect(try resolve(text) == expected, "\(text.debugDescription)")
        }
    }

    @Test func unterminatedReferenceIsAnError() {
        for text in ["${inputs.a", "x ${", "${inputs.a} ${"] {
            #expect(throws: PlanError.self, "\(text.debugDescription)") { try resolve(text) }
        }
    }

    @Test func referencesAreListedWithTheirPlace() throws {
        let refs = try Template.references(in: ["a": "${inputs.a} $${inputs.s}", "b": ["x", "${steps.prev.output.v}"]])
        #expect(refs.map(\.reference.text) == ["inputs.a", "steps.prev.output.v"])
        #expect(refs.map(\.at) == ["a", "b[1]"])
    }
}
