import Foundation
import JSON
import JWTKit

/// The claims of a verified token, as JSON (any claim, so that the role and principal claims
/// can be configured).
struct TokenClaims: JWTPayload {
    var claims: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        guard let o = try JSONValue(from: decoder).objectValue else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "the JWT payload is not a JSON object"))
        }
        claims = o
    }

    func encode(to encoder: any Encoder) throws { try JSONValue.object(claims).encode(to: encoder) }

    // Time, issuer and audience are checked by `JWTVerifier` (with the configured leeway).
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies JWT bearer tokens against the configured keys, refusing what JWT libraries have
/// historically let through: `alg: none` and empty signatures, an `alg` other than the key's
/// own (algorithm confusion: an RSA public key used as an HMAC secret), unknown `kid`s,
/// `crit` headers, missing `exp`, expired or not-yet-valid tokens, wrong issuer or audience.
public final class JWTVerifier: Sendable {
    private struct Entry: Sendable {
        var key: HostConfig.JWTKey
        var collection: JWTKeyCollection
    }

    private let settings: HostConfig.JWT
    private let entries: [Entry]

    /// What a verified token says.
    public struct Verified: Sendable {
        /// Every claim.
        public var claims: [String: JSONValue]
        /// The kid of the key that verified it.
        public var kid: String?
    }

    /// Loads the keys (PEM parsing happens here: a bad key fails at start-up, not per request).
    public init(settings: HostConfig.JWT) async throws(HostConfigError) {
        self.settings = settings
        var entries: [Entry] = []
        for (i, key) in settings.keys.enumerated() {
            let collection = JWTKeyCollection()
            do {
                switch key.algorithm {
                case .hs256:
                    await collection.add(hmac: HMACKey(from: key.secret ?? []), digestAlgorithm: .sha256)
                case .rs256:
                    let pem = key.publicKeyPEM ?? ""
                    let rsa = try Insecure.RSA.PublicKey(pem: pem)
                    await collection.add(rsa: rsa, digestAlgorithm: .sha256)
                case .eddsa:
                    await collection.add(eddsa: try EdDSA.PublicKey(pem: key.publicKeyPEM ?? ""))
                }
            } catch {
                throw HostConfigError("jwt.keys[\(i)]: cannot use the \(key.algorithm.rawValue) public key: \(error)")
            }
            entries.append(Entry(key: key, collection: collection))
        }
        self.entries = entries
    }

    /// Whether `token` has the shape of a JWT (three base64url parts, a JSON header with `alg`).
    public static func looksLikeJWT(_ token: String) -> Bool {
        // Exactly two dots, counted before anything is split or decoded (API keys have none).
        var dots = 0
        for b in token.utf8 where b == UInt8(ascii: ".") { dots += 1 }
        guard dots == 2 else { return false }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = decodeSegment(parts[0]) else { return false }
        return header["alg"] != nil
    }

    /// Verifies `token` at time `now` (seconds since the epoch) and returns its claims.
    public func verify(_ token: String, now: Double = Date().timeIntervalSince1970) async throws(AuthError) -> Verified {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .invalidToken("a JWT has three dot-separated parts") }
        guard let header = Self.decodeSegment(parts[0])?.objectValue else { throw .invalidToken("the JWT header is not base64url JSON") }
        guard let alg = header["alg"]?.stringValue else { throw .invalidToken("the JWT header has no alg") }
        if alg.lowercased() == "none" || parts[2].isEmpty { throw .invalidToken("unsigned tokens (alg none) are not accepted") }
        if header["crit"] != nil { throw .invalidToken("the JWT header has critical extensions (crit), which are not supported") }
        if let typ = header["typ"]?.stringValue, !["jwt", "at+jwt", "application/jwt"].contains(typ.lowercased()) {
            throw .invalidToken("the JWT typ '\(typ)' is not accepted")
        }
        let entry: Entry
        if let kid = header["kid"]?.stringValue {
            guard let e = entries.first(where: { $0.key.kid == kid }) else { throw .invalidToken("unknown key id (kid) '\(kid)'") }
            entry = e
        } else {
            let candidates = entries.filter { $0.key.algorithm.rawValue == alg }
            guard !candidates.isEmpty else { throw .invalidToken("no key accepts alg \(alg)") }
            guard candidates.count == 1 else { throw .invalidToken("several keys accept alg \(alg): the token must name one with kid") }
            entry = candidates[0]
        }
        // The key decides the algorithm, never the token: a token that says another alg is refused.
        guard entry.key.algorithm.rawValue == alg else {
            throw .invalidToken("alg \(alg) does not match the key's algorithm \(entry.key.algorithm.rawValue)")
        }
        let payload: TokenClaims
        do { payload = try await entry.collection.verify(token, as: TokenClaims.self) } catch {
            if let e = error as? JWTError, e.errorType == .signatureVerificationFailed { throw .invalidToken("bad signature") }
            throw .invalidToken("the token does not verify: bad signature or malformed payload")
        }
        let claims = payload.claims
        let leeway = Double(settings.leewaySeconds)
        guard let exp = claims["exp"]?.doubleValue else { throw .invalidToken("the token has no exp (expiry) claim") }
        if now > exp + leeway { throw .invalidToken("the token expired") }
        if let nbf = claims["nbf"] {
            guard let t = nbf.doubleValue else { throw .invalidToken("nbf is not a number") }
            if now + leeway < t { throw .invalidToken("the token is not valid yet (nbf)") }
        }
        if let iat = claims["iat"] {
            guard let t = iat.doubleValue else { throw .invalidToken("iat is not a number") }
            if t > now + leeway { throw .invalidToken("the token was issued in the future (iat)") }
        }
        if let max = settings.maxLifetimeSeconds, exp - now > Double(max) { throw .invalidToken("the token lives longer than allowed") }
        guard claims["iss"]?.stringValue == settings.issuer else { throw .invalidToken("wrong issuer (iss)") }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let s)?: audiences = [s]
        case .array(let a)?: audiences = a.compactMap(\.stringValue)
        default: audiences = []
        }
        guard audiences.contains(settings.audience) else { throw .invalidToken("wrong audience (aud)") }
        return Verified(claims: claims, kid: entry.key.kid)
    }

    static func decodeSegment(_ s: Substring) -> JSONValue? {
        var b64 = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return try? JSONValue.parse(Array(data))
    }
}
