import JSON

/// Removes secrets before anything is written to an episode or a log.
public enum Redaction {
    /// The marker that replaces a secret value.
    public static let marker: JSONValue = "[REDACTED]"

    /// Key fragments that always mark a secret (compared case-insensitively, ignoring `-` and `_`).
    public static let secretKeyFragments = ["password", "passwd", "secret", "authorization", "apikey", "cookie", "dsn", "privatekey", "credential"]

    /// True if a key names a secret.
    public static func isSecretKey(_ key: String) -> Bool {
        let k = String(key.lowercased().filter { $0 != "-" && $0 != "_" })
        // "token" only as a suffix: `api_token` is a secret, `max_tokens` is not.
        return k.hasSuffix("token") || secretKeyFragments.contains { k.contains($0) }
    }

    /// Redacts secret keys at any depth, plus the top-level `extraKeys` (fields a tool's schema
    /// marks `"x-secret": true`).
    public static func redact(_ value: JSONValue, extraKeys: [String] = []) -> JSONValue {
        switch value {
        case .object(let obj):
            var out: [String: JSONValue] = [:]
            for (k, v) in obj {
                out[k] = (isSecretKey(k) || extraKeys.contains(k)) ? marker : redact(v)
            }
            return .object(out)
        case .array(let items):
            return .array(items.map { redact($0) })
        default:
            return value
        }
    }
}
