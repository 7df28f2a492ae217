import JSON

/// A named group of a template's steps, shown in records and reports.
public struct TemplatePhase: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// The step ids in the phase, as the template lists them.
    public var steps: [String]

    public init(name: String, description: String? = nil, steps: [String]) {
        self.name = name
        self.description = description
        self.steps = steps
    }

    public var json: JSONValue {
        var o: JSONObject = ["name": .string(name), "steps": .array(steps.map(JSONValue.string))]
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
}

/// Which template a plan was rendered from: the exact version and its hash, the params it got
/// (defaults applied) and its phases. A run's record keeps it so that the run can be explained
/// and replayed with the same template.
public struct TemplateProvenance: Sendable, Equatable {
    public var name: String
    public var version: String
    /// `sha256:` + SHA-256 of the template document's canonical JSON.
    public var hash: String
    public var params: JSONValue
    public var phases: [TemplatePhase]

    public init(name: String, version: String, hash: String, params: JSONValue, phases: [TemplatePhase]) {
        (self.name, self.version, self.hash, self.params, self.phases) = (name, version, hash, params, phases)
    }

    public var json: JSONValue {
        ["name": .string(name), "version": .string(version), "hash": .string(hash), "params": params,
         "phases": .array(phases.map(\.json))]
    }

    /// Reads `json` back (a job payload or an episode); nil when it is not a provenance object.
    public init?(json: JSONValue) {
        guard let name = json["name"]?.stringValue, let version = json["version"]?.stringValue, let hash = json["hash"]?.stringValue else { return nil }
        let phases = (json["phases"]?.arrayValue ?? []).compactMap { p -> TemplatePhase? in
            guard let n = p["name"]?.stringValue else { return nil }
            return TemplatePhase(name: n, description: p["description"]?.stringValue, steps: (p["steps"]?.arrayValue ?? []).compactMap(\.stringValue))
        }
        self.init(name: name, version: version, hash: hash, params: json["params"] ?? .object([:]), phases: phases)
    }
}
