import CSQLite
import HostSupport
import JSON

/// The audit log in the embedded store (schema version 7).
extension SQLiteStore: AuditStore {
    static let auditMigration = """
        CREATE TABLE audit (
            seq       INTEGER PRIMARY KEY,
            at        TEXT NOT NULL,
            at_ms     INTEGER NOT NULL,
            actor     TEXT NOT NULL,
            action    TEXT NOT NULL,
            target    TEXT NOT NULL,
            detail    TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        );
        CREATE INDEX audit_by_actor ON audit(actor, seq);
        """

    private static func entry(_ r: [SQLValue]) -> AuditEntry {
        AuditEntry(seq: Int64(r[0].int ?? 0), at: r[1].text ?? "", actor: r[2].text ?? "", action: r[3].text ?? "", target: r[4].text ?? "",
                   detail: (try? JSONValue.parse(r[5].text ?? "null")) ?? .null, prevHash: r[6].text ?? "", hash: r[7].text ?? "")
    }

    public func appendAudit(actor: String, action: String, target: String, detail: JSONValue) async throws -> AuditEntry {
        try await write { [self] in
            let head = try conn.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").first
            let nanos = Timestamps.wallNanos()
            let e = AuditEntry(seq: Int64(head?[0].int ?? 0) + 1, at: Timestamps.format(nanosSinceEpoch: nanos), actor: actor, action: action,
                               target: target, detail: detail, prevHash: head?[1].text ?? AuditEntry.genesis)
            try conn.query("INSERT INTO audit (seq, at, at_ms, actor, action, target, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [.int(e.seq), .text(e.at), .int(nanos / 1_000_000), .text(actor), .text(action), .text(target),
                            .text(detail.serialized(sortedKeys: true)), .text(e.prevHash), .text(e.hash)])
            return e
        }
    }

    public func listAudit(_ filter: AuditFilter, limit: Int) async throws -> [AuditEntry] {
        try await onConnection { [self] in
            var sql = "SELECT seq, at, actor, action, target, detail, prev_hash, hash FROM audit WHERE 1 = 1"
            var args: [SQLValue] = []
            if let a = filter.actor { sql += " AND actor = ?"; args.append(.text(a)) }
            if let a = filter.action {
                if a.hasSuffix(".") { sql += " AND substr(action, 1, ?) = ?"; args += [.int(Int64(a.utf8.count)), .text(a)] }
                else { sql += " AND action = ?"; args.append(.text(a)) }
            }
            if let s = filter.sinceMs { sql += " AND at_ms >= ?"; args.append(.int(s)) }
            if let s = filter.afterSeq { sql += " AND seq > ?"; args.append(.int(s)) }
            sql += " ORDER BY seq LIMIT ?"
            args.append(.int(Int64(max(0, limit))))
            return try conn.query(sql, args).map(Self.entry)
        }
    }
}
