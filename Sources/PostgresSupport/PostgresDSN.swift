import Foundation
import NIOSSL
import PostgresNIO

/// Where and how to connect to PostgreSQL, read from a DSN (shared by the `postgres` driver and
/// the PostgreSQL store). Its text is a secret (it may hold a password):
/// nothing here ever puts the DSN or the password into a message.
///
/// Accepted forms (as libpq reads them):
///   `postgres://user:password@host:port/dbname?sslmode=require&application_name=x`
///   `postgresql://…` (same), and
///   `host=… port=… user=… password=… dbname=… sslmode=…` (values may be single-quoted).
/// A host that starts with `/` is a Unix-socket directory. sslmode: disable, allow/prefer
/// (TLS when offered, no verification), require (TLS, no verification), verify-ca (TLS,
/// chain verified), verify-full (TLS, chain and host name verified); `sslrootcert` names a CA file.
public struct PostgresDSN: Sendable {
    public var host = "localhost"
    public var port = 5432
    public var user = "postgres"
    public var password: String?
    public var database: String?
    public var sslmode = "prefer"
    public var sslrootcert: String?
    public var applicationName: String?

    /// Where the server is, for messages (never includes credentials).
    public var endpoint: String { host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)") }

    public init(dsn: String) throws(PostgresDSNError) {
        let text = dsn.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            try parseURL(text)
        } else if text.contains("=") {
            try parseKeywords(text)
        } else {
            throw PostgresDSNError("the PostgreSQL DSN is neither a postgres:// URL nor key=value pairs")
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslmode) else {
            throw PostgresDSNError("the PostgreSQL DSN has an unknown sslmode")
        }
    }

    private mutating func parseURL(_ text: String) throws(PostgresDSNError) {
        guard let comps = URLComponents(string: text) else { throw PostgresDSNError("the PostgreSQL DSN is not a valid URL") }
        if let h = comps.percentEncodedHost, !h.isEmpty {
            var host = h.removingPercentEncoding ?? h
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            self.host = host
        }
        if let p = comps.port { port = p }
        if let u = comps.percentEncodedUser, !u.isEmpty { user = u.removingPercentEncoding ?? u }
        if let pw = comps.percentEncodedPassword { password = pw.removingPercentEncoding ?? pw }
        let path = comps.percentEncodedPath
        if path.count > 1 { database = String(path.dropFirst()).removingPercentEncoding }
        for item in comps.queryItems ?? [] {
            try set(item.name, item.value ?? "")
        }
    }

    private mutating func parseKeywords(_ text: String) throws(PostgresDSNError) {
        var chars = Substring(text)
        func skipSpaces() { while chars.first?.isWhitespace == true { chars.removeFirst() } }
        while true {
            skipSpaces()
            guard !chars.isEmpty else { break }
            guard let eq = chars.firstIndex(of: "=") else { throw PostgresDSNError("the PostgreSQL DSN has a key without a value") }
            let key = chars[..<eq].trimmingCharacters(in: .whitespaces)
            chars = chars[chars.index(after: eq)...]
            skipSpaces()
            var value = ""
            if chars.first == "'" {
                chars.removeFirst()
                var closed = false
                while let c = chars.first {
                    chars.removeFirst()
                    if c == "\\", let n = chars.first { value.append(n); chars.removeFirst(); continue }
                    if c == "'" { closed = true; break }
                    value.append(c)
                }
                guard closed else { throw PostgresDSNError("the PostgreSQL DSN has an unterminated quoted value") }
            } else {
                while let c = chars.first, !c.isWhitespace {
                    chars.removeFirst()
                    if c == "\\", let n = chars.first { value.append(n); chars.removeFirst(); continue }
                    value.append(c)
                }
            }
            try set(key, value)
        }
    }

    private mutating func set(_ key: String, _ value: String) throws(PostgresDSNError) {
        switch key {
        case "host", "hostaddr": host = value
        case "port":
            guard let p = Int(value), (1...65535).contains(p) else { throw PostgresDSNError("the PostgreSQL DSN has an invalid port") }
            port = p
        case "user": user = value
        case "password": password = value
        case "dbname": database = value
        case "sslmode": sslmode = value
        case "sslrootcert": sslrootcert = value
        case "application_name": applicationName = value
        case "connect_timeout", "options", "target_session_attrs", "channel_binding", "gssencmode": break  // accepted, not used
        default: throw PostgresDSNError("the PostgreSQL DSN has an unsupported parameter '\(key)'")
        }
    }

    /// The TLS settings sslmode asks for (nil: no TLS).
    func tlsConfiguration() -> (TLSConfiguration, required: Bool)? {
        guard sslmode != "disable" else { return nil }
        var t = TLSConfiguration.makeClientConfiguration()
        switch sslmode {
        case "verify-full": t.certificateVerification = .fullVerification
        case "verify-ca": t.certificateVerification = .noHostnameVerification
        default: t.certificateVerification = .none
        }
        if let ca = sslrootcert { t.trustRoots = .file(ca) }
        return (t, !(sslmode == "allow" || sslmode == "prefer"))
    }

    /// The configuration of a pooled `PostgresClient` (the PostgreSQL store).
    public func clientConfiguration(connectTimeoutMs: Int, maxConnections: Int) -> PostgresClient.Configuration {
        var config: PostgresClient.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS = tlsConfiguration().map { $0.required ? .require($0.0) : .prefer($0.0) } ?? .disable
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = .milliseconds(Int64(max(1, connectTimeoutMs)))
        config.options.maximumConnections = maxConnections
        config.options.additionalStartupParameters = [("application_name", applicationName ?? "nova-host")]
        return config
    }

    /// The PostgresNIO configuration, with `startup` parameters (session defaults).
    public func configuration(connectTimeoutMs: Int, startup: [(String, String)]) throws -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            if let (t, required) = tlsConfiguration() {
                tls = required ? .require(try NIOSSLContext(configuration: t)) : .prefer(try NIOSSLContext(configuration: t))
            } else {
                tls = .disable
            }
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = .milliseconds(Int64(max(1, connectTimeoutMs)))
        config.options.additionalStartupParameters = startup + [("application_name", applicationName ?? "nova-host")]
        return config
    }
}

/// A DSN that cannot be used; the message never contains the DSN or its password.
public struct PostgresDSNError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Messages about PostgreSQL failures that name the server, never the password.
public enum PostgresFailure {
    /// Why connecting to `endpoint` failed: the server's message and SQLSTATE when it refused
    /// (e.g. 28P01, bad password), else the network reason.
    public static func connectReason(_ error: any Error, password: String?) -> (reason: String, sqlState: String?) {
        if let e = error as? PSQLError, e.code == .server, let info = e.serverInfo {
            return ("\(info[.message] ?? "refused") (SQLSTATE \(info[.sqlState] ?? "?"))", info[.sqlState])
        }
        var reason: String
        if let e = error as? PSQLError {
            reason = e.underlying.map { "\($0)" } ?? "\(e.code)"
        } else {
            reason = "\(error)"
        }
        if let password, !password.isEmpty { reason = reason.replacingOccurrences(of: password, with: "[REDACTED]") }
        return (reason, nil)
    }
}
