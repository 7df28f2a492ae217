import JSON
import Schema

/// nova-host's own document schemas (plan, policy profile, driver manifest), compiled once.
public enum DocumentSchemas {
    /// One compiled schema, or why the embedded text failed to compile (a build bug).
    static func compile(_ text: String) -> CompiledSchema? {
        guard let json = try? JSONValue.parse(text) else { return nil }
        return try? Schema.compile(json)
    }

    public static let plan = compile(BundledSchemas.plan)
    public static let policy = compile(BundledSchemas.policy)
    public static let manifest = compile(BundledSchemas.manifest)
    public static let drivers = compile(BundledSchemas.drivers)
    public static let template = compile(BundledSchemas.template)
    public static let blueprint = compile(BundledSchemas.blueprint)

    /// Validates `document`; each error is rendered as `path: message` with the path written
    /// the way authors write it (`steps[0].retry.max_attempts`).
    public static func check(_ document: JSONValue, against schema: CompiledSchema?) -> [(path: String, message: String)] {
        guard let schema else { return [("", "internal error: an embedded schema does not compile")] }
        let result = schema.validate(document)
        if result.isValid { return [] }
        // Report the deepest errors first: they say the most; drop parents' summaries.
        let errors = result.errors.sorted { $0.instanceLocation.count > $1.instanceLocation.count }
        var seen = Set<String>()
        var out: [(String, String)] = []
        for e in errors where seen.insert(e.instanceLocation + e.message).inserted {
            out.append((readablePath(e.instanceLocation), e.message))
        }
        return out
    }

    /// `/steps/0/retry` → `steps[0].retry`.
    public static func readablePath(_ pointer: String) -> String {
        guard let p = try? JSONPointer(parsing: pointer) else { return pointer }
        var s = ""
        for t in p.tokens {
            if let n = Int(t), n >= 0, String(n) == t { s += "[\(n)]" } else { s += s.isEmpty ? t : ".\(t)" }
        }
        return s
    }
}
