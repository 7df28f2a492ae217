import JSON

/// One attempt of one step as a run's episode records it.
public struct RecordedAttempt: Sendable {
    /// The step: `a`, an element of a `foreach` step `a[2]`, a step of a template sub-run `a/b`.
    public var stepId: String
    /// The tool called (`driver.tool`).
    public var tool: String
    /// The attempt as recorded: `attempt`, `started_at`, `duration_ms`, `decision`, `input`,
    /// `usage`, `error`, `approval`.
    public var attempt: JSONValue
    /// Position in the document (steps in plan order, nested records after their step).
    public var order: Int
}

/// Walks a run's episode document (a `RunRecord` body).
public enum EpisodeAttempts {
    /// Every attempt of every step, `foreach` elements and template sub-runs included, in
    /// document order.
    public static func all(in document: JSONValue) -> [RecordedAttempt] {
        var out: [RecordedAttempt] = []
        func walk(_ steps: [JSONValue], prefix: String) {
            for (i, step) in steps.enumerated() {
                let id = prefix + (step["id"]?.stringValue ?? "#\(i)")
                let tool = step["call"]?.stringValue ?? ""
                for a in step["attempts"]?.arrayValue ?? [] {
                    out.append(RecordedAttempt(stepId: id, tool: tool, attempt: a, order: out.count))
                }
                if let items = step["items"]?.arrayValue { walk(items, prefix: prefix) }
                if let sub = step["subrun"]?["steps"]?.arrayValue { walk(sub, prefix: id + "/") }
            }
        }
        walk(document["steps"]?.arrayValue ?? [], prefix: "")
        return out
    }
}
