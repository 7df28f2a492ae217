import Foundation
import Logging
import PostgresNIO
import PostgresStore
import PostgresSupport
import Testing

/// The real PostgreSQL 15 that `make test` starts (Tests/servers/with-servers.sh): a fresh
/// database per test, and the stores a test opened, closed when it ends.
public enum PostgresTestDatabase {
    public static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    public static func baseURL() throws -> String {
        let v = ProcessInfo.processInfo.environment["NOVA_TEST_PG_DSN"]
        return try #require(v.flatMap { $0.isEmpty ? nil : $0 },
                            "NOVA_TEST_PG_DSN is not set: run under Tests/servers/with-servers.sh (make test does)")
    }

    /// Creates an empty database and returns the URL that names it.
    public static func fresh() async throws -> String {
        let base = try baseURL()
        let name = "nova_store_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let config = try PostgresDSN(dsn: base).configuration(connectTimeoutMs: 10_000, startup: [])
        let conn = try await PostgresConnection.connect(configuration: config, id: 1, logger: logger)
        try await conn.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        try await conn.close()
        var url = try #require(URLComponents(string: base))
        url.path = "/" + name
        return try #require(url.string)
    }

    /// The stores a test opened, closed when it ends: the suites run beside the driver tests
    /// on one server, so connections are few (3 per store) and never left for the idle timeout.
    public final class Stores: @unchecked Sendable {
        private let lock = NSLock()
        private var opened: [PostgresStore] = []
        public init() {}
        public func connect(_ url: String) async throws -> PostgresStore {
            // A generous connect timeout: under a loaded machine (many suites creating databases at
            // once) the first answer can take longer than a host's default 10 s; it bounds setup only.
            let store = try await PostgresStore.connect(url: url, connectTimeoutMs: 60_000, maxConnections: 3)
            lock.withLock { opened.append(store) }
            return store
        }
        deinit { for s in opened { s.close() } }
    }
}
