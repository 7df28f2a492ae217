import Foundation
import Host
import JSON
import Schema

/// `nova-host serve`'s configuration (see `schemas/host-config.schema.json` and
/// `configs/host.example.json`): where to listen, who may call, CORS, limits, metrics.
public struct HostConfig: Sendable {
    /// One API key: only its SHA-256 is kept.
    public struct APIKey: Sendable, Equatable {
        /// A name for logs and metrics (never the key).
        public var id: String
        /// Lowercase hex SHA-256 of the key.
        public var sha256: String
        /// The principal the policy decides for.
        public var principal: String
        /// The role (a role of the policy profile).
        public var role: String

        /// A key entry.
        public init(id: String, sha256: String, principal: String, role: String) {
            self.id = id
            self.sha256 = sha256
            self.principal = principal
            self.role = role
        }
    }

    /// A JWT verification key.
    public struct JWTKey: Sendable {
        /// The signature algorithms accepted.
        public enum Algorithm: String, Sendable, CaseIterable {
            case hs256 = "HS256"
            case rs256 = "RS256"
            case eddsa = "EdDSA"
        }

        /// The `kid` tokens name it by (optional when it is the only key of its algorithm).
        public var kid: String?
        /// Its algorithm: a token must say the same `alg`.
        public var algorithm: Algorithm
        /// HS256: the shared secret.
        public var secret: [UInt8]?
        /// RS256 / EdDSA: the public key, PEM.
        public var publicKeyPEM: String?

        /// A key entry.
        public init(kid: String?, algorithm: Algorithm, secret: [UInt8]? = nil, publicKeyPEM: String? = nil) {
            self.kid = kid
            self.algorithm = algorithm
            self.secret = secret
            self.publicKeyPEM = publicKeyPEM
        }
    }

    /// JWT settings.
    public struct JWT: Sendable {
        /// Required `iss`.
        public var issuer: String
        /// Required member of `aud`.
        public var audience: String
        /// The claim holding the role.
        public var roleClaim: String = "role"
        /// The claim holding the principal.
        public var principalClaim: String = "sub"
        /// Clock skew allowed on `exp` and `nbf`.
        public var leewaySeconds: Int = 30
        /// If set, tokens whose `exp` is further away than this are refused.
        public var maxLifetimeSeconds: Int?
        /// The verification keys.
        public var keys: [JWTKey]

        /// JWT settings with the defaults above.
        public init(issuer: String, audience: String, roleClaim: String = "role", principalClaim: String = "sub",
                    leewaySeconds: Int = 30, maxLifetimeSeconds: Int? = nil, keys: [JWTKey]) {
            self.issuer = issuer
            self.audience = audience
            self.roleClaim = roleClaim
            self.principalClaim = principalClaim
            self.leewaySeconds = leewaySeconds
            self.maxLifetimeSeconds = maxLifetimeSeconds
            self.keys = keys
        }
    }

    /// Address to bind (default 127.0.0.1).
    public var host: String = "127.0.0.1"
    /// Port to bind (0 picks a free one; default 8787).
    public var port: Int = 8787
    /// API keys.
    public var apiKeys: [APIKey] = []
    /// JWT settings (nil: JWTs are refused).
    public var jwt: JWT?
    /// Roles that may see everyone's runs and reload drivers.
    public var adminRoles: [String] = ["admin"]
    /// Origins allowed by CORS.
    public var corsOrigins: [String] = []
    /// `Access-Control-Max-Age` of preflight answers.
    public var corsMaxAgeSeconds: Int = 600
    /// Largest request body accepted.
    public var bodyLimitBytes: Int = 1 << 20
    /// Serve `/metrics` without credentials.
    public var metricsPublic: Bool = false
    /// Answer `/ready` without credentials: the status only (a probe that cannot hold a key);
    /// callers with credentials still get the checks.
    public var readyPublic: Bool = false
    /// Extra origins allowed on `/mcp`.
    public var mcpAllowedOrigins: [String] = []
    /// Host header values accepted on `/mcp`; nil = localhost names when bound to loopback.
    public var mcpAllowedHosts: [String]?
    /// MCP sessions idle longer than this are closed.
    public var mcpSessionIdleSeconds: Int = 3600
    /// Most MCP sessions at once.
    public var mcpMaxSessions: Int = 1000
    /// Deadline of one tool call (POST /tools/{id}, MCP tools/call).
    public var toolTimeoutMs: Int = 60_000
    /// How long in-flight runs may finish at shutdown.
    public var shutdownGraceSeconds: Double = 30
    /// Threads of the HTTP server's event loops (socket I/O and HTTP parsing); nil: half the
    /// cores, at least one (`HTTPEventLoops.defaultThreads`).
    public var eventLoopThreads: Int?
    /// Where episodes, state and the job queue live (`sqlite` or a `postgres://` URL); nil:
    /// `--store`, `$NOVA_STORE` or the default SQLite store.
    public var store: String?
    /// Attempts of a queued run before its job is dead.
    public var runMaxAttempts: Int = 3
    /// How long an `Idempotency-Key` names its run.
    public var idempotencyTTLSeconds: Int = 86_400
    /// The queues a run may be submitted to; the first is the default.
    public var runQueues: [String] = [JobQueueLimits.defaultQueue]
    /// The worker inside `serve`; nil when `worker.enabled` is false.
    public var worker: JobWorkerOptions? = JobWorkerOptions()
    /// Where the host's files are (`paths`, resolved against the file's directory); nil
    /// members leave it to the flags, the environment and the defaults.
    public var paths = Paths()

    /// The `paths` member: drivers directory, policy profile, driver settings, data directory.
    public struct Paths: Sendable, Equatable {
        public var drivers: String?
        public var policy: String?
        public var driverConfig: String?
        public var data: String?
        /// The templates directory (imported into the store as template versions).
        public var templates: String?
        public init(drivers: String? = nil, policy: String? = nil, driverConfig: String? = nil, data: String? = nil, templates: String? = nil) {
            self.templates = templates
            self.drivers = drivers
            self.policy = policy
            self.driverConfig = driverConfig
            self.data = data
        }
    }

    /// The defaults: 127.0.0.1:8787, no credentials (every protected route answers 401).
    public init() {}

    /// Whether the listen address is a loopback address.
    public var bindsLoopback: Bool {
        host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Reads a configuration file: checked against the schema, secrets and key files resolved
    /// (relative paths against the file's directory).
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(HostConfigError) -> HostConfig {
        guard let data = FileManager.default.contents(atPath: path) else { throw HostConfigError("cannot read \(path)") }
        let json: JSONValue
        do { json = try JSONValue.parse(Array(data)) } catch { throw HostConfigError("\(path) is not valid JSON: \(error)") }
        let base = (path as NSString).deletingLastPathComponent
        do { return try parse(json, baseDirectory: base.isEmpty ? "." : base, environment: environment) } catch {
            throw HostConfigError("\(path): \(error.message)")
        }
    }

    /// Parses a configuration document (see `load`).
    public static func parse(_ json: JSONValue, baseDirectory: String = ".",
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws(HostConfigError) -> HostConfig {
        let problems = DocumentSchemas.check(json, against: HostConfigSchema.compiled)
        if let first = problems.first {
            throw HostConfigError("\(first.path.isEmpty ? "" : first.path + ": ")\(first.message) (see schemas/host-config.schema.json)")
        }
        var c = HostConfig()
        if let l = json["listen"] {
            if let h = l["host"]?.stringValue { c.host = h }
            if let p = l["port"]?.intValue { c.port = p }
        }
        var ids = Set<String>(), hashes = Set<String>()
        for (i, k) in (json["api_keys"]?.arrayValue ?? []).enumerated() {
            let key = APIKey(id: k["id"]?.stringValue ?? "", sha256: k["sha256"]?.stringValue ?? "",
                             principal: k["principal"]?.stringValue ?? "", role: k["role"]?.stringValue ?? "")
            guard ids.insert(key.id).inserted else { throw HostConfigError("api_keys[\(i)].id '\(key.id)' is used twice") }
            guard hashes.insert(key.sha256).inserted else { throw HostConfigError("api_keys[\(i)]: the same key hash is listed twice") }
            c.apiKeys.append(key)
        }
        if let j = json["jwt"] {
            var keys: [JWTKey] = []
            for (i, k) in (j["keys"]?.arrayValue ?? []).enumerated() {
                let at = "jwt.keys[\(i)]"
                guard let alg = k["alg"]?.stringValue.flatMap(JWTKey.Algorithm.init(rawValue:)) else { throw HostConfigError("\(at).alg is not supported") }
                var key = JWTKey(kid: k["kid"]?.stringValue, algorithm: alg)
                switch alg {
                case .hs256:
                    let secret: String
                    if let s = k["secret"]?.stringValue { secret = s } else if let name = k["secret_env"]?.stringValue {
                        guard let s = environment[name], !s.isEmpty else { throw HostConfigError("\(at).secret_env: the environment variable \(name) is not set") }
                        secret = s
                    } else {
                        let file = resolve(k["secret_file"]?.stringValue ?? "", base: baseDirectory)
                        guard let d = FileManager.default.contents(atPath: file) else { throw HostConfigError("\(at).secret_file: cannot read \(file)") }
                        secret = String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                    guard secret.utf8.count >= 32 else { throw HostConfigError("\(at): an HS256 secret must be at least 32 bytes") }
                    key.secret = Array(secret.utf8)
                case .rs256, .eddsa:
                    if let pem = k["public_key_pem"]?.stringValue { key.publicKeyPEM = pem } else {
                        let file = resolve(k["public_key_file"]?.stringValue ?? "", base: baseDirectory)
                        guard let d = FileManager.default.contents(atPath: file) else { throw HostConfigError("\(at).public_key_file: cannot read \(file)") }
                        key.publicKeyPEM = String(decoding: d, as: UTF8.self)
                    }
                }
                keys.append(key)
            }
            let kids = keys.compactMap(\.kid)
            if Set(kids).count != kids.count { throw HostConfigError("jwt.keys: a kid is used twice") }
            c.jwt = JWT(issuer: j["issuer"]?.stringValue ?? "", audience: j["audience"]?.stringValue ?? "",
                        roleClaim: j["role_claim"]?.stringValue ?? "role", principalClaim: j["principal_claim"]?.stringValue ?? "sub",
                        leewaySeconds: j["leeway_seconds"]?.intValue ?? 30, maxLifetimeSeconds: j["max_lifetime_seconds"]?.intValue, keys: keys)
        }
        if let roles = json["admin_roles"]?.arrayValue { c.adminRoles = roles.compactMap(\.stringValue) }
        if let cors = json["cors"] {
            c.corsOrigins = cors["allowed_origins"]?.arrayValue?.compactMap(\.stringValue) ?? []
            c.corsMaxAgeSeconds = cors["max_age_seconds"]?.intValue ?? 600
        }
        if let b = json["body_limit_bytes"]?.intValue { c.bodyLimitBytes = b }
        if let p = json["metrics"]?["public"]?.boolValue { c.metricsPublic = p }
        if let p = json["ready"]?["public"]?.boolValue { c.readyPublic = p }
        if let m = json["mcp"] {
            c.mcpAllowedOrigins = m["allowed_origins"]?.arrayValue?.compactMap(\.stringValue) ?? []
            c.mcpAllowedHosts = m["allowed_hosts"]?.arrayValue?.compactMap(\.stringValue)
            if let s = m["session_idle_seconds"]?.intValue { c.mcpSessionIdleSeconds = s }
            if let s = m["max_sessions"]?.intValue { c.mcpMaxSessions = s }
        }
        if let t = json["tool_timeout_ms"]?.intValue { c.toolTimeoutMs = t }
        if let g = json["shutdown_grace_seconds"]?.doubleValue { c.shutdownGraceSeconds = g }
        if let t = json["event_loop_threads"]?.intValue { c.eventLoopThreads = t }
        if let st = json["store"]?.stringValue { c.store = st }
        if let p = json["paths"] {
            func path(_ key: String) -> String? { p[key]?.stringValue.map { resolve($0, base: baseDirectory) } }
            c.paths = Paths(drivers: path("drivers"), policy: path("policy"), driverConfig: path("driver_config"), data: path("data"),
                            templates: path("templates"))
        }
        if let r = json["runs"] {
            if let n = r["max_attempts"]?.intValue { c.runMaxAttempts = n }
            if let t = r["idempotency_ttl_seconds"]?.intValue { c.idempotencyTTLSeconds = t }
            if let q = r["queues"]?.arrayValue { c.runQueues = q.compactMap(\.stringValue) }
        }
        if let w = json["worker"] {
            if w["enabled"]?.boolValue == false { c.worker = nil } else {
                var o = JobWorkerOptions()
                if let q = w["queues"]?.arrayValue { o.queues = q.compactMap(\.stringValue) }
                if let n = w["concurrency"]?.intValue { o.concurrency = n }
                if let l = w["lease_seconds"]?.doubleValue { o.leaseMs = Int(l * 1000) }
                if let p = w["poll_ms"]?.intValue { o.pollMs = p }
                if let h = w["retention_hours"]?.doubleValue { o.retentionMs = Int64(h * 3_600_000) }
                c.worker = o
            }
        }
        return c
    }

    /// Checks the configuration against the policy profile: every role named exists, and an
    /// API key's principal has the key's role if the profile lists it. Returns the problems.
    public func problems(against profile: PolicyProfile) -> [String] {
        var out: [String] = []
        for k in apiKeys {
            if !profile.roles.contains(k.role) {
                out.append("api key '\(k.id)': role '\(k.role)' is not a role of the policy (\(profile.roles.joined(separator: ", ")))")
            } else if let listed = profile.principals[k.principal], listed != k.role {
                out.append("api key '\(k.id)': principal '\(k.principal)' has role '\(listed)' in the policy, not '\(k.role)'")
            }
        }
        return out
    }

    static func resolve(_ path: String, base: String) -> String {
        path.hasPrefix("/") ? path : base + "/" + path
    }
}

/// An invalid server configuration; the message names the field.
public struct HostConfigError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var message: String
    /// An error with `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
