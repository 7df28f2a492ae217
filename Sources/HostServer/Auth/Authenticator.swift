import Host
import JSON

/// Why a request could not be authenticated: 401 (no or bad credentials) or 403 (valid
/// credentials that may not be used, e.g. a role the policy does not know).
public enum AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No credentials were sent.
    case missing
    /// An API key that is not configured.
    case invalidAPIKey
    /// A JWT that does not verify (the reason says why; it is safe to show).
    case invalidToken(String)
    /// Credentials sent in a way that is not accepted.
    case malformed(String)
    /// Valid credentials whose role or principal the policy refuses.
    case forbidden(String)

    /// The HTTP status: 401, or 403 for `forbidden`.
    public var status: Int {
        if case .forbidden = self { return 403 }
        return 401
    }

    /// The machine-readable error code.
    public var code: String {
        switch self {
        case .missing: return "unauthorized"
        case .invalidAPIKey: return "invalid_api_key"
        case .invalidToken: return "invalid_token"
        case .malformed: return "invalid_credentials"
        case .forbidden: return "forbidden"
        }
    }

    public var description: String {
        switch self {
        case .missing: return "credentials required: send Authorization: Bearer <API key or JWT>, or X-API-Key: <key>"
        case .invalidAPIKey: return "the API key is not valid"
        case .invalidToken(let why): return "the bearer token is not valid: \(why)"
        case .malformed(let why): return why
        case .forbidden(let why): return why
        }
    }
}

/// Turns credentials into a `Caller`: API keys (compared by SHA-256, as the configuration
/// stores them) and JWTs (see `JWTVerifier`). The role is the key's configured role or the
/// token's role claim; it must be a role of the policy profile, and must agree with the
/// profile for principals the profile lists.
public final class Authenticator: Sendable {
    private let keysByHash: [String: HostConfig.APIKey]
    private let keysById: [String: HostConfig.APIKey]
    private let jwt: JWTVerifier?
    private let jwtSettings: HostConfig.JWT?
    private let currentProfile: @Sendable () -> PolicyProfile
    private let adminRoles: Set<String>
    private var profile: PolicyProfile { currentProfile() }

    /// Builds the authenticator; loads JWT keys (throws on a bad key or an API key whose role
    /// contradicts the policy). `current` gives the profile in use when the policy can be
    /// reloaded (JWT roles are checked against it); by default `profile` is used for good.
    public init(config: HostConfig, profile: PolicyProfile, current: (@Sendable () -> PolicyProfile)? = nil) async throws(HostConfigError) {
        if let first = config.problems(against: profile).first { throw HostConfigError(first) }
        keysByHash = Dictionary(config.apiKeys.map { ($0.sha256, $0) }, uniquingKeysWith: { a, _ in a })
        keysById = Dictionary(config.apiKeys.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        jwtSettings = config.jwt
        if let j = config.jwt { jwt = try await JWTVerifier(settings: j) } else { jwt = nil }
        self.currentProfile = current ?? { profile }
        adminRoles = Set(config.adminRoles)
    }

    /// Whether any credential is configured at all.
    public var hasCredentials: Bool { !keysByHash.isEmpty || jwt != nil }

    /// Authenticates from the `Authorization` and `X-API-Key` header values.
    public func authenticate(authorization: String?, apiKey: String?) async throws(AuthError) -> Caller {
        if let apiKey {
            if authorization != nil { throw .malformed("send one credential: Authorization or X-API-Key, not both") }
            return try caller(forAPIKey: apiKey)
        }
        guard let authorization else { throw .missing }
        if let token = Self.plainBearerToken(authorization) {
            return JWTVerifier.looksLikeJWT(token) ? try await caller(forJWT: token) : try caller(forAPIKey: token)
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw .malformed("unsupported Authorization scheme: use Authorization: Bearer <API key or JWT>")
        }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else { throw .missing }
        if JWTVerifier.looksLikeJWT(token) { return try await caller(forJWT: token) }
        return try caller(forAPIKey: token)
    }

    /// The token of the usual header, `Bearer <token>` with nothing else around it, or nil (the
    /// general parse above then decides: other cases of the scheme, extra whitespace, errors).
    /// Every authenticated request comes through here, and splitting, lowercasing and trimming
    /// the header cost more than hashing the key.
    static func plainBearerToken(_ header: String) -> String? {
        let prefix: StaticString = "Bearer "
        let bytes = header.utf8
        let n = prefix.utf8CodeUnitCount
        guard bytes.count > n else { return nil }
        var i = bytes.startIndex
        for k in 0..<n {
            guard bytes[i] == prefix.utf8Start[k] else { return nil }
            i = bytes.index(after: i)
        }
        // The token: printable ASCII without spaces (anything else takes the general path).
        for b in bytes[i...] where b <= 0x20 || b >= 0x7F { return nil }
        return String(header.utf8[i...])
    }

    /// The caller an API key stands for.
    public func caller(forAPIKey key: String) throws(AuthError) -> Caller {
        let hash = SHA256.hex(key.utf8)
        guard let entry = keysByHash[hash] else { throw .invalidAPIKey }
        return Caller(principal: entry.principal, role: entry.role, method: .apiKey(id: entry.id), isAdmin: adminRoles.contains(entry.role))
    }

    /// The caller `caller` — authenticated earlier, e.g. at a dashboard login, its credential
    /// not kept — stands for under the current policy. An API key's caller is its configured
    /// entry again (a policy reload cannot contradict it: such a reload is refused). A JWT's
    /// role was checked against the policy at login: it must still be a role of the policy, and
    /// a principal the policy lists must still have that role; otherwise `forbidden`.
    public func revalidate(_ caller: Caller) throws(AuthError) -> Caller {
        switch caller.method {
        case .apiKey(let id):
            guard let entry = keysById[id] else { throw .invalidAPIKey }
            return Caller(principal: entry.principal, role: entry.role, method: caller.method, isAdmin: adminRoles.contains(entry.role))
        case .jwt:
            let profile = self.profile
            guard profile.roles.contains(caller.role) else { throw .forbidden("role '\(caller.role)' is no longer a role of the policy") }
            if let listed = profile.principals[caller.principal], listed != caller.role {
                throw .forbidden("the policy now gives principal '\(caller.principal)' role '\(listed)', not '\(caller.role)'")
            }
            return Caller(principal: caller.principal, role: caller.role, method: caller.method, isAdmin: adminRoles.contains(caller.role))
        case .local:
            return caller
        }
    }

    /// The caller a JWT stands for.
    public func caller(forJWT token: String) async throws(AuthError) -> Caller {
        guard let jwt, let settings = jwtSettings else { throw .invalidToken("this server accepts no JWTs (no jwt section in its configuration)") }
        let verified = try await jwt.verify(token)
        guard let principal = verified.claims[settings.principalClaim]?.stringValue, !principal.isEmpty else {
            throw .invalidToken("the token has no '\(settings.principalClaim)' claim naming the principal")
        }
        let listed = profile.principals[principal]
        let claimed: String?
        switch verified.claims[settings.roleClaim] {
        case .string(let s)?: claimed = s
        case .array(let a)?: claimed = a.compactMap(\.stringValue).first { profile.roles.contains($0) } ?? a.first?.stringValue
        case nil: claimed = nil
        default: throw .invalidToken("the '\(settings.roleClaim)' claim must be a string or an array of strings")
        }
        guard let role = claimed ?? profile.role(of: principal) else {
            throw .forbidden("the token has no '\(settings.roleClaim)' claim and principal '\(principal)' has no role in the policy")
        }
        guard profile.roles.contains(role) else {
            throw .forbidden("role '\(role)' from the token's '\(settings.roleClaim)' claim is not a role of the policy")
        }
        if let listed, listed != role {
            throw .forbidden("the token gives principal '\(principal)' role '\(role)', but the policy gives it role '\(listed)'")
        }
        return Caller(principal: principal, role: role, method: .jwt(kid: verified.kid), isAdmin: adminRoles.contains(role))
    }
}
