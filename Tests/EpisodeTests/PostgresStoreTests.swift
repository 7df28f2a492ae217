import Foundation
import Logging
import PostgresNIO
import PostgresStore
import PostgresSupport
import Testing
@testable import Host
import JSON

/// The store contract on the real PostgreSQL 15 that `make test` starts (Tests/servers), each
/// test in a database of its own.
@Suite struct PostgresStoreTests {
    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func baseURL() throws -> String {
        let v = ProcessInfo.processInfo.environment["NOVA_TEST_PG_DSN"]
        return try #require(v.flatMap { $0.isEmpty ? nil : $0 },
                            "NOVA_TEST_PG_DSN is not set: run under Tests/servers/with-servers.sh (make test does)")
    }

    /// Creates an empty database and returns the URL that names it.
    static func freshDatabase() async throws -> String {
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

    static func database() async throws -> StoreConformance.Database {
        let url = try await freshDatabase()
        return { try await PostgresStore.connect(url: url) }
    }

    @Test func conformanceEpisodeIndex() async throws {
        try await StoreConformance.episodeIndex(try await Self.database())
    }

    @Test func conformancePolicyState() async throws {
        try await StoreConformance.policyState(try await Self.database())
    }

    @Test func conformanceTransactions() async throws {
        try await StoreConformance.policyStateTransactionsLoseNoIncrement(try await Self.database())
    }

    /// Two hosts opening a new database together migrate it once; a database from a newer
    /// nova-host is refused with a message that says so.
    @Test func schemaIsMigratedOnceAndANewerOneIsRefused() async throws {
        let url = try await Self.freshDatabase()
        let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresStore.connect(url: url) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        try await stores[0].indexEpisode(StoreConformance.summary(1))
        #expect(try await stores[3].episode(runId: "run-1") == StoreConformance.summary(1))
        let config = try PostgresDSN(dsn: url).configuration(connectTimeoutMs: 10_000, startup: [])
        let conn = try await PostgresConnection.connect(configuration: config, id: 2, logger: Self.logger)
        try await conn.query("UPDATE nova_schema SET version = 99", logger: Self.logger)
        try await conn.close()
        do {
            _ = try await PostgresStore.connect(url: url)
            Issue.record("a newer schema was accepted")
        } catch {
            #expect("\(error)".contains("schema version 99, newer than this nova-host's (1)"), "\(error)")
        }
    }

    /// A server that does not answer: the error names host and port, never the password.
    @Test func anUnreachableServerIsNamedWithoutThePassword() async throws {
        // A port nothing listens on (bound, then closed).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)
        do {
            _ = try await PostgresStore.connect(url: "postgres://nova:s3cret-pw@127.0.0.1:\(port)/nova?sslmode=disable", connectTimeoutMs: 3000)
            Issue.record("connected to a closed port")
        } catch {
            let text = "\(error)"
            #expect(text.contains("cannot connect to PostgreSQL at 127.0.0.1:\(port)/nova"), "\(text)")
            #expect(!text.contains("s3cret-pw"), "\(text)")
        }
        do {
            _ = try await PostgresStore.connect(url: "postgres://nova:s3cret-pw@127.0.0.1:\(port)/nova?sslmode=bogus")
            Issue.record("a bad sslmode was accepted")
        } catch {
            #expect("\(error)".hasPrefix("invalid store URL:") && !"\(error)".contains("s3cret-pw"), "\(error)")
        }
    }
}
