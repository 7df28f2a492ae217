import JSON

/// What a tool lets policy look at: named attributes of its input, each at a JSON Pointer into
/// the input. A driver declares them in its manifest, per tool:
///
///     "policyInputs": { "url": "/url" }
///
/// Rule conditions read attributes, never raw field names, so a condition works for any
/// driver that declares what it needs, and a renamed input field is a manifest change the
/// host can check rather than a rule that silently stops applying.
public struct PolicyInputs: Sendable, Equatable {
    /// The attributes conditions understand.
    public enum Attribute: String, CaseIterable, Sendable {
        /// An absolute URL the call reaches (`http_hosts` matches its host).
        case url
        /// The absolute path of a program the call runs (`shell_programs`, `shell_args`).
        case program
        /// The program's arguments, an array of strings (`shell_args`).
        case args
        /// A boolean asking for write access (`postgres_read_only` refuses `true`).
        case allowWrite = "allow_write"
        /// A GraphQL document (`graphql_operations` reads its operation kinds).
        case graphqlDocument = "graphql_document"
        /// A shared namespace the call reads or writes (`namespaces` matches it).
        case namespace
        /// A message bus topic the call publishes to (`topics` matches it).
        case topic
        /// The agent a message is sent to, by id or name (`agents` matches it).
        case agent
        /// A bus subscription the call receives from or settles (`subscriptions` matches it).
        case subscription
    }

    /// Where each declared attribute is in the input.
    public var pointers: [Attribute: JSONPointer]

    public init(_ pointers: [Attribute: JSONPointer] = [:]) { self.pointers = pointers }

    /// Parses a manifest's `policyInputs` object (absent means none). Errors name the field.
    public init(manifest value: JSONValue?, at path: String) throws(ManifestError) {
        pointers = [:]
        guard let value else { return }
        guard let object = value.objectValue else { throw ManifestError("\(path) must be an object of JSON Pointers") }
        for (name, pointer) in object {
            guard let attribute = Attribute(rawValue: name) else {
                throw ManifestError("\(path).\(name) is not a policy input (known: \(Attribute.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let text = pointer.stringValue, let parsed = try? JSONPointer(parsing: text), !parsed.isRoot else {
                throw ManifestError("\(path).\(name) must be a JSON Pointer into the input, such as \"/url\"")
            }
            pointers[attribute] = parsed
        }
    }

    /// Whether the tool declares `attribute`.
    public func declares(_ attribute: Attribute) -> Bool { pointers[attribute] != nil }

    /// The attribute's value in `input`; nil when undeclared or absent.
    public func value(_ attribute: Attribute, in input: JSONValue) -> JSONValue? {
        guard let pointer = pointers[attribute] else { return nil }
        var current = input
        for token in pointer.tokens {
            if let next = current[token] { current = next; continue }
            guard current.arrayValue != nil, let i = Int(token), let next = current[i] else { return nil }
            current = next
        }
        return current
    }

    /// How messages name the attribute's field: `input.url` for `/url`, `input.a.b` for `/a/b`.
    public func fieldName(_ attribute: Attribute) -> String {
        guard let pointer = pointers[attribute] else { return "input.<\(attribute.rawValue)>" }
        return "input." + pointer.tokens.joined(separator: ".")
    }
}
