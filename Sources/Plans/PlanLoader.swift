import Foundation
import JSON

/// Reads plan files: JSON (`.json`) or YAML (`.yaml`, `.yml`).
public enum PlanLoader {
    /// Reads and parses the plan at `path`. Errors are `PlanErrors` with readable messages.
    public static func load(path: String) throws(PlanErrors) -> Plan {
        try Plan.parse(try document(path: path))
    }

    /// Reads a JSON or YAML document (by its extension) as a JSON value: plans, templates.
    public static func document(path: String) throws(PlanErrors) -> JSONValue {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlanErrors(errors: [PlanError("cannot read \(path): no such file or not readable")])
        }
        if isYAML(path) {
            do { return try YAMLDocuments.parse(String(decoding: data, as: UTF8.self)) } catch {
                throw PlanErrors(errors: [PlanError("\(path) is not valid YAML: \(error)")])
            }
        }
        do { return try JSONValue.parse(Array(data)) } catch {
            throw PlanErrors(errors: [PlanError("\(path) is not valid JSON: \(error)")])
        }
    }

    /// Whether `path` names a YAML document.
    public static func isYAML(_ path: String) -> Bool { path.hasSuffix(".yaml") || path.hasSuffix(".yml") }
}
