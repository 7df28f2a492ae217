import JSON

/// Removes secrets before anything is written to an episode or a log.
public enum Redaction {
    /// The marker that replaces a secret value.
    public static let marker: JSONValue = "[REDACTED]"

    /// Key fragments that always mark a secret (compared case-insensitively, ignoring `-` and `_`).
    public static let secretKeyFragments = ["password", "passwd", "secret", "authorization", "apikey", "cookie", "dsn", "privatekey", "credential"]

    /// True if a key names a secret.
    public static func isSecretKey(_ key: String) -> Bool {
        // Byte-wise (ASCII case folding): this runs for every key of every recorded input, and
        // Foundation's substring search is slow on Linux.
        let k: [UInt8] = key.utf8.compactMap { c in
            c == 0x2D || c == 0x5F ? nil : (c >= 0x41 && c <= 0x5A ? c + 32 : c)
        }
        // "token" only as a suffix: `api_token` is a secret, `max_tokens` is not.
        if k.count >= 5 && Array(k.suffix(5)) == Array("token".utf8) { return true }
        return fragmentBytes.contains { contains(k, $0) }
    }

    private static let fragmentBytes: [[UInt8]] = secretKeyFragments.map { Array($0.utf8) }

    private static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    /// Redacts secret keys at any depth, plus the top-level `extraKeys` (fields a tool's schema
    /// marks `"x-secret": true`).
    public static func redact(_ value: JSONValue, extraKeys: [String] = []) -> JSONValue {
        switch value {
        case .object(let obj):
            var out: JSONObject = [:]
            for (k, v) in obj {
                out[k] = (isSecretKey(k.string) || extraKeys.contains(k.string)) ? marker : redact(v)
            }
            return .object(out)
        case .array(let items):
            return .array(items.map { redact($0) })
        default:
            return value
        }
    }
}
