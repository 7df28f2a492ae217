import Foundation
import Synchronization
@_exported import TestSupport
import Host
import HostServer
import Hummingbird
import HTTPTypes
import HummingbirdTesting
import JSON
import Logging
import NIOCore
import Testing

/// Paths, keys and a server builder the server tests share.
enum ServerFixtures {
    /// The package root, found from this file's path.
    static let root = TestPaths.root

    /// A fresh temporary directory.
    static func tempDir(_ label: String = "server") -> String { TestPaths.tempDir("nova-" + label) }

    /// A drivers directory holding the C echo driver, compiled once from examples/ (the test
    /// fails, not skips, if `cc` or the source is missing).
    static let driversDir: String = {
        let dir = tempDir("drivers")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["cc", "-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-I", root + "/Sources/DriverABI/include",
                       "-o", dir + "/libnova_echo.so", root + "/examples/drivers/c-echo/echo.c", "-lpthread"]
        try! p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "cc could not build the echo driver")
        chmod(dir + "/libnova_echo.so", 0o644)
        return dir
    }()

    /// The test policy: admins may do anything; users may use echo.* except echo.fail (denied
    /// with a reason); service may use echo.echo only.
    static let policy = """
    {
      "roles": { "admin": {}, "user": {}, "service": {} },
      "principals": { "admin": "admin", "alice": "user", "bob": "user", "ci": "service" },
      "rules": [
        { "id": "admins-everything", "effect": "allow", "roles": ["admin"], "tools": ["*"] },
        { "id": "no-fail-for-users", "effect": "deny", "roles": ["user", "service"], "tools": ["echo.fail"],
          "reason": "echo.fail is for admins" },
        { "id": "users-echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"] },
        { "id": "service-echo-only", "effect": "allow", "roles": ["service"], "tools": ["echo.echo"] }
      ]
    }
    """

    static let policyFile: String = {
        let path = tempDir("policy") + "/policy.json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(policy.utf8))
        return path
    }()

    /// API keys of the test configuration.
    static let adminKey = "nova_test_admin_key_0001"
    static let aliceKey = "nova_test_alice_key_0002"
    static let bobKey = "nova_test_bob_key_0003"
    static let ciKey = "nova_test_ci_key_0004"

    static let issuer = "https://issuer.test/"
    static let audience = "nova-test"

    /// The test configuration: four API keys, three JWT keys (HS256, RS256, EdDSA).
    static func config() -> HostConfig {
        var c = HostConfig()
        c.apiKeys = [
            .init(id: "admin", sha256: SHA256.hex(Array(adminKey.utf8)), principal: "admin", role: "admin"),
            .init(id: "alice", sha256: SHA256.hex(Array(aliceKey.utf8)), principal: "alice", role: "user"),
            .init(id: "bob", sha256: SHA256.hex(Array(bobKey.utf8)), principal: "bob", role: "user"),
            .init(id: "ci", sha256: SHA256.hex(Array(ciKey.utf8)), principal: "ci", role: "service"),
        ]
        c.jwt = .init(issuer: issuer, audience: audience, keys: [
            .init(kid: "hs-1", algorithm: .hs256, secret: Array(TestKeys.hsSecret.utf8)),
            .init(kid: "rs-1", algorithm: .rs256, publicKeyPEM: TestKeys.rsaPublic),
            .init(kid: "ed-1", algorithm: .eddsa, publicKeyPEM: TestKeys.edPublic),
        ])
        c.corsOrigins = ["https://app.example.com"]
        c.bodyLimitBytes = 64 * 1024
        c.toolTimeoutMs = 2_000
        return c
    }

    /// A server over a fresh data directory, the echo driver and the test policy.
    static func server(config mutate: (inout HostConfig) -> Void = { _ in }, driversDir: String? = nil, policy: String? = nil,
                       dataDirectory: String? = nil, store: (any HostStore)? = nil,
                       logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })) async throws -> NovaServer {
        let data = dataDirectory ?? tempDir("data")
        var policyPath = policyFile
        if let policy {
            policyPath = tempDir("policy") + "/policy.json"
            _ = FileManager.default.createFile(atPath: policyPath, contents: Data(policy.utf8))
        }
        let paths = HostPaths.resolve(drivers: driversDir ?? Self.driversDir, data: data, policy: policyPath, environment: [:])
        let host = try NovaHost(paths: paths, episodes: try await EpisodeLog.open(dataDirectory: data, store: store))
        var c = config()
        mutate(&c)
        return try await NovaServer.make(host: host, config: c, logger: logger)
    }
}

extension NovaServer {
    /// Runs `body` with a client while the run manager runs beside it; then shuts the run
    /// manager down. `.router` calls the router in process; `.live` serves on a real loopback
    /// port, so headers travel as over TCP (an HTTP/1 `Host` arrives as the request's authority,
    /// not as a header field): use it for anything that depends on header handling.
    func withClient(_ mode: TestingSetup = .router, _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: router(), logger: logger)
        let (runs, worker) = (self.runs, self.worker)
        // Subscriptions' triggers, as `serve` runs them beside the worker.
        let triggers = triggerServices.map { service in Task { try await service.run() } }
        defer { for t in triggers { t.cancel() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await worker?.run() }
            do {
                try await app.test(mode) { client in try await body(client) }
            } catch {
                worker?.stop()
                await runs.shutdown(grace: .seconds(5))
                throw error
            }
            worker?.stop()
            await runs.shutdown(grace: .seconds(5))
            try await group.waitForAll()
        }
    }

    /// Serves on a loopback port (for raw-socket clients: streams) until the returned task is
    /// cancelled; returns the port once it listens.
    func listening() async throws -> (port: Int, task: Task<Void, any Error>) {
        let port = Mutex(0)
        let app = application(host: "127.0.0.1", port: 0) { p in port.withLock { $0 = p } }
        let task = Task { try await app.runService() }
        try await Wait.until("the server listens") { port.withLock { $0 } != 0 }
        return (port.withLock { $0 }, task)
    }

    /// Queues a run of `plan` as `POST /v1/runs` would, returning its run id.
    func enqueueRun(_ plan: Plan, principal: String = "alice", role: String = "user") async throws -> String {
        let submission = RunSubmission(plan: plan, principal: principal, role: role, origin: "test")
        let spec = JobSpec(kind: RunJob.kind, payload: RunJob.payload(submission, fingerprint: nil, submittedAt: Timestamps.now()))
        return try await queue!.enqueue(spec).job.id
    }
}

/// Request helpers.
enum Req {
    static func headers(_ pairs: [(String, String)]) -> HTTPFields {
        var h = HTTPFields()
        for (k, v) in pairs { h[HTTPField.Name(k)!] = v }
        return h
    }

    static func bearer(_ token: String, _ more: [(String, String)] = []) -> HTTPFields {
        headers([("Authorization", "Bearer \(token)")] + more)
    }

    static func jsonHeaders(_ token: String?, _ more: [(String, String)] = []) -> HTTPFields {
        var pairs = [("Content-Type", "application/json")] + more
        if let token { pairs.append(("Authorization", "Bearer \(token)")) }
        return headers(pairs)
    }

    static func body(_ json: JSONValue) -> ByteBuffer { ByteBuffer(bytes: json.serializedBytes()) }
}

extension TestResponse {
    /// The body as JSON (null if it is not JSON).
    var json: JSONValue { (try? JSONValue.parse(Array(buffer: body))) ?? .null }
    /// The body as text.
    var text: String { String(buffer: body) }
    /// The error code of an error response.
    var errorCode: String? { json["error"]?["code"]?.stringValue }
}

extension TestClientProtocol {
    /// GET with credentials.
    func get(_ uri: String, _ token: String?, _ more: [(String, String)] = []) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: token.map { Req.bearer($0, more) } ?? Req.headers(more))
    }

    /// POST a JSON body with credentials.
    func post(_ uri: String, _ token: String?, _ json: JSONValue? = nil, _ more: [(String, String)] = []) async throws -> TestResponse {
        try await execute(uri: uri, method: .post, headers: Req.jsonHeaders(token, more), body: json.map(Req.body))
    }

    /// Polls `GET /v1/runs/{id}` until the run leaves `running` (or 10 s pass).
    func waitForRun(_ id: String, _ token: String) async throws -> JSONValue {
        for _ in 0..<12_000 {
            let r = try await get("/v1/runs/\(id)", token)
            if !["running", "queued"].contains(r.json["status"]?.stringValue ?? "") { return r.json }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("run \(id) did not finish")
        return .null
    }
}

/// JWTs for the tests, signed with jwt-kit or crafted by hand (for the attacks).
enum Tokens {
    static func b64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func claims(sub: String = "carol", role: JSONValue? = "user", exp: Double? = Date().timeIntervalSince1970 + 600,
                       extra: [String: JSONValue] = [:]) -> JSONValue {
        var o: [String: JSONValue] = ["sub": .string(sub), "iss": .string(ServerFixtures.issuer), "aud": .string(ServerFixtures.audience),
                                      "iat": .double(Date().timeIntervalSince1970.rounded(.down))]
        if let role { o["role"] = role }
        if let exp { o["exp"] = .double(exp.rounded(.down)) }
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    /// An HS256 token with any header (for crafting attacks) signed with `secret`.
    static func hs256(_ claims: JSONValue, header: JSONValue = ["alg": "HS256", "typ": "JWT", "kid": "hs-1"],
                      secret: [UInt8] = Array(TestKeys.hsSecret.utf8)) -> String {
        let input = b64url(header.serializedBytes()) + "." + b64url(claims.serializedBytes())
        return input + "." + b64url(HMAC.sha256(key: secret, message: Array(input.utf8)))
    }

    /// A token with `header`, `claims` and a literal signature part.
    static func unsigned(_ claims: JSONValue, header: JSONValue = ["alg": "none", "typ": "JWT"], signature: String = "") -> String {
        b64url(header.serializedBytes()) + "." + b64url(claims.serializedBytes()) + "." + signature
    }
}

/// HMAC-SHA256 (RFC 2104) over the host's SHA-256, to craft tokens by hand.
enum HMAC {
    static func sha256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? SHA256.digest(key) : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = SHA256.digest(k.map { $0 ^ 0x36 } + message)
        return SHA256.digest(k.map { $0 ^ 0x5c } + inner)
    }
}

/// HTTP/1.1 over a plain loopback TCP socket, bytes exactly as given: for checks that depend on
/// how headers arrive off the wire (the test clients add or rewrite `Host`).
enum RawHTTP {
    /// Sends `request` (CRLF line ends added) to 127.0.0.1 or [::1] at `port`, with
    /// `Connection: close`; returns the status code and the whole response text.
    static func exchangeBlocking(port: Int, _ head: [String], body: String = "") throws -> (status: Int, text: String) {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        var lines = head + ["Content-Length: \(body.utf8.count)", "Connection: close", "", ""]
        lines[lines.count - 1] = body
        let bytes = Array(lines.joined(separator: "\r\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RawHTTPError.io("send: errno \(errno)") }
            sent += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let text = String(decoding: out, as: UTF8.self)
        let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, text)
    }

    /// The exchange on a thread of its own (it blocks until the answer): never on the
    /// cooperative pool, which the server's handlers need (two threads on two cores).
    static func exchange(port: Int, _ head: [String], body: String = "") async throws -> (status: Int, text: String) {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<(status: Int, text: String), any Error>) in
            Thread.detachNewThread { c.resume(with: Result { try exchangeBlocking(port: port, head, body: body) }) }
        }
    }

    /// Sends `head` and `body` to `port` and closes the connection without reading the answer:
    /// a client that gives up.
    static func sendAndClose(port: Int, _ head: [String], body: String) throws {
        let fd = try connectLoopback(port: port)
        defer { close(fd) }
        let bytes = Array((head + ["Content-Length: \(body.utf8.count)", "", body]).joined(separator: "\r\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RawHTTPError.io("send: errno \(errno)") }
            sent += n
        }
    }

    private static func connectLoopback(port: Int) throws -> Int32 {
        var v4 = sockaddr_in()
        v4.sin_family = sa_family_t(AF_INET)
        v4.sin_port = in_port_t(UInt16(port).bigEndian)
        v4.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
        let fd4 = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if withUnsafePointer(to: &v4, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd4, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0 {
            return fd4
        }
        close(fd4)
        var v6 = sockaddr_in6()
        v6.sin6_family = sa_family_t(AF_INET6)
        v6.sin6_port = in_port_t(UInt16(port).bigEndian)
        v6.sin6_addr = in6addr_loopback
        let fd6 = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        if withUnsafePointer(to: &v6, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd6, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }) == 0 {
            return fd6
        }
        close(fd6)
        throw RawHTTPError.io("cannot connect to loopback port \(port)")
    }
}

enum RawHTTPError: Error { case io(String) }
