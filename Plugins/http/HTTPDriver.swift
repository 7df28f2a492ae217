import AsyncHTTPClient
import DriverKit
import DriverSupport
import Foundation
import JSON
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `http`: one tool, `http.request`, over AsyncHTTPClient, with egress safety built in.
///
/// Every hop of a request (the first URL and each redirect) is resolved with getaddrinfo by the
/// driver itself; every address the name resolves to must pass the instance's `EgressPolicy`
/// (public unicast only unless the configuration allows more), and the connection is pinned to
/// the checked address (AsyncHTTPClient's DNS override), so a second DNS answer cannot swap it
/// (DNS rebinding). When the connection is up, its peer address is checked once more. Header
/// values are never logged; `Set-Cookie` values are redacted from the output.
///
/// Instance configuration (all optional):
///
/// | key | meaning |
/// |---|---|
/// | `allow_private` | `true` allows loopback, private, link-local… destinations (default false) |
/// | `allow_cidrs` | ranges allowed even though not public, e.g. `["127.0.0.0/8"]` |
/// | `deny_cidrs` | ranges always refused, even if public |
/// | `allowed_hosts` | host globs every hop must match (`*.example.com`); absent = any host |
/// | `follow_cross_host_redirects` | follow redirects to another host (default false) |
/// | `max_redirects` | cap and default for `max_redirects` (default 5, at most 20) |
/// | `max_response_bytes` | cap and default for the body size (default 10 MiB) |
/// | `max_retries` | cap and default for `retries` (default 2, at most 10) |
/// | `default_timeout_ms` | timeout when neither the step nor the input gives one (default 30000) |
/// | `user_agent` | the User-Agent header (default `nova-host-http/1.0`) |
///
/// Without `allow_private`/`allow_cidrs` in the configuration, the environment variables
/// `NOVA_HTTP_ALLOW_PRIVATE=1` and `NOVA_HTTP_ALLOW_CIDRS=cidr,cidr` are read instead.
public struct HTTPDriver: NovaDriver {
    /// The manifest: `http.request` with full input and output schemas.
    public static let manifest: JSONValue = [
        "name": "http",
        "version": "1.0.0",
        "description": "HTTP and HTTPS requests with egress safety: non-public destinations refused unless configured, DNS pinned per hop, redirects re-checked, size cap, retries for idempotent methods.",
        "concurrency": "thread_safe",
        "permissions": ["network": true, "filesystem": false, "process": false],
        "tools": [[
            "name": "request",
            "description": "Send one HTTP request and return status, headers and body (parsed when JSON). Idempotent methods are retried on connection errors, 429 and 5xx with backoff; redirects are followed on the same host.",
            "inputSchema": inputSchema,
            "outputSchema": outputSchema,
            "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true],
            "policyInputs": ["url": "/url"],
            "examples": [
                ["input": ["url": "http://169.254.169.254/latest/meta-data/"], "error": "egress_denied",
                 "description": "the cloud metadata address is refused before any connection"],
            ],
        ]],
    ]

    static let headerMap: JSONValue = [
        "type": "object",
        "propertyNames": ["pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"],
        "additionalProperties": ["type": "string", "maxLength": 8192],
    ]

    static let inputSchema: JSONValue = [
        "type": "object",
        "additionalProperties": false,
        "required": ["url"],
        "properties": [
            "method": ["enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], "default": "GET",
                       "description": "HTTP method. GET, HEAD, OPTIONS, PUT and DELETE are idempotent and retried."],
            "url": ["type": "string", "minLength": 1, "maxLength": 8192, "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://",
                    "description": "Absolute http:// or https:// URL, without user:password@."],
            "headers": headerMap.merging(["description": "Request headers. Values of Authorization, Cookie, *-Token, *-Key… are redacted in episodes."]),
            "secret_headers": headerMap.merging(["x-secret": true, "description": "Headers whose values are secret: sent like headers, always redacted in episodes and never logged."]),
            "query": [
                "type": "object",
                "description": "Query parameters appended to the URL (arrays repeat the key).",
                "additionalProperties": ["type": ["string", "number", "boolean", "array"], "items": ["type": ["string", "number", "boolean"]]],
            ],
            "body": ["description": "Request body: a string is sent as text (text/plain), any other JSON value as JSON (application/json) unless a Content-Type header says otherwise."],
            "timeout_ms": ["type": "integer", "minimum": 1, "maximum": 600_000, "description": "Timeout for the whole call, retries and redirects included (the step's deadline wins if earlier)."],
            "max_response_bytes": ["type": "integer", "minimum": 0, "maximum": 1_073_741_824, "description": "Fail with response_too_large past this many body bytes (capped by the instance)."],
            "follow_redirects": ["type": "boolean", "default": true],
            "max_redirects": ["type": "integer", "minimum": 0, "maximum": 20],
            "retries": ["type": "integer", "minimum": 0, "maximum": 10, "description": "Extra attempts for idempotent methods (capped by the instance)."],
            "response_body": ["enum": ["auto", "json", "text", "base64"], "default": "auto",
                              "description": "How to return the body: auto parses JSON content types, returns text when UTF-8, else base64."],
            "fail_on_http_error": ["type": "boolean", "default": false, "description": "Fail the call (code http_status) when the final status is 400 or more."],
        ],
    ]

    static let outputSchema: JSONValue = [
        "type": "object",
        "required": ["status", "ok", "headers", "body", "body_encoding", "bytes", "url", "redirects", "attempts", "elapsed_ms", "address"],
        "properties": [
            "status": ["type": "integer", "minimum": 100, "maximum": 999],
            "ok": ["type": "boolean", "description": "status is 2xx"],
            "headers": ["type": "object", "additionalProperties": ["type": "string"], "description": "Lower-case names; repeated headers joined with \", \"; set-cookie redacted."],
            "body": ["description": "Parsed JSON, text, base64 text, or null when empty."],
            "body_encoding": ["enum": ["json", "text", "base64", "empty"]],
            "bytes": ["type": "integer", "minimum": 0],
            "url": ["type": "string", "description": "The final URL (after redirects)."],
            "redirects": ["type": "array", "items": ["type": "string"], "description": "URLs redirected to, in order."],
            "attempts": ["type": "integer", "minimum": 1, "description": "Attempts made for the final hop."],
            "elapsed_ms": ["type": "number", "minimum": 0],
            "address": ["type": "string", "description": "The IP address the final response came from."],
        ],
    ]

    let state: HTTPState

    /// Reads the configuration (see the type's documentation).
    public init(configuration: JSONValue) throws {
        state = HTTPState(settings: try HTTPSettings(configuration, environment: ProcessInfo.processInfo.environment))
    }

    /// Everything is network I/O: no synchronous fast path.
    public func callNow(_ call: ToolCall) throws -> ToolOutput? {
        guard call.tool == "request" else { throw DriverError.unknownTool(call.tool) }
        return nil
    }

    /// Runs `http.request`.
    public func call(_ call: ToolCall) async throws -> ToolOutput {
        guard call.tool == "request" else { throw DriverError.unknownTool(call.tool) }
        return .json(try await state.request(call))
    }
}

extension JSONValue {
    fileprivate func merging(_ other: [String: JSONValue]) -> JSONValue {
        var obj = objectValue ?? [:]
        for (k, v) in other { obj[k] = v }
        return .object(obj)
    }
}

/// The instance configuration, checked.
struct HTTPSettings: Sendable {
    var egress = EgressPolicy()
    var allowedHosts: [String]?
    var followCrossHostRedirects = false
    var maxRedirects = 5
    var maxResponseBytes = 10 * 1024 * 1024
    var maxRetries = 2
    var defaultTimeoutMs = 30_000
    var userAgent = "nova-host-http/1.0"

    static let keys: Set<String> = ["allow_private", "allow_cidrs", "deny_cidrs", "allowed_hosts", "follow_cross_host_redirects",
                                    "max_redirects", "max_response_bytes", "max_retries", "default_timeout_ms", "user_agent"]

    init(_ config: JSONValue, environment: [String: String]) throws {
        let r = try ConfigReader(config, driver: "http", known: Self.keys)
        func cidrs(_ list: [String], _ key: String) throws -> [CIDR] {
            try list.map { text in
                guard let c = CIDR(text) else { throw DriverError.invalidArgument("http configuration: \(key): '\(text)' is not an address or CIDR range") }
                return c
            }
        }
        if r.object["allow_private"] == nil && r.object["allow_cidrs"] == nil {
            egress.allowPrivate = environment["NOVA_HTTP_ALLOW_PRIVATE"] == "1"
            let list = (environment["NOVA_HTTP_ALLOW_CIDRS"] ?? "").split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
            egress.allowCIDRs = try cidrs(list, "NOVA_HTTP_ALLOW_CIDRS")
        } else {
            egress.allowPrivate = try r.bool("allow_private", default: false)
            egress.allowCIDRs = try cidrs(r.strings("allow_cidrs") ?? [], "allow_cidrs")
        }
        egress.denyCIDRs = try cidrs(r.strings("deny_cidrs") ?? [], "deny_cidrs")
        allowedHosts = try r.strings("allowed_hosts")?.map { $0.lowercased() }
        followCrossHostRedirects = try r.bool("follow_cross_host_redirects", default: false)
        maxRedirects = try r.int("max_redirects", default: 5, in: 0...20)
        maxResponseBytes = try r.int("max_response_bytes", default: maxResponseBytes, in: 0...(1 << 30))
        maxRetries = try r.int("max_retries", default: 2, in: 0...10)
        defaultTimeoutMs = try r.int("default_timeout_ms", default: 30_000, in: 1...3_600_000)
        userAgent = try r.string("user_agent") ?? userAgent
    }

    /// True if `host` matches `allowed_hosts` (or there is no such list).
    func hostAllowed(_ host: String) -> Bool {
        guard let allowedHosts else { return true }
        return allowedHosts.contains { Self.glob($0, host.lowercased()) }
    }

    /// `*` matches any run of characters (including dots), everything else literally.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && p[pi] == UInt8(ascii: "*") { star = pi; mark = ti; pi += 1 }
            else if pi < p.count && p[pi] == t[ti] { pi += 1; ti += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// A parsed, checked request target.
struct Target: Sendable {
    let url: String
    let scheme: String
    /// The host as AsyncHTTPClient sees it (`URL.host`, IPv6 brackets removed).
    let host: String
    let port: Int

    /// `scheme://host:port/path`, without query or fragment: what logs and errors show.
    var display: String {
        let h = host.contains(":") ? "[\(host)]" : host
        let path = URL(string: url)?.path ?? ""
        return "\(scheme)://\(h):\(port)\(path)"
    }

    init(_ text: String) throws {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased() else {
            throw DriverError.invalidArgument("url '\(text.prefix(200))' is not a valid absolute URL")
        }
        guard scheme == "http" || scheme == "https" else { throw DriverError.invalidArgument("url scheme must be http or https, not \(scheme)") }
        guard url.user == nil && url.password == nil else {
            throw DriverError.invalidArgument("url must not carry user:password@ — send credentials in secret_headers")
        }
        guard var host = url.host, !host.isEmpty else { throw DriverError.invalidArgument("url has no host") }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        // Drop any fragment: it is never sent.
        var clean = text
        if let hash = clean.firstIndex(of: "#") { clean = String(clean[..<hash]) }
        self.url = clean
        self.scheme = scheme
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
    }
}

/// Instance state: settings and the HTTP clients, one per (host, pinned address).
final class HTTPState: Sendable {
    let settings: HTTPSettings
    private let clients = Mutex<(map: [String: HTTPClient], order: [String])>(([:], []))
    static let maxClients = 64

    init(settings: HTTPSettings) { self.settings = settings }

    deinit {
        let all = clients.withLock { state in
            let values = Array(state.map.values)
            state.map = [:]
            state.order = []
            return values
        }
        for client in all { client.shutdown { _ in _ = client } }
    }

    struct PeerMismatch: Error, CustomStringConvertible {
        let expected: String
        let actual: String
        var description: String { "connected peer \(actual) is not the checked address \(expected)" }
    }

    /// The client whose connections go to `ip` for `host`, created on first use.
    func client(host: String, ip: IPAddress) -> HTTPClient {
        let key = "\(host)\u{0}\(ip)"
        let (client, evicted): (HTTPClient, HTTPClient?) = clients.withLock { state in
            if let c = state.map[key] {
                if state.order.last != key, let i = state.order.firstIndex(of: key) {
                    state.order.remove(at: i)
                    state.order.append(key)
                }
                return (c, nil)
            }
            var config = HTTPClient.Configuration()
            config.redirectConfiguration = .disallow
            config.dnsOverride = [host: ip.description]
            config.timeout = .init(connect: .seconds(10), read: nil)
            config.connectionPool = .init(idleTimeout: .seconds(30))
            // Fail fast on a refused connection; retries are the driver's decision (idempotent
            // methods only, bounded by the deadline).
            config.connectionPool.retryConnectionEstablishment = false
            let egress = settings.egress
            // Defense in depth: verify the address the socket is actually connected to.
            let verify: @Sendable (Channel) -> EventLoopFuture<Void> = { channel in
                guard let text = channel.remoteAddress?.ipAddress, let peer = IPAddress(text) else {
                    return channel.eventLoop.makeFailedFuture(PeerMismatch(expected: ip.description, actual: "unknown"))
                }
                if peer != ip || egress.refusal(peer) != nil {
                    return channel.eventLoop.makeFailedFuture(PeerMismatch(expected: ip.description, actual: peer.description))
                }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            config.http1_1ConnectionDebugInitializer = verify
            config.http2ConnectionDebugInitializer = verify
            let c = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: config)
            state.map[key] = c
            state.order.append(key)
            var evicted: HTTPClient?
            if state.order.count > Self.maxClients {
                let old = state.order.removeFirst()
                evicted = state.map.removeValue(forKey: old)
            }
            return (c, evicted)
        }
        if let evicted { evicted.shutdown { _ in _ = evicted } }
        return client
    }

    static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
    static let retryStatuses: Set<Int> = [429, 500, 502, 503, 504]
    static let forbiddenHeaders: Set<String> = ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
                                                "trailer", "proxy-authorization", "proxy-connection"]
    static let crossOriginDropped: Set<String> = ["authorization", "cookie", "proxy-authorization"]

    /// One `http.request` call.
    func request(_ call: ToolCall) async throws -> JSONValue {
        let started = monotonicNanos()
        let input = try call.input()
        let deadline = CallDeadline(call: call, inputTimeoutMs: try Input.int(input, "timeout_ms", in: 1...600_000),
                                    defaultTimeoutMs: settings.defaultTimeoutMs)
        var method = (input["method"]?.stringValue ?? "GET").uppercased()
        guard ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(method) else {
            throw DriverError.invalidArgument("method \(method) is not supported")
        }
        let maxBytes = min(try Input.int(input, "max_response_bytes", in: 0...(1 << 30)) ?? settings.maxResponseBytes, settings.maxResponseBytes)
        let follow = try Input.bool(input, "follow_redirects") ?? true
        let maxRedirects = min(try Input.int(input, "max_redirects", in: 0...20) ?? settings.maxRedirects, settings.maxRedirects)
        let retries = min(try Input.int(input, "retries", in: 0...10) ?? settings.maxRetries, settings.maxRetries)
        let bodyMode = input["response_body"]?.stringValue ?? "auto"
        let failOnHTTPError = try Input.bool(input, "fail_on_http_error") ?? false

        // Headers: plain and secret ones, checked against header injection.
        var headers: [(String, String)] = []
        for key in ["headers", "secret_headers"] {
            guard let obj = input[key]?.objectValue else { continue }
            for (name, value) in obj.sorted(by: { $0.key < $1.key }) {
                guard let v = value.stringValue else { throw DriverError.invalidArgument("\(key).\(name) must be a string") }
                guard !name.isEmpty, name.utf8.allSatisfy(Self.isTokenByte) else { throw DriverError.invalidArgument("\(key): '\(name)' is not a valid header name") }
                guard !v.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) else {
                    throw DriverError.invalidArgument("\(key).\(name): header values must not contain CR, LF or NUL")
                }
                guard !Self.forbiddenHeaders.contains(name.lowercased()) else { throw DriverError.invalidArgument("\(key): the \(name) header is set by the driver") }
                headers.append((name, v))
            }
        }
        if !headers.contains(where: { $0.0.lowercased() == "user-agent" }) { headers.append(("User-Agent", settings.userAgent)) }

        var body: [UInt8]?
        if let b = input["body"], !b.isNull {
            if let s = b.stringValue {
                body = Array(s.utf8)
                if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "text/plain; charset=utf-8")) }
            } else {
                body = b.serializedBytes()
                if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "application/json")) }
            }
        }

        var url = try Self.appendQuery(Input.requiredString(input, "url"), input["query"])
        var target = try Target(url)
        let origin = target
        var redirects: [String] = []
        while true {
            guard settings.hostAllowed(target.host) else {
                throw DriverError.tool("host_not_allowed", "\(target.host) is not in the http driver's allowed_hosts", details: ["host": .string(target.host)])
            }
            let ip = try await checkedAddress(for: target, deadline: deadline)
            let client = client(host: target.host, ip: ip)
            let attempts = Self.idempotent.contains(method) ? retries + 1 : 1
            let (response, attempt) = try await send(client, target: target, method: method, headers: headers, body: body,
                                                     attempts: attempts, maxBytes: maxBytes, deadline: deadline, call: call)
            let status = Int(response.status)
            if follow, [301, 302, 303, 307, 308].contains(status), let location = response.headers.first(where: { $0.0.lowercased() == "location" })?.1 {
                guard redirects.count < maxRedirects else {
                    throw DriverError.tool("too_many_redirects", "more than \(maxRedirects) redirects (last to \(Self.displayLocation(location, base: url)))",
                                           details: ["redirects": .array(redirects.map { .string($0) })])
                }
                guard let next = URL(string: location, relativeTo: URL(string: url))?.absoluteString else {
                    throw DriverError.tool("bad_redirect", "the Location header is not a URL")
                }
                let nextTarget: Target
                do { nextTarget = try Target(next) } catch {
                    throw DriverError.tool("bad_redirect", "redirect to an unusable URL: \((error as? DriverError)?.message ?? "\(error)")")
                }
                let sameHost = nextTarget.host.lowercased() == origin.host.lowercased()
                let downgrade = target.scheme == "https" && nextTarget.scheme == "http"
                if (!sameHost || downgrade) && !settings.followCrossHostRedirects {
                    throw DriverError.tool("redirect_blocked",
                                           "refusing to follow a redirect from \(target.host) to \(nextTarget.scheme)://\(nextTarget.host) (another host or an https→http downgrade; set follow_cross_host_redirects in the driver configuration to allow it)",
                                           details: ["location": .string(nextTarget.display), "status": .int(status)])
                }
                let crossOrigin = nextTarget.host.lowercased() != target.host.lowercased() || nextTarget.scheme != target.scheme || nextTarget.port != target.port
                if crossOrigin { headers.removeAll { Self.crossOriginDropped.contains($0.0.lowercased()) } }
                if status == 303 || ((status == 301 || status == 302) && method == "POST") {
                    if method != "HEAD" { method = "GET" }
                    body = nil
                    headers.removeAll { $0.0.lowercased().hasPrefix("content-") }
                }
                redirects.append(next)
                url = next
                target = nextTarget
                continue
            }
            call.log(.debug, "\(method) \(target.display) → \(status) in \(elapsedMilliseconds(since: started)) ms (attempt \(attempt), \(redirects.count) redirects)")
            if failOnHTTPError && status >= 400 {
                throw DriverError.tool("http_status", "\(method) \(target.display) answered \(status)",
                                       details: ["status": .int(status), "body": .string(String(decoding: response.body.prefix(2048), as: UTF8.self))])
            }
            return [
                "status": .int(status),
                "ok": .bool((200..<300).contains(status)),
                "headers": .object(Self.outputHeaders(response.headers)),
                "body": try Self.decodeBody(response.body, headers: response.headers, mode: bodyMode),
                "body_encoding": .string(Self.bodyEncoding(response.body, headers: response.headers, mode: bodyMode)),
                "bytes": .int(response.body.count),
                "url": .string(url),
                "redirects": .array(redirects.map { .string($0) }),
                "attempts": .int(attempt),
                "elapsed_ms": .double(elapsedMilliseconds(since: started)),
                "address": .string(ip.description),
            ]
        }
    }

    /// Resolves the target's host and checks every address; returns the one to connect to.
    func checkedAddress(for target: Target, deadline: CallDeadline) async throws -> IPAddress {
        let host = target.host
        let addresses: [IPAddress]
        if let literal = IPAddress(host) {
            addresses = [literal]
        } else {
            do {
                addresses = try await withDeadline(deadline, "resolving \(host)") { try await Resolver.resolve(host) }
            } catch let e as Resolver.ResolveError {
                throw DriverError.tool("dns_failed", e.description, details: ["host": .string(host)])
            }
        }
        for a in addresses {
            if let why = settings.egress.refusal(a) {
                throw DriverError.tool("egress_denied", "refusing to connect to \(host): \(why)",
                                       details: ["host": .string(host), "address": .string(a.description)])
            }
        }
        return addresses[0]
    }

    struct Response: Sendable {
        var status: UInt
        var headers: [(String, String)]
        var body: [UInt8]
    }

    /// Sends one hop, retrying idempotent requests on connection errors, 429 and 5xx.
    func send(_ client: HTTPClient, target: Target, method: String, headers: [(String, String)], body: [UInt8]?,
              attempts: Int, maxBytes: Int, deadline: CallDeadline, call: ToolCall) async throws -> (Response, Int) {
        var backoffMs = 100.0
        for attempt in 1...attempts {
            let last = attempt == attempts
            do {
                let response = try await withDeadline(deadline, "\(method) \(target.display)") {
                    try await Self.once(client, target: target, method: method, headers: headers, body: body, maxBytes: maxBytes, deadline: deadline)
                }
                let status = Int(response.status)
                if !last, Self.retryStatuses.contains(status) {
                    var waitMs = Double.random(in: 0...backoffMs)
                    if let ra = response.headers.first(where: { $0.0.lowercased() == "retry-after" })?.1, let secs = Double(ra), secs >= 0, secs <= 10 {
                        waitMs = secs * 1000
                    }
                    if Double(deadline.remainingMilliseconds) > waitMs + 1 {
                        call.log(.info, "\(method) \(target.display) answered \(status); retrying (attempt \(attempt + 1) of \(attempts))")
                        try await Task.sleep(nanoseconds: UInt64(waitMs * 1e6))
                        backoffMs = min(backoffMs * 2, 2000)
                        continue
                    }
                }
                return (response, attempt)
            } catch let e as DriverError {
                throw e
            } catch {
                let mapped = Self.mapError(error, deadline: deadline, what: "\(method) \(target.display)")
                guard mapped.code == "connection_failed", !last else { throw mapped }
                let waitMs = Double.random(in: 0...backoffMs)
                guard Double(deadline.remainingMilliseconds) > waitMs + 1 else { throw mapped }
                call.log(.info, "\(method) \(target.display) failed (\(mapped.message)); retrying (attempt \(attempt + 1) of \(attempts))")
                try await Task.sleep(nanoseconds: UInt64(waitMs * 1e6))
                backoffMs = min(backoffMs * 2, 2000)
            }
        }
        throw DriverError(.internal, code: "internal", message: "retry loop ended without a result")
    }

    /// One HTTP exchange with the body read up to `maxBytes`.
    static func once(_ client: HTTPClient, target: Target, method: String, headers: [(String, String)], body: [UInt8]?,
                     maxBytes: Int, deadline: CallDeadline) async throws -> Response {
        var request = HTTPClientRequest(url: target.url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let left = deadline.remainingNanos
        guard left > 0 else { throw deadline.error("\(method) \(target.display)") }
        let response = try await client.execute(request, timeout: .nanoseconds(left))
        let responseHeaders = response.headers.map { ($0.name, $0.value) }
        if let cl = response.headers.first(name: "content-length"), let n = Int(cl), n > maxBytes {
            throw tooLarge(maxBytes, target: target, method: method)
        }
        var bytes: [UInt8] = []
        for try await chunk in response.body {
            if bytes.count + chunk.readableBytes > maxBytes { throw tooLarge(maxBytes, target: target, method: method) }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return Response(status: response.status.code, headers: responseHeaders, body: bytes)
    }

    static func tooLarge(_ max: Int, target: Target, method: String) -> DriverError {
        DriverError.tool("response_too_large", "\(method) \(target.display): the response body is larger than \(max) bytes",
                         details: ["limit": .int(max)])
    }

    static func mapError(_ error: any Error, deadline: CallDeadline, what: String) -> DriverError {
        if let e = error as? DriverError { return e }
        if let e = error as? HTTPClientError {
            if e == .deadlineExceeded || e == .readTimeout || e == .writeTimeout || e == .connectTimeout {
                return deadline.hasPassed || e == .deadlineExceeded ? deadline.error(what) : DriverError(.deadline, code: "timeout", message: "\(what): \(e)")
            }
            if e == .cancelled { return deadline.hasPassed ? deadline.error(what) : DriverError(.cancelled, code: "cancelled", message: "\(what): cancelled") }
        }
        if error is CancellationError {
            return deadline.hasPassed ? deadline.error(what) : DriverError(.cancelled, code: "cancelled", message: "\(what): cancelled")
        }
        if deadline.hasPassed { return deadline.error(what) }
        return DriverError.tool("connection_failed", "\(what): \(error)")
    }

    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Appends `query` (an object) to `url`, percent-encoding names and values (RFC 3986).
    static func appendQuery(_ url: String, _ query: JSONValue?) throws -> String {
        guard let obj = query?.objectValue, !obj.isEmpty else { return url }
        func text(_ v: JSONValue) throws -> String {
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .bigInt(let b): return b.description
            case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
            case .bool(let b): return b ? "true" : "false"
            default: throw DriverError.invalidArgument("query values must be strings, numbers, booleans or arrays of them")
            }
        }
        var pairs: [String] = []
        for (k, v) in obj.sorted(by: { $0.key < $1.key }) {
            for item in v.arrayValue ?? [v] { pairs.append(encode(k) + "=" + encode(try text(item))) }
        }
        var base = url
        var fragment = ""
        if let hash = base.firstIndex(of: "#") { fragment = String(base[hash...]); base = String(base[..<hash]) }
        let sep = base.contains("?") ? (base.hasSuffix("?") || base.hasSuffix("&") ? "" : "&") : "?"
        return base + sep + pairs.joined(separator: "&") + fragment
    }

    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    static func displayLocation(_ location: String, base: String) -> String {
        guard let u = URL(string: location, relativeTo: URL(string: base))?.absoluteString, let t = try? Target(u) else { return "an invalid URL" }
        return t.display
    }

    static let redactedResponseHeaders: Set<String> = ["set-cookie", "set-cookie2"]

    static func outputHeaders(_ headers: [(String, String)]) -> [String: JSONValue] {
        var out: [String: String] = [:]
        for (name, value) in headers {
            let n = name.lowercased()
            let v = redactedResponseHeaders.contains(n) ? "[REDACTED]" : value
            if let existing = out[n] { out[n] = redactedResponseHeaders.contains(n) ? existing : existing + ", " + v } else { out[n] = v }
        }
        return out.mapValues { .string($0) }
    }

    static func contentType(_ headers: [(String, String)]) -> String {
        headers.first { $0.0.lowercased() == "content-type" }?.1.lowercased() ?? ""
    }

    static func isJSONType(_ ct: String) -> Bool {
        let media = ct.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return media == "application/json" || media.hasSuffix("+json") || media == "text/json"
    }

    static func bodyEncoding(_ body: [UInt8], headers: [(String, String)], mode: String) -> String {
        if body.isEmpty { return "empty" }
        switch mode {
        case "json": return "json"
        case "text": return "text"
        case "base64": return "base64"
        default:
            if isJSONType(contentType(headers)), (try? JSONValue.parse(body)) != nil { return "json" }
            return String(bytes: body, encoding: .utf8) != nil ? "text" : "base64"
        }
    }

    static func decodeBody(_ body: [UInt8], headers: [(String, String)], mode: String) throws -> JSONValue {
        if body.isEmpty { return .null }
        switch bodyEncoding(body, headers: headers, mode: mode) {
        case "json":
            do { return try JSONValue.parse(body) } catch {
                throw DriverError.tool("invalid_json", "response_body is json but the body is not JSON: \(error)")
            }
        case "text": return .string(String(decoding: body, as: UTF8.self))
        default: return .string(Data(body).base64EncodedString())
        }
    }
}

/// The driver's ABI entry point (`nova_driver_init`, see nova_driver.h).
@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(HTTPDriver.self, host: host, table: table)
}
