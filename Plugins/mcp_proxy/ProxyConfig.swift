import DriverKit
import DriverSupport
import Foundation
import JSON

/// How one upstream MCP server is reached.
enum UpstreamTransport: Sendable {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout (MCP stdio).
    case stdio(program: String, arguments: [String], environment: [String], workingDirectory: String)
    /// MCP streamable HTTP: JSON-RPC POSTed to one URL, answers as JSON or an SSE stream.
    case http(url: String, headers: [(String, String)])
}

/// One configured upstream server: its namespace and how to reach it.
struct UpstreamConfig: Sendable {
    /// The namespace: its tools are listed as `<name>.<tool>`.
    let name: String
    let transport: UpstreamTransport
    /// Whether the server's annotations (`readOnlyHint`…) are believed. Policy conditions such as
    /// `read_only` read them, so an untrusted server's tools are listed as MCP's defaults for an
    /// unknown tool: not read-only, destructive, not idempotent, open-world.
    let trustAnnotations: Bool
    /// Only these remote tools (names as the server lists them); nil: all.
    let allowedTools: Set<String>?
    /// Limits of this server's calls and connections.
    let callTimeoutMs: Int
    let connectTimeoutMs: Int
    /// Restart backoff: the first delay, doubled per consecutive failure up to the maximum.
    let restartInitialMs: Int
    let restartMaxMs: Int
    /// The largest single message accepted from the server.
    let maxMessageBytes: Int

    /// Where the server is, for messages and `mcp_proxy.servers` (never header or env values).
    var displayTarget: String {
        switch transport {
        case .stdio(let program, let arguments, _, _): return ([program] + arguments).joined(separator: " ")
        case .http(let url, _): return Self.withoutQuery(url)
        }
    }

    /// `url` without its query and fragment, which may carry tokens: what messages show.
    static func withoutQuery(_ url: String) -> String {
        String(url.prefix { $0 != "?" && $0 != "#" })
    }
    var transportName: String {
        if case .stdio = transport { return "stdio" }
        return "http"
    }
}

/// The instance configuration of `mcp_proxy` (docs/mcp_proxy.md).
struct ProxyConfig: Sendable {
    let servers: [UpstreamConfig]
    /// How long `create` waits for the servers' first connections (they keep trying after).
    let startupTimeoutMs: Int

    static let serverKeys: Set<String> = ["name", "command", "args", "env", "inherit_env", "cwd", "url", "headers", "trust_annotations",
                                          "tools", "call_timeout_ms", "connect_timeout_ms", "restart_initial_ms", "restart_max_ms",
                                          "max_message_bytes"]

    /// Parses the configuration; `environment` resolves `${env:NAME}` (the host's environment).
    init(_ json: JSONValue, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let reader = try ConfigReader(json, driver: "mcp_proxy", known: ["servers", "startup_timeout_ms"])
        startupTimeoutMs = try reader.int("startup_timeout_ms", default: 10_000, in: 0...120_000)
        guard let list = reader.object["servers"], !list.isNull else {
            servers = []
            return
        }
        guard let items = list.arrayValue else { throw DriverError.invalidArgument("mcp_proxy configuration: servers must be an array of objects") }
        var seen = Set<String>()
        servers = try items.enumerated().map { index, item in
            let server = try Self.server(item, at: "servers[\(index)]", environment: environment)
            guard seen.insert(server.name).inserted else {
                throw DriverError.invalidArgument("mcp_proxy configuration: servers[\(index)].name '\(server.name)' is used twice")
            }
            return server
        }
    }

    private static func server(_ json: JSONValue, at path: String, environment: [String: String]) throws -> UpstreamConfig {
        let r = try ConfigReader(json, driver: "mcp_proxy configuration: \(path)", known: serverKeys)
        func fail(_ message: String) -> DriverError { DriverError.invalidArgument("mcp_proxy configuration: \(path).\(message)") }
        guard let name = try r.string("name") else { throw fail("name is missing") }
        // The namespace is the first part of `<server>.<tool>`: no dots, and a tool-name part.
        guard !name.isEmpty, name.utf8.count <= 64, name.utf8.allSatisfy(isNamePartByte) else {
            throw fail("name '\(name)' must be 1 to 64 characters of A-Z a-z 0-9 _ - (it becomes the namespace <name>.<tool>)")
        }
        guard name != "servers" else { throw fail("name 'servers' is taken by the tool mcp_proxy.servers") }
        let command = try r.strings("command")
        let url = try r.string("url")
        let transport: UpstreamTransport
        switch (command, url) {
        case (let argv?, nil):
            guard let program = argv.first, !program.isEmpty else { throw fail("command must name a program: [\"/usr/bin/python3\", \"server.py\"]") }
            for key in ["headers"] where r.object[key] != nil { throw fail("\(key) is for url servers, not command servers") }
            let extra = try r.strings("args") ?? []
            var env: [String: String] = [:]
            // A child sees only what it is given: never the host's whole environment (API keys,
            // NOVA_* settings). PATH, HOME and the locale unless configured otherwise.
            for key in (try r.strings("inherit_env")) ?? ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"] {
                if let value = environment[key] { env[key] = value }
            }
            for (key, value) in try r.stringMap("env") ?? [:] {
                guard !key.isEmpty, !key.contains("=") else { throw fail("env key '\(key)' is not a variable name") }
                env[key] = try expand(value, field: "\(path).env.\(key)", environment: environment)
            }
            let cwd = try r.string("cwd") ?? FileManager.default.currentDirectoryPath
            guard cwd.hasPrefix("/") else { throw fail("cwd must be an absolute path") }
            let resolved = try resolveProgram(program, path: env["PATH"] ?? environment["PATH"] ?? "/usr/bin:/bin", field: "\(path).command")
            transport = .stdio(program: resolved, arguments: Array(argv.dropFirst()) + extra,
                               environment: env.keys.sorted().map { "\($0)=\(env[$0]!)" }, workingDirectory: cwd)
        case (nil, let url?):
            for key in ["args", "env", "inherit_env", "cwd"] where r.object[key] != nil { throw fail("\(key) is for command servers, not url servers") }
            guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme), parsed.host != nil else {
                throw fail("url must be an absolute http:// or https:// URL")
            }
            guard parsed.user == nil, parsed.password == nil else { throw fail("url must not carry credentials: put them in headers from the environment") }
            var headers: [(String, String)] = []
            for (key, value) in (try r.stringMap("headers") ?? [:]).sorted(by: { $0.key < $1.key }) {
                let lower = key.lowercased()
                guard !["host", "content-length", "transfer-encoding", "connection", "mcp-session-id", "mcp-protocol-version", "accept", "content-type"].contains(lower) else {
                    throw fail("headers.\(key) is set by the driver itself")
                }
                let expanded = try expand(value, field: "\(path).headers.\(key)", environment: environment)
                guard !expanded.contains("\r"), !expanded.contains("\n") else { throw fail("headers.\(key) must not contain CR or LF") }
                headers.append((key, expanded))
            }
            transport = .http(url: url, headers: headers)
        case (nil, nil): throw fail("needs either command (a stdio server) or url (a streamable HTTP server)")
        default: throw fail("has both command and url: give one")
        }
        let initial = try r.int("restart_initial_ms", default: 500, in: 10...600_000)
        return UpstreamConfig(
            name: name, transport: transport,
            trustAnnotations: try r.bool("trust_annotations", default: false),
            allowedTools: try r.strings("tools").map(Set.init),
            callTimeoutMs: try r.int("call_timeout_ms", default: 60_000, in: 1...3_600_000),
            connectTimeoutMs: try r.int("connect_timeout_ms", default: 10_000, in: 1...600_000),
            restartInitialMs: initial,
            restartMaxMs: max(initial, try r.int("restart_max_ms", default: 30_000, in: 10...3_600_000)),
            maxMessageBytes: try r.int("max_message_bytes", default: 16 << 20, in: 1024...(256 << 20)))
    }

    /// `${env:NAME}` → the host's variable NAME (an error when unset: a missing secret must not
    /// turn into an empty header); `$${` → a literal `${`. Anything else is literal.
    static func expand(_ value: String, field: String, environment: [String: String]) throws -> String {
        var out = ""
        var rest = Substring(value)
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex, rest[rest.index(before: start.lowerBound)] == "$" {
                out += rest[..<rest.index(before: start.lowerBound)] + "${"
                rest = rest[start.upperBound...]
                continue
            }
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw DriverError.invalidArgument("mcp_proxy configuration: \(field): unterminated ${")
            }
            let reference = rest[start.upperBound..<end]
            guard reference.hasPrefix("env:"), case let name = String(reference.dropFirst(4)), !name.isEmpty else {
                throw DriverError.invalidArgument("mcp_proxy configuration: \(field): write ${env:NAME} to read the environment variable NAME")
            }
            guard let v = environment[name] else {
                throw DriverError.invalidArgument("mcp_proxy configuration: \(field) reads ${env:\(name)}, which is not set in nova-host's environment")
            }
            out += v
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }

    /// An absolute path for `program`: as given when it has a slash, else the first executable
    /// in `path` (the child's PATH), as execvp would find it.
    static func resolveProgram(_ program: String, path: String, field: String) throws -> String {
        if program.contains("/") {
            guard program.hasPrefix("/") else { throw DriverError.invalidArgument("mcp_proxy configuration: \(field): '\(program)' must be an absolute path or a name found in PATH") }
            return program
        }
        for dir in path.split(separator: ":") where dir.hasPrefix("/") {
            let candidate = "\(dir)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw DriverError.invalidArgument("mcp_proxy configuration: \(field): '\(program)' was not found in PATH (\(path))")
    }
}

/// `A-Z a-z 0-9 _ -`: the bytes of one part of a tool name.
func isNamePartByte(_ c: UInt8) -> Bool {
    (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
}
