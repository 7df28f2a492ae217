import CSQLite
import HostSupport
import JSON

/// Agents' state in the embedded store (schema version 4): each put or delete is one
/// transaction that writes the key and appends its change; the change's rowid is the revision.
extension SQLiteStore: StateStore {
    private static func entry(_ r: [SQLValue]) -> StateEntry {
        StateEntry(scope: r[0].text ?? "", key: r[1].text ?? "", value: (try? JSONValue.parse(r[2].text ?? "null")) ?? .null,
                   version: r[3].int ?? 0, revision: Int64(r[4].int ?? 0), updatedAt: r[5].text ?? "")
    }

    private func current(_ scope: String, _ key: String) throws -> StateEntry? {
        try conn.query("SELECT scope, key, value, version, revision, updated_at FROM agent_state WHERE scope = ? AND key = ?",
                       [.text(scope), .text(key)]).first.map(Self.entry)
    }

    private func appendChange(_ scope: String, _ key: String, op: String, value: String?, version: Int) throws -> Int64 {
        try conn.query("INSERT INTO state_changes (scope, key, op, value, version) VALUES (?, ?, ?, ?, ?)",
                       [.text(scope), .text(key), .text(op), value.map { .text($0) } ?? .null, .int(Int64(version))])
        return sqlite3_last_insert_rowid(conn.db)
    }

    public func stateGet(scope: String, key: String) async throws -> StateEntry? {
        try await onConnection { [self] in try current(scope, key) }
    }

    public func statePut(scope: String, key: String, value: JSONValue, ifVersion: Int?) async throws -> StateEntry {
        let text = value.serialized(sortedKeys: true)
        return try await write { [self] in
            let now = try current(scope, key)
            try StateError.check(key: key, ifVersion: ifVersion, current: now?.version)
            let version = (now?.version ?? 0) + 1
            let revision = try appendChange(scope, key, op: "put", value: text, version: version)
            let at = Timestamps.now()
            try conn.query("""
                INSERT INTO agent_state (scope, key, value, version, revision, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(scope, key) DO UPDATE SET value = excluded.value, version = excluded.version,
                    revision = excluded.revision, updated_at = excluded.updated_at
                """, [.text(scope), .text(key), .text(text), .int(Int64(version)), .int(revision), .text(at)])
            return StateEntry(scope: scope, key: key, value: value, version: version, revision: revision, updatedAt: at)
        }
    }

    public func stateDelete(scope: String, key: String, ifVersion: Int?) async throws -> Bool {
        try await write { [self] in
            let now = try current(scope, key)
            try StateError.check(key: key, ifVersion: ifVersion, current: now?.version)
            guard let now else { return false }
            _ = try appendChange(scope, key, op: "delete", value: nil, version: now.version)
            try conn.query("DELETE FROM agent_state WHERE scope = ? AND key = ?", [.text(scope), .text(key)])
            return true
        }
    }

    public func stateList(scope: String, prefix: String, limit: Int) async throws -> [StateEntry] {
        try await onConnection { [self] in
            try conn.query("""
                SELECT scope, key, value, version, revision, updated_at FROM agent_state
                WHERE scope = ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?
                """, [.text(scope), .int(Int64(prefix.utf8.count)), .text(prefix), .int(Int64(max(0, limit)))]).map(Self.entry)
        }
    }

    public func stateChanges(scope: String, after revision: Int64, limit: Int) async throws -> StateChanges {
        try await onConnection { [self] in
            try conn.exec("BEGIN")
            defer { try? conn.exec("COMMIT") }
            let compactedThrough = Int64(try conn.query("SELECT compacted_through FROM state_meta").first?.first?.int ?? 0)
            let head = Int64(try conn.query("SELECT coalesce(max(revision), 0) FROM state_changes").first?.first?.int ?? 0)
            let changes = try conn.query("""
                SELECT revision, scope, key, op, value, version FROM state_changes WHERE scope = ? AND revision > ? ORDER BY revision LIMIT ?
                """, [.text(scope), .int(revision), .int(Int64(max(0, limit)))]).map { r in
                StateChange(revision: Int64(r[0].int ?? 0), scope: r[1].text ?? "", key: r[2].text ?? "", op: r[3].text ?? "",
                            value: r[4].text.flatMap { try? JSONValue.parse($0) }, version: r[5].int ?? 0)
            }
            return StateChanges(changes: changes, compacted: revision < compactedThrough, head: max(head, compactedThrough))
        }
    }

    public func compactStateChanges(keepLast: Int) async throws -> Int {
        try await write { [self] in
            let head = Int64(try conn.query("SELECT coalesce(max(revision), 0) FROM state_changes").first?.first?.int ?? 0)
            let through = head - Int64(max(0, keepLast))
            guard through > 0 else { return 0 }
            try conn.query("DELETE FROM state_changes WHERE revision <= ?", [.int(through)])
            let n = Int(sqlite3_changes(conn.db))
            try conn.query("UPDATE state_meta SET compacted_through = max(compacted_through, ?)", [.int(through)])
            return n
        }
    }
}
