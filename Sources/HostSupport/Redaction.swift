import JSON

/// Removes secrets before anything is written to an episode or a log.
public enum Redaction {
    /// The marker that replaces a secret value.
    public static let marker: JSONValue = "[REDACTED]"

    /// Key fragments that always mark a secret (compared case-insensitively, ignoring `-` and `_`).
    public static let secretKeyFragments = ["password", "passwd", "secret", "authorization", "apikey", "cookie", "dsn", "privatekey", "credential"]

    /// True if a key names a secret.
    public static func isSecretKey(_ key: String) -> Bool {
        // Byte-wise (ASCII case folding) into a buffer on the stack: this runs for every key of
        // every recorded input, and Foundation's substring search is slow on Linux.
        let length = key.utf8.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(length, 1)) { buffer in
            var n = 0
            for c in key.utf8 where c != 0x2D && c != 0x5F {
                buffer[n] = c >= 0x41 && c <= 0x5A ? c + 32 : c
                n += 1
            }
            let k = UnsafeBufferPointer(rebasing: buffer[..<n])
            // "token" only as a suffix: `api_token` is a secret, `max_tokens` is not.
            if n >= 5 && k[(n - 5)...].elementsEqual(tokenBytes) { return true }
            return fragmentBytes.contains { contains(k, $0) }
        }
    }

    private static let fragmentBytes: [[UInt8]] = secretKeyFragments.map { Array($0.utf8) }
    private static let tokenBytes: [UInt8] = Array("token".utf8)

    private static func contains(_ hay: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= hay.count else { return false }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    /// Redacts secret keys at any depth, plus the top-level `extraKeys` (fields a tool's schema
    /// marks `"x-secret": true`).
    public static func redact(_ value: JSONValue, extraKeys: [String] = []) -> JSONValue {
        redacted(value, extraKeys: extraKeys) ?? value
    }

    /// `value` with its secrets replaced, or nil when it has none: then nothing is copied (a
    /// recorded run's inputs and plan rarely hold secrets, and every run records them).
    public static func redacted(_ value: JSONValue, extraKeys: [String] = []) -> JSONValue? {
        switch value {
        case .object(let obj):
            var out: JSONObject?
            for (k, v) in obj {
                let secret = isSecretKey(k.string) || extraKeys.contains(k.string)
                guard let replacement = secret ? marker : redacted(v) else { continue }
                if out == nil { out = obj }
                out![k] = replacement  // in place: the members keep their order
            }
            return out.map { .object($0) }
        case .array(let items):
            var out: [JSONValue]?
            for (i, v) in items.enumerated() {
                guard let replacement = redacted(v) else { continue }
                if out == nil { out = items }
                out![i] = replacement
            }
            return out.map { .array($0) }
        default:
            return nil
        }
    }
}
