import AsyncHTTPClient
import DriverKit
import DriverSupport
import Foundation
import GraphQL
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `graphql`: queries and mutations against one configured GraphQL endpoint.
///
/// Every document is parsed locally with GraphQLSwift first, so a syntax error never reaches
/// the network; when the server allows introspection, documents are also validated against its
/// schema (fetched once, cached for `schema_ttl_seconds`). The operation's type is reported in
/// the output (`operation.type`: query or mutation) — the policy condition `graphql_operations`
/// decides who may run mutations. GraphQL errors are mapped faithfully: errors with no data fail
/// the call (code `graphql_errors`, every error in `details.errors`); data with errors succeeds
/// with `partial: true` and the errors alongside the data.
///
/// Instance configuration:
///
/// | key | meaning |
/// |---|---|
/// | `endpoint` | the GraphQL URL (default: `NOVA_GRAPHQL_ENDPOINT`); required |
/// | `headers` | headers sent with every request (e.g. `Authorization`); values never logged or returned |
/// | `default_timeout_ms` | timeout without a deadline (default 30000) |
/// | `max_response_bytes` | response size cap (default 10 MiB) |
/// | `validate` | validate documents against the introspected schema (default true) |
/// | `schema_ttl_seconds` | how long the introspected schema is reused (default 300) |
///
/// The endpoint is chosen by the operator, so the http driver's egress rules do not apply to it.
public struct GraphQLDriver: NovaDriver {
    /// The manifest: `graphql.query` and `graphql.schema`.
    public static let manifest: JSONValue = [
        "name": "graphql",
        "version": "1.0.0",
        "description": "GraphQL client for one configured endpoint: documents parsed and validated locally before sending, mutations marked, errors and partial data mapped faithfully.",
        "concurrency": "thread_safe",
        "permissions": ["network": true, "filesystem": false, "process": false],
        "tools": [
            [
                "name": "query",
                "description": "Run a GraphQL query or mutation (document, variables, operationName). The document is parsed and validated locally first. Errors without data fail the call; data with errors returns partial: true.",
                "inputSchema": [
                    "type": "object", "additionalProperties": false, "required": ["query"],
                    "properties": [
                        "query": ["type": "string", "minLength": 1, "maxLength": 1_000_000, "description": "The GraphQL document."],
                        "variables": ["type": ["object", "null"], "description": "Variable values."],
                        "operationName": ["type": ["string", "null"], "description": "Which operation to run when the document has several."],
                        "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 600_000],
                    ],
                ],
                "outputSchema": [
                    "type": "object", "required": ["data", "operation", "partial", "status", "elapsed_ms"],
                    "properties": [
                        "data": ["type": ["object", "null"]],
                        "errors": ["type": "array", "items": ["type": "object", "required": ["message"]]],
                        "extensions": ["type": "object"],
                        "operation": ["type": "object", "required": ["type", "name"], "properties": [
                            "type": ["enum": ["query", "mutation"]], "name": ["type": ["string", "null"]],
                        ]],
                        "partial": ["type": "boolean", "description": "data came with errors (some fields are null)."],
                        "status": ["type": "integer", "description": "HTTP status of the response."],
                        "elapsed_ms": ["type": "number", "minimum": 0],
                    ],
                ],
                "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true],
                "policyInputs": ["graphql_document": "/query"],
                "examples": [
                    ["input": ["query": "{ __typename }"]],
                    ["input": ["query": "{ unclosed("], "error": "graphql_syntax",
                     "description": "a document that does not parse is refused before anything is sent"],
                ],
            ],
            [
                "name": "schema",
                "description": "Fetch the endpoint's schema by introspection and return it as SDL, with the root type names.",
                "inputSchema": [
                    "type": "object", "additionalProperties": false,
                    "properties": [
                        "include_introspection": ["type": "boolean", "default": false, "description": "Also return the raw __schema introspection result."],
                        "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 600_000],
                    ],
                ],
                "outputSchema": [
                    "type": "object", "required": ["sdl", "query_type", "mutation_type", "subscription_type", "type_count"],
                    "properties": [
                        "sdl": ["type": "string"],
                        "query_type": ["type": "string"],
                        "mutation_type": ["type": ["string", "null"]],
                        "subscription_type": ["type": ["string", "null"]],
                        "type_count": ["type": "integer", "minimum": 0],
                        "introspection": ["type": "object"],
                    ],
                ],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": true],
                "examples": [["input": [:]]],
            ],
        ],
    ]

    let state: GraphQLState

    /// Reads the configuration; fails without an endpoint.
    public init(configuration: JSONValue) throws {
        state = try GraphQLState(configuration, environment: ProcessInfo.processInfo.environment)
    }

    /// Parsing happens in `call`; everything here does I/O.
    public func callNow(_ call: ToolCall) throws -> ToolOutput? {
        guard call.tool == "query" || call.tool == "schema" else { throw DriverError.unknownTool(call.tool) }
        return nil
    }

    /// Runs one tool.
    public func call(_ call: ToolCall) async throws -> ToolOutput {
        switch call.tool {
        case "query": return .json(try await state.query(call))
        case "schema": return .json(try await state.schemaTool(call))
        default: throw DriverError.unknownTool(call.tool)
        }
    }
}

/// One instance: settings, the HTTP client and the cached schema.
final class GraphQLState: Sendable {
    let endpoint: String
    let endpointDisplay: String
    let headers: [(String, String)]
    let defaultTimeoutMs: Int
    let maxResponseBytes: Int
    let validate: Bool
    let schemaTTLNanos: Int64
    let client: HTTPClient

    struct CachedSchema: Sendable {
        /// nil when introspection is not available (validation is then skipped).
        let schema: GraphQLSchema?
        let sdl: String?
        let raw: JSONValue?
        let fetchedAt: Int64
    }
    private let cache = Mutex<CachedSchema?>(nil)

    static let keys: Set<String> = ["endpoint", "headers", "default_timeout_ms", "max_response_bytes", "validate", "schema_ttl_seconds"]

    init(_ config: JSONValue, environment: [String: String]) throws {
        let r = try ConfigReader(config, driver: "graphql", known: Self.keys)
        guard let endpoint = try r.string("endpoint") ?? environment["NOVA_GRAPHQL_ENDPOINT"], !endpoint.isEmpty else {
            throw DriverError.invalidArgument("graphql: no endpoint — set \"endpoint\" in the driver configuration or NOVA_GRAPHQL_ENDPOINT")
        }
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil,
              url.user == nil, url.password == nil else {
            throw DriverError.invalidArgument("graphql: endpoint must be an http(s) URL without credentials")
        }
        self.endpoint = endpoint
        self.endpointDisplay = "\(scheme)://\(url.host ?? "")\(url.port.map { ":\($0)" } ?? "")\(url.path)"
        var hs: [(String, String)] = []
        for (k, v) in (try r.stringMap("headers") ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard !v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                throw DriverError.invalidArgument("graphql: header \(k) contains CR, LF or NUL")
            }
            hs.append((k, v))
        }
        self.headers = hs
        defaultTimeoutMs = try r.int("default_timeout_ms", default: 30_000, in: 1...3_600_000)
        maxResponseBytes = try r.int("max_response_bytes", default: 10 * 1024 * 1024, in: 1...(1 << 30))
        validate = try r.bool("validate", default: true)
        schemaTTLNanos = Int64(try r.int("schema_ttl_seconds", default: 300, in: 0...86_400)) * 1_000_000_000
        var c = HTTPClient.Configuration()
        c.redirectConfiguration = .disallow
        c.timeout = .init(connect: .seconds(10), read: nil)
        c.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: c)
    }

    deinit {
        let client = self.client
        client.shutdown { _ in _ = client }
    }

    struct Selected {
        let type: String
        let name: String?
    }

    /// Parses `source` and picks the operation to run (GraphQL's rules for operationName).
    static func select(_ source: String, operationName: String?) throws -> (Document, Selected) {
        let document: Document
        do { document = try GraphQL.parse(source: source) } catch let e as GraphQLError {
            throw DriverError(.invalidArgument, code: "graphql_syntax", message: "GraphQL syntax error: \(e.message)",
                              details: ["locations": locations(e)])
        }
        let ops = document.definitions.compactMap { $0 as? OperationDefinition }
        guard !ops.isEmpty else { throw DriverError(.invalidArgument, code: "graphql_no_operation", message: "the document defines no operation") }
        let op: OperationDefinition
        if let operationName {
            guard let found = ops.first(where: { $0.name?.value == operationName }) else {
                throw DriverError(.invalidArgument, code: "graphql_unknown_operation", message: "the document has no operation named \(operationName)")
            }
            op = found
        } else {
            guard ops.count == 1 else {
                throw DriverError(.invalidArgument, code: "graphql_operation_name_required", message: "the document has \(ops.count) operations: give operationName")
            }
            op = ops[0]
        }
        switch op.operation {
        case .query: return (document, Selected(type: "query", name: op.name?.value))
        case .mutation: return (document, Selected(type: "mutation", name: op.name?.value))
        case .subscription:
            throw DriverError(.unsupported, code: "unsupported_operation", message: "subscriptions are not supported (graphql.query runs one request/response)")
        }
    }

    static func locations(_ e: GraphQLError) -> JSONValue {
        .array(e.locations.map { ["line": .int($0.line), "column": .int($0.column)] })
    }

    /// `graphql.query`.
    func query(_ call: ToolCall) async throws -> JSONValue {
        let started = monotonicNanos()
        let input = try call.input()
        let source = try Input.requiredString(input, "query")
        let deadline = CallDeadline(call: call, inputTimeoutMs: try Input.int(input, "timeout_ms", in: 1...600_000), defaultTimeoutMs: defaultTimeoutMs)
        var variables: JSONValue = .null
        if let v = input["variables"], !v.isNull {
            guard v.objectValue != nil else { throw DriverError.invalidArgument("variables must be an object") }
            variables = v
        }
        var operationName: String?
        if let n = input["operationName"], !n.isNull {
            guard let s = n.stringValue else { throw DriverError.invalidArgument("operationName must be a string") }
            operationName = s
        }
        let (document, selected) = try Self.select(source, operationName: operationName)
        if validate { try await validateDocument(document, deadline: deadline) }

        var payload: [String: JSONValue] = ["query": .string(source)]
        if !variables.isNull { payload["variables"] = variables }
        if let operationName { payload["operationName"] = .string(operationName) }
        let (status, body) = try await post(.object(payload), deadline: deadline, what: "graphql.query")
        let result = try Self.mapResponse(status: status, body: body, what: "graphql.query")
        if selected.type == "mutation" {
            call.log(.info, "graphql.query: mutation \(selected.name ?? "(anonymous)") → HTTP \(status)\(result.errors.isEmpty ? "" : ", \(result.errors.count) errors")")
        }
        var out: [String: JSONValue] = [
            "data": result.data,
            "operation": ["type": .string(selected.type), "name": selected.name.map { .string($0) } ?? .null],
            "partial": .bool(!result.errors.isEmpty),
            "status": .int(status),
            "elapsed_ms": .double(elapsedMilliseconds(since: started)),
        ]
        if !result.errors.isEmpty { out["errors"] = .array(result.errors) }
        if let ext = result.extensions { out["extensions"] = ext }
        return .object(out)
    }

    /// Validates against the cached schema; on failure with a schema older than 5 s, refreshes
    /// the schema once and validates again (the server may have changed).
    func validateDocument(_ document: Document, deadline: CallDeadline) async throws {
        var cached = try await schema(deadline: deadline, refresh: false)
        for round in 0..<2 {
            guard let schema = cached.schema else { return }
            let errors = GraphQL.validate(schema: schema, ast: document)
            if errors.isEmpty { return }
            if round == 0 && monotonicNanos() - cached.fetchedAt > 5_000_000_000 {
                cached = try await self.schema(deadline: deadline, refresh: true)
                continue
            }
            let list: [JSONValue] = errors.map { ["message": .string($0.message), "locations": Self.locations($0)] }
            throw DriverError(.invalidArgument, code: "graphql_validation",
                              message: "the document is not valid for the endpoint's schema: \(errors[0].message)\(errors.count > 1 ? " (+\(errors.count - 1) more)" : "")",
                              details: ["errors": .array(list)])
        }
    }

    /// The cached schema, fetched by introspection when missing or expired.
    func schema(deadline: CallDeadline, refresh: Bool) async throws -> CachedSchema {
        if !refresh, let c = cache.withLock({ $0 }), monotonicNanos() - c.fetchedAt < schemaTTLNanos { return c }
        let fetched: CachedSchema
        do {
            let raw = try await introspect(deadline: deadline)
            let sdl = try IntrospectionSDL.sdl(raw)
            fetched = CachedSchema(schema: try? GraphQL.buildSchema(source: sdl), sdl: sdl, raw: raw, fetchedAt: monotonicNanos())
        } catch let e as DriverError where e.code == "graphql_errors" || e.code == "invalid_response" {
            // The server refuses introspection: run without local validation.
            fetched = CachedSchema(schema: nil, sdl: nil, raw: nil, fetchedAt: monotonicNanos())
        } catch is IntrospectionSDL.Invalid {
            fetched = CachedSchema(schema: nil, sdl: nil, raw: nil, fetchedAt: monotonicNanos())
        }
        cache.withLock { $0 = fetched }
        return fetched
    }

    func introspect(deadline: CallDeadline) async throws -> JSONValue {
        let (status, body) = try await post(["query": .string(IntrospectionSDL.query), "operationName": "IntrospectionQuery"],
                                            deadline: deadline, what: "graphql introspection")
        let result = try Self.mapResponse(status: status, body: body, what: "graphql introspection")
        guard let schema = result.data["__schema"], schema.objectValue != nil else {
            throw DriverError.tool("invalid_response", "the introspection result has no __schema")
        }
        return schema
    }

    /// `graphql.schema`.
    func schemaTool(_ call: ToolCall) async throws -> JSONValue {
        let input = try call.input()
        let deadline = CallDeadline(call: call, inputTimeoutMs: try Input.int(input, "timeout_ms", in: 1...600_000), defaultTimeoutMs: defaultTimeoutMs)
        let raw = try await introspect(deadline: deadline)
        let sdl: String
        do { sdl = try IntrospectionSDL.sdl(raw) } catch {
            throw DriverError.tool("invalid_response", "the introspection result cannot be read: \(error)")
        }
        cache.withLock { $0 = CachedSchema(schema: try? GraphQL.buildSchema(source: sdl), sdl: sdl, raw: raw, fetchedAt: monotonicNanos()) }
        var out: [String: JSONValue] = [
            "sdl": .string(sdl),
            "query_type": raw["queryType"]?["name"] ?? .null,
            "mutation_type": raw["mutationType"]?["name"] ?? .null,
            "subscription_type": raw["subscriptionType"]?["name"] ?? .null,
            "type_count": .int((raw["types"]?.arrayValue ?? []).filter { !($0["name"]?.stringValue ?? "").hasPrefix("__") }.count),
        ]
        if try Input.bool(input, "include_introspection") == true { out["introspection"] = raw }
        return .object(out)
    }

    /// POSTs a GraphQL request; returns the HTTP status and the body (size-capped).
    func post(_ payload: JSONValue, deadline: CallDeadline, what: String) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/graphql-response+json, application/json")
        request.headers.add(name: "User-Agent", value: "nova-host-graphql/1.0")
        for (k, v) in headers { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: payload.serializedBytes()))
        let client = self.client, maxBytes = maxResponseBytes, display = endpointDisplay
        let req = request
        do {
            return try await withDeadline(deadline, what) {
                let left = deadline.remainingNanos
                let response = try await client.execute(req, timeout: .nanoseconds(max(1, left)))
                var bytes: [UInt8] = []
                for try await chunk in response.body {
                    if bytes.count + chunk.readableBytes > maxBytes {
                        throw DriverError.tool("response_too_large", "\(what): the response is larger than \(maxBytes) bytes", details: ["limit": .int(maxBytes)])
                    }
                    bytes.append(contentsOf: chunk.readableBytesView)
                }
                return (Int(response.status.code), bytes)
            }
        } catch let e as DriverError {
            throw e
        } catch {
            if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
                throw deadline.error(what)
            }
            if error is CancellationError || (error as? HTTPClientError) == .cancelled {
                throw deadline.hasPassed ? deadline.error(what) : DriverError(.cancelled, code: "cancelled", message: "\(what): cancelled")
            }
            if deadline.hasPassed { throw deadline.error(what) }
            throw DriverError.tool("connection_failed", "\(what): cannot reach \(display): \(error)")
        }
    }

    struct Mapped {
        var data: JSONValue
        var errors: [JSONValue]
        var extensions: JSONValue?
    }

    /// Every error's message with its path (up to five, then a count), so that the message
    /// alone is faithful where a host keeps only `code` and `message`.
    static func summary(_ errors: [JSONValue], status: Int) -> String {
        guard !errors.isEmpty else { return "HTTP \(status) with no data" }
        var parts: [String] = []
        for e in errors.prefix(5) {
            var text = e["message"]?.stringValue ?? "(no message)"
            if let path = e["path"]?.arrayValue, !path.isEmpty {
                text += " [at " + path.map { $0.stringValue ?? $0.serialized() }.joined(separator: ".") + "]"
            }
            parts.append(text)
        }
        if errors.count > 5 { parts.append("+\(errors.count - 5) more errors") }
        return parts.joined(separator: "; ")
    }

    /// A GraphQL response as the spec defines it: errors without data fail; data with errors is
    /// partial; a body that is not a GraphQL response fails with the HTTP status.
    static func mapResponse(status: Int, body: [UInt8], what: String) throws -> Mapped {
        let excerpt = String(decoding: body.prefix(1024), as: UTF8.self)
        guard let json = try? JSONValue.parse(body), let obj = json.objectValue, obj["data"] != nil || obj["errors"] != nil else {
            if !(200..<300).contains(status) {
                throw DriverError.tool("http_status", "\(what): HTTP \(status) without a GraphQL response", details: ["status": .int(status), "body": .string(excerpt)])
            }
            throw DriverError.tool("invalid_response", "\(what): the response is not a GraphQL response", details: ["status": .int(status), "body": .string(excerpt)])
        }
        let errors = obj["errors"]?.arrayValue ?? []
        let data = obj["data"] ?? .null
        if data.isNull && !errors.isEmpty || data.isNull && !(200..<300).contains(status) {
            var details: [String: JSONValue] = ["errors": .array(errors), "data": .null, "status": .int(status)]
            if let ext = obj["extensions"] { details["extensions"] = ext }
            throw DriverError.tool("graphql_errors", "\(what): \(summary(errors, status: status))", details: details)
        }
        guard data.isNull || data.objectValue != nil else {
            throw DriverError.tool("invalid_response", "\(what): data is neither an object nor null", details: ["status": .int(status)])
        }
        return Mapped(data: data, errors: errors, extensions: obj["extensions"])
    }
}

/// The driver's ABI entry point (`nova_driver_init`, see nova_driver.h).
@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(GraphQLDriver.self, host: host, table: table)
}
