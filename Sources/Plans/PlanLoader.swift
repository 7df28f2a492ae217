import Foundation
import JSON

/// Reads plan files: JSON (`.json`) or YAML (`.yaml`, `.yml`).
public enum PlanLoader {
    /// Reads and parses the plan at `path`. Errors are `PlanErrors` with readable messages.
    public static func load(path: String) throws(PlanErrors) -> Plan {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlanErrors(errors: [PlanError("cannot read plan file \(path): no such file or not readable")])
        }
        let json: JSONValue
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
            do { json = try YAMLDocuments.parse(String(decoding: data, as: UTF8.self)) } catch {
                throw PlanErrors(errors: [PlanError("\(path) is not valid YAML: \(error)")])
            }
        } else {
            do { json = try JSONValue.parse(Array(data)) } catch {
                throw PlanErrors(errors: [PlanError("\(path) is not valid JSON: \(error)")])
            }
        }
        return try Plan.parse(json)
    }
}
