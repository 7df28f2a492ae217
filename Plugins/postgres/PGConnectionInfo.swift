import DriverKit
import Foundation
import PostgresNIO

/// Where and how to connect, read from a DSN. Its text is a secret (it may hold a password):
/// nothing here ever puts the DSN or the password into a message.
///
/// Accepted forms (as libpq reads them):
///   `postgres://user:password@host:port/dbname?sslmode=require&application_name=x`
///   `postgresql://…` (same), and
///   `host=… port=… user=… password=… dbname=… sslmode=…` (values may be single-quoted).
/// A host that starts with `/` is a Unix-socket directory. sslmode: disable, allow/prefer
/// (TLS when offered, no verification), require (TLS, no verification), verify-ca (TLS,
/// chain verified), verify-full (TLS, chain and host name verified); `sslrootcert` names a CA file.
struct PGConnectionInfo: Sendable {
    var host = "localhost"
    var port = 5432
    var user = "postgres"
    var password: String?
    var database: String?
    var sslmode = "prefer"
    var sslrootcert: String?
    var applicationName: String?

    /// Where the server is, for messages (never includes credentials).
    var endpoint: String { host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)") }

    init(dsn: String) throws {
        let text = dsn.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            try parseURL(text)
        } else if text.contains("=") {
            try parseKeywords(text)
        } else {
            throw DriverError.invalidArgument("the PostgreSQL DSN is neither a postgres:// URL nor key=value pairs")
        }
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslmode) else {
            throw DriverError.invalidArgument("the PostgreSQL DSN has an unknown sslmode")
        }
    }

    private mutating func parseURL(_ text: String) throws {
        guard let comps = URLComponents(string: text) else { throw DriverError.invalidArgument("the PostgreSQL DSN is not a valid URL") }
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

    private mutating func parseKeywords(_ text: String) throws {
        var chars = Substring(text)
        func skipSpaces() { while chars.first?.isWhitespace == true { chars.removeFirst() } }
        while true {
            skipSpaces()
            guard !chars.isEmpty else { break }
            guard let eq = chars.firstIndex(of: "=") else { throw DriverError.invalidArgument("the PostgreSQL DSN has a key without a value") }
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
                guard closed else { throw DriverError.invalidArgument("the PostgreSQL DSN has an unterminated quoted value") }
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

    private mutating func set(_ key: String, _ value: String) throws {
        switch key {
        case "host", "hostaddr": host = value
        case "port":
            guard let p = Int(value), (1...65535).contains(p) else { throw DriverError.invalidArgument("the PostgreSQL DSN has an invalid port") }
            port = p
        case "user": user = value
        case "password": password = value
        case "dbname": database = value
        case "sslmode": sslmode = value
        case "sslrootcert": sslrootcert = value
        case "application_name": applicationName = value
        case "connect_timeout", "options", "target_session_attrs", "channel_binding", "gssencmode": break  // accepted, not used
        default: throw DriverError.invalidArgument("the PostgreSQL DSN has an unsupported parameter '\(key)'")
        }
    }

    /// The PostgresNIO configuration, with `startup` parameters (session defaults).
    func configuration(connectTimeoutMs: Int, startup: [(String, String)]) throws -> PostgresConnection.Configuration {
        var config: PostgresConnection.Configuration
        if host.hasPrefix("/") {
            config = .init(unixSocketPath: "\(host)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            switch sslmode {
            case "disable": tls = .disable
            default:
                var t = TLSConfiguration.makeClientConfiguration()
                switch sslmode {
                case "verify-full": t.certificateVerification = .fullVerification
                case "verify-ca": t.certificateVerification = .noHostnameVerification
                default: t.certificateVerification = .none
                }
                if let ca = sslrootcert { t.trustRoots = .file(ca) }
                tls = (sslmode == "allow" || sslmode == "prefer") ? .prefer(try NIOSSLContext(configuration: t)) : .require(try NIOSSLContext(configuration: t))
            }
            config = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        config.options.connectTimeout = .milliseconds(Int64(max(1, connectTimeoutMs)))
        config.options.additionalStartupParameters = startup + [("application_name", applicationName ?? "nova-host")]
        return config
    }
}
