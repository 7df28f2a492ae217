/// Who is calling, once authenticated: the principal the policy decides for, the role that
/// decides, and how they proved it.
public struct Caller: Sendable, Equatable, CustomStringConvertible {
    /// How the caller authenticated.
    public enum Method: Sendable, Equatable, CustomStringConvertible {
        /// An API key from the configuration (its id).
        case apiKey(id: String)
        /// A JWT (the verifying key's kid, if it has one).
        case jwt(kid: String?)
        /// The local user of `nova-host mcp` over stdio (no network, no credentials).
        case local

        public var description: String {
            switch self {
            case .apiKey(let id): return "api_key:\(id)"
            case .jwt(let kid): return "jwt:\(kid ?? "-")"
            case .local: return "local"
            }
        }

        /// `api_key`, `jwt` or `local` (a bounded metrics label).
        public var kind: String {
            switch self {
            case .apiKey: return "api_key"
            case .jwt: return "jwt"
            case .local: return "local"
            }
        }
    }

    /// The principal: policy decisions, runs and episodes are in this name.
    public var principal: String
    /// The role the policy uses for this caller's calls.
    public var role: String
    /// How the caller authenticated.
    public var method: Method
    /// Whether the role is one of the configured admin roles (sees every run, reloads drivers).
    public var isAdmin: Bool

    /// A caller.
    public init(principal: String, role: String, method: Method, isAdmin: Bool) {
        self.principal = principal
        self.role = role
        self.method = method
        self.isAdmin = isAdmin
    }

    public var description: String { "\(principal) (role \(role), \(method))" }
}
