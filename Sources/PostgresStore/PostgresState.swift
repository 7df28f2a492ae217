import HostSupport
import JSON
import Logging
import PostgresNIO
import Store

/// Agents' state in PostgreSQL (schema version 5): the same contract as SQLite
/// (`AgentStoreTests` runs on both). A put or delete locks the key's row (or, for a new key,
/// inserts it), appends the change and writes the key in one transaction.
extension PostgresStore: StateStore {
    static let stateMigration: [PostgresQuery] = [
        """
        CREATE TABLE nova_agent_state (
            scope      TEXT NOT NULL,
            key        TEXT NOT NULL,
            value      TEXT NOT NULL,
            version    BIGINT NOT NULL,
            revision   BIGINT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (scope, key)
        )
        """,
        """
        CREATE TABLE nova_state_changes (
            revision BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            scope    TEXT NOT NULL,
            key      TEXT NOT NULL,
            op       TEXT NOT NULL,
            value    TEXT,
            version  BIGINT NOT NULL
        )
        """,
        "CREATE INDEX nova_state_changes_by_scope ON nova_state_changes(scope, revision)",
        "CREATE TABLE nova_state_meta (compacted_through BIGINT NOT NULL)",
        "INSERT INTO nova_state_meta VALUES (0)",
    ]

    private typealias EntryRow = (String, String, String, Int, Int64, String)

    private static func entry(_ r: EntryRow) -> StateEntry {
        StateEntry(scope: r.0, key: r.1, value: (try? JSONValue.parse(r.2)) ?? .null, version: r.3, revision: r.4, updatedAt: r.5)
    }

    private static func current(_ scope: String, _ key: String, on conn: PostgresConnection, logger: Logger) async throws -> StateEntry? {
        for try await r in try await conn.query("""
            SELECT scope, key, value, version, revision, updated_at FROM nova_agent_state WHERE scope = \(scope) AND key = \(key) FOR UPDATE
            """, logger: logger).decode(EntryRow.self) { return entry(r) }
        return nil
    }

    private static func appendChange(_ scope: String, _ key: String, op: String, value: String?, version: Int,
                                      on conn: PostgresConnection, logger: Logger) async throws -> Int64 {
        for try await (rev) in try await conn.query("""
            INSERT INTO nova_state_changes (scope, key, op, value, version) VALUES (\(scope), \(key), \(op), \(value), \(version)) RETURNING revision
            """, logger: logger).decode(Int64.self) { return rev }
        throw PostgresStoreError("the state change was not recorded")
    }

    public func stateGet(scope: String, key: String) async throws -> StateEntry? {
        for try await r in try await client.query("""
            SELECT scope, key, value, version, revision, updated_at FROM nova_agent_state WHERE scope = \(scope) AND key = \(key)
            """, logger: logger).decode(EntryRow.self) { return Self.entry(r) }
        return nil
    }

    public func statePut(scope: String, key: String, value: JSONValue, ifVersion: Int?) async throws -> StateEntry {
        let text = value.serialized(sortedKeys: true)
        let logger = self.logger
        return try await inTransaction { conn in
            // Serialize writers of a key that does not exist yet too.
            try await conn.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope + "|" + key), 7))", logger: logger)
            let now = try await Self.current(scope, key, on: conn, logger: logger)
            try StateError.check(key: key, ifVersion: ifVersion, current: now?.version)
            let version = (now?.version ?? 0) + 1
            let revision = try await Self.appendChange(scope, key, op: "put", value: text, version: version, on: conn, logger: logger)
            let at = Timestamps.now()
            try await conn.query("""
                INSERT INTO nova_agent_state (scope, key, value, version, revision, updated_at) VALUES (\(scope), \(key), \(text), \(version), \(revision), \(at))
                ON CONFLICT (scope, key) DO UPDATE SET value = excluded.value, version = excluded.version, revision = excluded.revision,
                    updated_at = excluded.updated_at
                """, logger: logger)
            return StateEntry(scope: scope, key: key, value: value, version: version, revision: revision, updatedAt: at)
        }
    }

    public func stateDelete(scope: String, key: String, ifVersion: Int?) async throws -> Bool {
        let logger = self.logger
        return try await inTransaction { conn in
            try await conn.query("SELECT pg_advisory_xact_lock(hashtextextended(\(scope + "|" + key), 7))", logger: logger)
            let now = try await Self.current(scope, key, on: conn, logger: logger)
            try StateError.check(key: key, ifVersion: ifVersion, current: now?.version)
            guard let now else { return false }
            _ = try await Self.appendChange(scope, key, op: "delete", value: nil, version: now.version, on: conn, logger: logger)
            try await conn.query("DELETE FROM nova_agent_state WHERE scope = \(scope) AND key = \(key)", logger: logger)
            return true
        }
    }

    public func stateList(scope: String, prefix: String, limit: Int) async throws -> [StateEntry] {
        var out: [StateEntry] = []
        for try await r in try await client.query("""
            SELECT scope, key, value, version, revision, updated_at FROM nova_agent_state
            WHERE scope = \(scope) AND left(key, \(prefix.count)::INT) = \(prefix) ORDER BY key COLLATE "C" LIMIT \(max(0, limit))
            """, logger: logger).decode(EntryRow.self) { out.append(Self.entry(r)) }
        return out
    }

    public func stateChanges(scope: String, after revision: Int64, limit: Int) async throws -> StateChanges {
        let logger = self.logger
        return try await inTransaction { conn in
            var compacted: Int64 = 0, head: Int64 = 0
            for try await (c, h) in try await conn.query("""
                SELECT (SELECT compacted_through FROM nova_state_meta), (SELECT coalesce(max(revision), 0) FROM nova_state_changes)
                """, logger: logger).decode((Int64, Int64).self) { (compacted, head) = (c, h) }
            var changes: [StateChange] = []
            for try await (rev, sc, key, op, value, version) in try await conn.query("""
                SELECT revision, scope, key, op, value, version FROM nova_state_changes
                WHERE scope = \(scope) AND revision > \(revision) ORDER BY revision LIMIT \(max(0, limit))
                """, logger: logger).decode((Int64, String, String, String, String?, Int).self) {
                changes.append(StateChange(revision: rev, scope: sc, key: key, op: op, value: value.flatMap { try? JSONValue.parse($0) }, version: version))
            }
            return StateChanges(changes: changes, compacted: revision < compacted, head: max(head, compacted))
        }
    }

    public func compactStateChanges(keepLast: Int) async throws -> Int {
        let logger = self.logger
        return try await inTransaction { conn in
            var head: Int64 = 0
            for try await (h) in try await conn.query("SELECT coalesce(max(revision), 0) FROM nova_state_changes", logger: logger).decode(Int64.self) { head = h }
            let through = head - Int64(max(0, keepLast))
            guard through > 0 else { return 0 }
            var n = 0
            for try await _ in try await conn.query("DELETE FROM nova_state_changes WHERE revision <= \(through) RETURNING 1", logger: logger) { n += 1 }
            try await conn.query("UPDATE nova_state_meta SET compacted_through = greatest(compacted_through, \(through))", logger: logger)
            return n
        }
    }
}
