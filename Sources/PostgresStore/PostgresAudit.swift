import HostSupport
import JSON
import Logging
import PostgresNIO
import Store

/// The audit log in PostgreSQL (schema version 8): hosts append under one advisory lock, so
/// the chain has one head however many hosts write.
extension PostgresStore: AuditStore {
    static let auditMigration: [PostgresQuery] = [
        """
        CREATE TABLE nova_audit (
            seq       BIGINT PRIMARY KEY,
            at        TEXT NOT NULL,
            at_ms     BIGINT NOT NULL,
            actor     TEXT NOT NULL,
            action    TEXT NOT NULL,
            target    TEXT NOT NULL,
            detail    TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        )
        """,
        "CREATE INDEX nova_audit_by_actor ON nova_audit(actor, seq)",
    ]

    private typealias Row = (Int64, String, String, String, String, String, String, String)

    public func appendAudit(actor: String, action: String, target: String, detail: JSONValue) async throws -> AuditEntry {
        let logger = self.logger
        let detailText = detail.serialized(sortedKeys: true)
        return try await inTransaction { conn in
            try await conn.query("SELECT pg_advisory_xact_lock(7243001)", logger: logger)
            var head: (Int64, String)?
            for try await r in try await conn.query("SELECT seq, hash FROM nova_audit ORDER BY seq DESC LIMIT 1", logger: logger).decode((Int64, String).self) {
                head = r
            }
            let nanos = Timestamps.wallNanos()
            let e = AuditEntry(seq: (head?.0 ?? 0) + 1, at: Timestamps.format(nanosSinceEpoch: nanos), actor: actor, action: action,
                               target: target, detail: detail, prevHash: head?.1 ?? AuditEntry.genesis)
            let ms = nanos / 1_000_000
            try await conn.query("""
                INSERT INTO nova_audit (seq, at, at_ms, actor, action, target, detail, prev_hash, hash)
                VALUES (\(e.seq), \(e.at), \(ms), \(actor), \(action), \(target), \(detailText), \(e.prevHash), \(e.hash))
                """, logger: logger)
            return e
        }
    }

    public func listAudit(_ filter: AuditFilter, limit: Int) async throws -> [AuditEntry] {
        let prefix = filter.action.map { $0.hasSuffix(".") ? $0 + "%" : $0 }
        var q = PostgresQuery(unsafeSQL: """
            SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM nova_audit
            WHERE ($1::TEXT IS NULL OR actor = $1) AND ($2::TEXT IS NULL OR action LIKE $2)
              AND ($3::BIGINT IS NULL OR at_ms >= $3) AND ($4::BIGINT IS NULL OR seq > $4)
            ORDER BY seq LIMIT $5
            """)
        q.binds.append(filter.actor); q.binds.append(prefix); q.binds.append(filter.sinceMs); q.binds.append(filter.afterSeq)
        q.binds.append(max(0, limit))
        var out: [AuditEntry] = []
        for try await r in try await client.query(q, logger: logger).decode(Row.self) {
            out.append(AuditEntry(seq: r.0, at: r.1, actor: r.2, action: r.3, target: r.4, detail: (try? JSONValue.parse(r.5)) ?? .null,
                                  prevHash: r.6, hash: r.7))
        }
        return out
    }
}
