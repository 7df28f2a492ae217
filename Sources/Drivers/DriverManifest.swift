import JSON
import Schema
import Synchronization
import HostSchemas

/// How the host may call into one driver instance.
public enum DriverConcurrency: String, Sendable, Codable {
    /// The host never enters `call`/`cancel` concurrently on one instance.
    case serialized
    /// The driver handles concurrent entry itself.
    case threadSafe = "thread_safe"
}

/// MCP tool annotations: hints about a tool's effects (not guarantees).
public struct ToolAnnotations: Sendable, Equatable, Codable {
    public var readOnlyHint: Bool
    public var destructiveHint: Bool
    public var idempotentHint: Bool
    public var openWorldHint: Bool

    public init(readOnlyHint: Bool, destructiveHint: Bool, idempotentHint: Bool, openWorldHint: Bool) {
        self.readOnlyHint = readOnlyHint
        self.destructiveHint = destructiveHint
        self.idempotentHint = idempotentHint
        self.openWorldHint = openWorldHint
    }
}

/// What a driver needs from the machine; policy may refuse drivers that ask for too much.
public struct DriverPermissions: Sendable, Equatable, Codable {
    public var network: Bool
    public var filesystem: Bool
    public var process: Bool
}

/// One tool as the manifest describes it (MCP's Tool shape).
public struct ToolDescriptor: Sendable {
    /// Short name (`echo`); callers use `<driver>.<name>`.
    public var name: String
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    public var annotations: ToolAnnotations
    /// Top-level input properties marked `"x-secret": true`, redacted in episodes and logs.
    public var secretInputFields: [String]
    /// The input fields policy conditions may read (`policyInputs` in the manifest).
    public var policyInputs: PolicyInputs = PolicyInputs()
    /// Sample calls the driver declares (`examples`): `nova-host drivers test` runs them.
    public var examples: [ToolExample] = []
    /// Unique per parsed manifest, so per loaded generation: what is derived from this
    /// descriptor (its compiled schemas) is cached under this key, never under the tool's name,
    /// which a reload keeps while the schemas change.
    public var identity: UInt64 = ToolDescriptor.nextIdentity()

    private static let identities = Atomic<UInt64>(0)
    static func nextIdentity() -> UInt64 { identities.add(1, ordering: .relaxed).newValue }
}

/// A sample call of a tool, declared in the manifest for `nova-host drivers test`: `input` must
/// pass the tool's inputSchema, and the call must succeed with an output that passes its
/// outputSchema, or, when `error` is set, fail with that error code.
public struct ToolExample: Sendable, Equatable {
    public var input: JSONValue
    /// The error code the call must fail with; nil: it must succeed.
    public var error: String?
    public var description: String?

    public init(input: JSONValue, error: String? = nil, description: String? = nil) {
        (self.input, self.error, self.description) = (input, error, description)
    }

    static func list(_ json: JSONValue?, at path: String) throws(ManifestError) -> [ToolExample] {
        guard let json else { return [] }
        guard let items = json.arrayValue else { throw ManifestError("\(path) must be an array") }
        var out: [ToolExample] = []
        for (i, item) in items.enumerated() {
            guard let input = item["input"] else { throw ManifestError("\(path)[\(i)].input is missing") }
            if let e = item["error"], e.stringValue == nil { throw ManifestError("\(path)[\(i)].error must be a string") }
            out.append(ToolExample(input: input, error: item["error"]?.stringValue, description: item["description"]?.stringValue))
        }
        return out
    }
}

/// A driver's manifest, parsed from the JSON its `describe` returns and checked field by field.
public struct DriverManifest: Sendable {
    public var name: String
    public var version: String
    public var description: String
    public var concurrency: DriverConcurrency
    public var permissions: DriverPermissions
    public var tools: [ToolDescriptor]
    /// The manifest exactly as the driver sent it.
    public var raw: JSONValue

    /// Looks a tool up by its short name.
    public func tool(named name: String) -> ToolDescriptor? { tools.first { $0.name == name } }

    /// Parses and checks a manifest. Throws `ManifestError` naming the offending field.
    public init(json: JSONValue) throws(ManifestError) {
        guard let object = json.objectValue else { throw ManifestError("the manifest is not a JSON object") }
        func string(_ key: String, in obj: [String: JSONValue], at path: String) throws(ManifestError) -> String {
            guard let value = obj[key] else { throw ManifestError("\(path)\(key) is missing") }
            guard let s = value.stringValue else { throw ManifestError("\(path)\(key) must be a string") }
            return s
        }
        let name = try string("name", in: object, at: "")
        guard DriverManifest.isValidName(name) else {
            throw ManifestError("name '\(name)' must match [a-z0-9_-]+ (1 to 64 characters)")
        }
        self.name = name
        self.version = try string("version", in: object, at: "")
        guard !version.isEmpty else { throw ManifestError("version must not be empty") }
        self.description = (object["description"]?.stringValue) ?? ""
        switch object["concurrency"] {
        case nil: self.concurrency = .serialized
        case .some(let v):
            guard let s = v.stringValue, let c = DriverConcurrency(rawValue: s) else {
                throw ManifestError("concurrency must be \"serialized\" or \"thread_safe\"")
            }
            self.concurrency = c
        }
        let perms = object["permissions"]?.objectValue ?? [:]
        if let p = object["permissions"], p.objectValue == nil { throw ManifestError("permissions must be an object") }
        func flag(_ obj: [String: JSONValue], _ key: String, _ path: String, default def: Bool) throws(ManifestError) -> Bool {
            guard let v = obj[key] else { return def }
            guard let b = v.boolValue else { throw ManifestError("\(path)\(key) must be true or false") }
            return b
        }
        self.permissions = DriverPermissions(
            network: try flag(perms, "network", "permissions.", default: false),
            filesystem: try flag(perms, "filesystem", "permissions.", default: false),
            process: try flag(perms, "process", "permissions.", default: false))
        guard let toolsValue = object["tools"] else { throw ManifestError("tools is missing") }
        guard let toolList = toolsValue.arrayValue else { throw ManifestError("tools must be an array") }
        guard !toolList.isEmpty else { throw ManifestError("tools must list at least one tool") }
        var tools: [ToolDescriptor] = []
        var seen = Set<String>()
        for (i, t) in toolList.enumerated() {
            let path = "tools[\(i)]."
            guard let tool = t.objectValue else { throw ManifestError("tools[\(i)] must be an object") }
            let toolName = try string("name", in: tool, at: path)
            guard DriverManifest.isValidToolName(toolName) else {
                throw ManifestError("\(path)name '\(toolName)' must be parts of [A-Za-z0-9_-] joined by single dots, at most 128 characters")
            }
            guard seen.insert(toolName).inserted else { throw ManifestError("\(path)name '\(toolName)' is listed twice") }
            let description = try string("description", in: tool, at: path)
            guard let input = tool["inputSchema"] else { throw ManifestError("\(path)inputSchema is missing") }
            guard input.objectValue != nil else { throw ManifestError("\(path)inputSchema must be a JSON Schema object") }
            let output = tool["outputSchema"]
            if let output, output.objectValue == nil, output.boolValue == nil {
                throw ManifestError("\(path)outputSchema must be a JSON Schema")
            }
            let ann = tool["annotations"]?.objectValue ?? [:]
            if let a = tool["annotations"], a.objectValue == nil { throw ManifestError("\(path)annotations must be an object") }
            let readOnly = try flag(ann, "readOnlyHint", "\(path)annotations.", default: false)
            let annotations = ToolAnnotations(
                readOnlyHint: readOnly,
                // MCP's defaults: a tool that is not read-only is assumed destructive and open-world.
                destructiveHint: try flag(ann, "destructiveHint", "\(path)annotations.", default: !readOnly),
                idempotentHint: try flag(ann, "idempotentHint", "\(path)annotations.", default: false),
                openWorldHint: try flag(ann, "openWorldHint", "\(path)annotations.", default: true))
            let secrets = (input["properties"]?.objectValue ?? [:]).compactMap { key, schema in
                schema["x-secret"]?.boolValue == true ? key : nil
            }.sorted()
            let policyInputs = try PolicyInputs(manifest: tool["policyInputs"], at: "\(path)policyInputs")
            tools.append(ToolDescriptor(name: toolName, description: description, inputSchema: input,
                                        outputSchema: output, annotations: annotations, secretInputFields: secrets,
                                        policyInputs: policyInputs, examples: try ToolExample.list(tool["examples"], at: "\(path)examples")))
        }
        self.tools = tools
        self.raw = json
    }

    /// Driver names: lower-case letters, digits, `_` and `-`, 1 to 64 characters.
    public static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
        }
    }

    /// Tool names: parts of letters, digits, `_` and `-`, joined by single dots (ABI 1.1: an
    /// instance's tools may be namespaced, `files.read`), 1 to 128 characters.
    public static func isValidToolName(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 128 else { return false }
        var previousWasDot = true  // a leading dot is refused like a doubled one
        for c in s.utf8 {
            if c == 0x2E {
                if previousWasDot { return false }
                previousWasDot = true
                continue
            }
            guard (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D else { return false }
            previousWasDot = false
        }
        return !previousWasDot
    }
}

/// A manifest that failed its checks; the message names the field.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}


extension DriverManifest {
    /// Checks a manifest against `schemas/manifest.schema.json` and compiles every tool's
    /// input and output schema; returns the first problem, or nil.
    static func schemaProblem(json: JSONValue, tools: [ToolDescriptor]) -> String? {
        if let first = DocumentSchemas.check(json, against: DocumentSchemas.manifest).first {
            return "\(first.path.isEmpty ? "" : first.path + ": ")\(first.message)"
        }
        for tool in tools {
            do { _ = try Schema.compile(tool.inputSchema) } catch { return "tool '\(tool.name)': inputSchema is not a valid JSON Schema: \(error)" }
            if let out = tool.outputSchema {
                do { _ = try Schema.compile(out) } catch { return "tool '\(tool.name)': outputSchema is not a valid JSON Schema: \(error)" }
            }
        }
        return nil
    }
}

extension DriverManifest {
    /// This manifest with its tools replaced by an instance's own list (ABI 1.1
    /// `describe_instance`: `{"tools": [...]}`), checked like a manifest from `describe`.
    public func replacingTools(with instanceTools: JSONValue) throws(ManifestError) -> DriverManifest {
        guard let tools = instanceTools["tools"] else { throw ManifestError("the instance's tool list has no \"tools\"") }
        guard var object = raw.objectValue else { throw ManifestError("the manifest is not a JSON object") }
        object["tools"] = tools
        let json = JSONValue.object(object)
        let manifest = try DriverManifest(json: json)
        if let problem = DriverManifest.schemaProblem(json: json, tools: manifest.tools) { throw ManifestError(problem) }
        return manifest
    }
}
