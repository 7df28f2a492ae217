import JSON
import Schema
import Drivers

/// A tool's input and output schemas, compiled once.
struct CompiledToolSchemas: Sendable {
    let input: Result<CompiledSchema, SchemaFailure>
    let output: Result<CompiledSchema, SchemaFailure>?

    struct SchemaFailure: Error, Sendable { let message: String }

    init(tool: ToolDescriptor) {
        func compile(_ json: JSONValue) -> Result<CompiledSchema, SchemaFailure> {
            do { return .success(try Schema.compile(json)) } catch { return .failure(SchemaFailure(message: "\(error)")) }
        }
        input = compile(tool.inputSchema)
        output = tool.outputSchema.map(compile)
    }

    func checkInput(_ value: JSONValue) -> String? { check(input, value, what: "inputSchema") }
    func checkOutput(_ value: JSONValue) -> String? { output.flatMap { check($0, value, what: "outputSchema") } }

    private func check(_ schema: Result<CompiledSchema, SchemaFailure>, _ value: JSONValue, what: String) -> String? {
        switch schema {
        case .failure(let f): return "the tool's \(what) does not compile: \(f.message)"
        case .success(let s):
            let result = s.validate(value)
            if result.isValid { return nil }
            return result.errors.prefix(5).map { e in
                let at = e.instanceLocation.isEmpty ? "(root)" : e.instanceLocation
                return "\(at): \(e.message)"
            }.joined(separator: "; ")
        }
    }
}
