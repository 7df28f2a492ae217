import JSON

/// JSON Schema draft 2020-12: compile a schema once with `Schema.compile`, then validate many
/// instances with the returned `CompiledSchema`.
///
/// ```swift
/// let schema = try Schema.compile(["type": "object", "required": ["name"]])
/// let result = schema.validate(["name": "x"])
/// if !result.isValid { for e in result.errors { print(e) } }
/// ```
public enum Schema {
    /// The `$schema` URI of the draft 2020-12 dialect.
    public static let draft202012 = "https://json-schema.org/draft/2020-12/schema"

    /// Compiles `json` (an object or boolean schema).
    ///
    /// - Parameters:
    ///   - json: the schema document.
    ///   - registry: documents that `$ref` may reach by absolute URI (the 2020-12 meta-schemas
    ///     are always known). Nothing is ever fetched from the network.
    ///   - baseURI: the retrieval URI of `json`, against which a root without `$id` resolves
    ///     relative references.
    ///   - options: default options for `validate`.
    /// - Throws: `SchemaCompileError` when the schema is not valid against its meta-schema
    ///   (when `options.validateSchema`), uses an unknown `$schema`, or has a `$ref` that
    ///   cannot be resolved, or an invalid `pattern`.
    public static func compile(
        _ json: JSONValue,
        registry: SchemaRegistry = SchemaRegistry(),
        baseURI: String = SchemaRegistry.defaultBaseURI,
        options: ValidationOptions = ValidationOptions()
    ) throws -> CompiledSchema {
        try CompiledSchema(json: json, registry: registry, baseURI: baseURI, options: options)
    }

    /// Parses JSON text and compiles it. See `compile(_:registry:baseURI:options:)`.
    public static func compile(
        text: String,
        registry: SchemaRegistry = SchemaRegistry(),
        baseURI: String = SchemaRegistry.defaultBaseURI,
        options: ValidationOptions = ValidationOptions()
    ) throws -> CompiledSchema {
        try compile(try JSONValue.parse(text), registry: registry, baseURI: baseURI, options: options)
    }
}

/// Options that change how instances are validated.
public struct ValidationOptions: Sendable, Hashable {
    /// When `true`, `format` asserts for date-time, date, time, duration, email, hostname,
    /// ipv4, ipv6, uri, uri-reference, iri, iri-reference, uuid, json-pointer,
    /// relative-json-pointer and regex (unknown formats still pass). When `false` (the 2020-12
    /// default) `format` is an annotation only, unless the schema's meta-schema turns on the
    /// format-assertion vocabulary.
    public var formatAssertion: Bool
    /// When `true` (the default), `compile` first validates the schema against its meta-schema
    /// and throws if it is invalid.
    public var validateSchema: Bool
    /// How deep in the instance validation goes: members and items nested more than this
    /// many levels below the root stop validation with an error. The default is
    /// `JSONValue.maximumParseDepth` (512), so every document the parser accepts can be
    /// validated by a recursive schema.
    public var maximumInstanceDepth: Int
    /// How many `$ref`/`$dynamicRef` may be followed in a row without moving into a member or
    /// item of the instance (a chain of references at one value) before validation stops with
    /// an error. A chain that comes back to a subschema already being evaluated against the
    /// same value is reported as a reference cycle at once, whatever this limit.
    public var maximumReferenceDepth: Int
    /// How many references (`$ref`, `$dynamicRef`) any validation may follow; past it the
    /// allowance grows once by `evaluationStepsPerValue` for each value in the instance
    /// (itself and every member and item), and validation stops with an error when that is
    /// spent too. Without references, work is bounded by the schema's size times the
    /// instance's; this bounds schemas that apply subschemas exponentially often, such as
    /// chains of `{"allOf": [{"$ref": "#/$defs/next"}, {"$ref": "#/$defs/next"}]}`.
    public var maximumEvaluationSteps: Int
    /// See `maximumEvaluationSteps`.
    public var evaluationStepsPerValue: Int
    /// Stack one validation may use before it stops with an error: a safety net for data
    /// nested deep through long reference chains at every level, which the other limits
    /// allow one by one. Checked when a reference is followed. The default, 4 MiB, suits
    /// threads with 8 MiB of stack (the Linux default); a level of data reached through one
    /// reference takes about 1–1.5 KiB in release builds (4–6 KiB in debug builds), a
    /// reference alone about 0.4 KiB (1.7 KiB).
    public var maximumStackBytes: Int

    /// Creates options; every parameter has the default described on its property.
    public init(formatAssertion: Bool = false, validateSchema: Bool = true,
                maximumInstanceDepth: Int = JSONValue.maximumParseDepth, maximumReferenceDepth: Int = 1000,
                maximumEvaluationSteps: Int = 1_000_000, evaluationStepsPerValue: Int = 1000,
                maximumStackBytes: Int = 4 << 20) {
        self.formatAssertion = formatAssertion
        self.validateSchema = validateSchema
        self.maximumInstanceDepth = maximumInstanceDepth
        self.maximumReferenceDepth = maximumReferenceDepth
        self.maximumEvaluationSteps = maximumEvaluationSteps
        self.evaluationStepsPerValue = evaluationStepsPerValue
        self.maximumStackBytes = maximumStackBytes
    }
}

/// The outcome of validating one instance.
public struct ValidationResult: Sendable, CustomStringConvertible {
    /// Every error found, in evaluation order; empty when valid.
    public let errors: [ValidationError]
    /// `true` when the instance satisfies the schema.
    public var isValid: Bool { errors.isEmpty }

    /// Creates a result from errors.
    public init(errors: [ValidationError]) { self.errors = errors }

    public var description: String {
        isValid ? "valid" : errors.map(\.description).joined(separator: "\n")
    }

    /// The result in the JSON Schema "basic" output format:
    /// `{"valid": false, "errors": [{"keywordLocation", "absoluteKeywordLocation",
    /// "instanceLocation", "error"}]}` — ready to return from an API.
    public var basicOutput: JSONValue {
        var out: [String: JSONValue] = ["valid": .bool(isValid)]
        if !isValid {
            out["errors"] = .array(errors.map { e in
                [
                    "keywordLocation": .string(e.keywordLocation),
                    "absoluteKeywordLocation": .string(e.absoluteKeywordLocation),
                    "instanceLocation": .string(e.instanceLocation),
                    "error": .string(e.message),
                ]
            })
        }
        return .object(JSONObject(out))
    }
}

/// One reason an instance failed validation.
public struct ValidationError: Sendable, Hashable, CustomStringConvertible, Error {
    /// JSON Pointer (RFC 6901) to the offending value in the instance; `""` for the root.
    public let instanceLocation: String
    /// JSON Pointer through the schema along the evaluation path, `$ref`s included, ending at
    /// the failing keyword, e.g. `/properties/input/$ref/required`.
    public let keywordLocation: String
    /// The failing keyword's canonical location: its schema resource's URI plus a JSON Pointer
    /// fragment, e.g. `https://example.com/plan#/$defs/step/required`.
    public let absoluteKeywordLocation: String
    /// The failing keyword, e.g. `required`, or `false` for a `false` schema.
    public let keyword: String
    /// A plain English explanation.
    public let message: String

    /// Creates an error; normally only the validator does this.
    public init(instanceLocation: String, keywordLocation: String, absoluteKeywordLocation: String, keyword: String, message: String) {
        self.instanceLocation = instanceLocation
        self.keywordLocation = keywordLocation
        self.absoluteKeywordLocation = absoluteKeywordLocation
        self.keyword = keyword
        self.message = message
    }

    public var description: String {
        "\(instanceLocation.isEmpty ? "(root)" : instanceLocation): \(message) [at \(keywordLocation.isEmpty ? "#" : keywordLocation)]"
    }
}

/// Why a schema could not be compiled.
public struct SchemaCompileError: Error, CustomStringConvertible, Sendable {
    /// Where in the schema (an absolute URI with a JSON Pointer fragment), when known.
    public let location: String
    /// What is wrong.
    public let message: String
    /// For a schema that fails its meta-schema: the meta-schema validation errors.
    public let metaschemaErrors: [ValidationError]

    init(location: String, message: String, metaschemaErrors: [ValidationError] = []) {
        self.location = location
        self.message = message
        self.metaschemaErrors = metaschemaErrors
    }

    public var description: String {
        var s = "invalid schema at \(location): \(message)"
        for e in metaschemaErrors.prefix(10) { s += "\n  " + e.description }
        return s
    }
}

/// A set of schema documents addressable by absolute URI, for `$ref` to other documents.
/// Nothing is ever fetched from the network: a reference to a URI that is not here fails
/// compilation. The draft 2020-12 meta-schemas are always present.
///
/// A value type: copies are independent and safe to share between threads.
public struct SchemaRegistry: Sendable {
    /// The retrieval URI assumed for a root schema that has no `$id`.
    public static let defaultBaseURI = "json-schema:///"

    /// Documents added by URI (without fragment).
    var documents: [String: JSONValue]

    /// A registry holding only the draft 2020-12 meta-schemas.
    public init() {
        documents = SchemaRegistry.metaschemaDocuments
    }

    /// Adds (or replaces) the document retrievable at `uri`. An `$id` inside the document
    /// also makes it reachable under that identifier once it is loaded.
    public mutating func add(_ document: JSONValue, uri: String) {
        documents[splitFragment(uri).0] = document
    }

    /// Parses JSON text and adds it. See `add(_:uri:)`.
    public mutating func add(text: String, uri: String) throws {
        add(try JSONValue.parse(text), uri: uri)
    }

    /// A copy with the document added.
    public func adding(_ document: JSONValue, uri: String) -> SchemaRegistry {
        var c = self
        c.add(document, uri: uri)
        return c
    }

    /// The document added at `uri`, if any.
    public func document(at uri: String) -> JSONValue? {
        documents[splitFragment(uri).0]
    }

    /// The URIs of every document held.
    public var uris: [String] { Array(documents.keys).sorted() }

    static let metaschemaDocuments: [String: JSONValue] = {
        var d: [String: JSONValue] = [:]
        for (uri, text) in Metaschemas.documents {
            // The embedded texts are fixed and known to parse.
            d[uri] = (try? JSONValue.parse(text)) ?? .bool(true)
        }
        return d
    }()
}
