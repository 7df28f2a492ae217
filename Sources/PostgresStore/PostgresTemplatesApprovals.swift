import HostSupport
import JSON
import Logging
import PostgresNIO
import Store

/// Templates and approval requests in PostgreSQL (schema version 7): the same contract as
/// SQLite (`TemplateApprovalStoreTests` runs on both).
extension PostgresStore: TemplateStore, ApprovalStore {
    static let templatesApprovalsMigration: [PostgresQuery] = [
        """
        CREATE TABLE nova_templates (
            name       TEXT NOT NULL,
            version    TEXT NOT NULL,
            hash       TEXT NOT NULL,
            document   TEXT NOT NULL,
            source     TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (name, version)
        )
        """,
        """
        CREATE TABLE nova_approvals (
            id           TEXT PRIMARY KEY,
            run_id       TEXT NOT NULL,
            step_id      TEXT NOT NULL,
            tool         TEXT NOT NULL,
            input_digest TEXT NOT NULL,
            input        TEXT NOT NULL,
            principal    TEXT NOT NULL,
            rule         TEXT NOT NULL,
            reason       TEXT NOT NULL,
            status       TEXT NOT NULL,
            requested_at TEXT NOT NULL,
            expires_at   BIGINT NOT NULL,
            decided_by   TEXT,
            decided_at   TEXT,
            comment      TEXT,
            checkpoint   TEXT,
            UNIQUE (run_id, step_id, input_digest)
        )
        """,
        "CREATE INDEX nova_approvals_by_status ON nova_approvals(status, requested_at)",
    ]

    private typealias TemplateRow = (String, String, String, String, String, String?, String)

    private static func template(_ r: TemplateRow) -> StoredTemplate {
        StoredTemplate(name: r.0, version: r.1, hash: r.2, document: (try? JSONValue.parse(r.3)) ?? .null, source: r.4, createdBy: r.5, createdAt: r.6)
    }

    public func putTemplate(_ t: StoredTemplate) async throws -> TemplatePutOutcome {
        let doc = t.document.serialized(sortedKeys: true)
        let rows = try await client.query("""
            INSERT INTO nova_templates (name, version, hash, document, source, created_by, created_at)
            VALUES (\(t.name), \(t.version), \(t.hash), \(doc), \(t.source), \(t.createdBy), \(t.createdAt))
            ON CONFLICT (name, version) DO NOTHING RETURNING name
            """, logger: logger)
        for try await _ in rows { return .created }
        for try await hash in try await client.query("SELECT hash FROM nova_templates WHERE name = \(t.name) AND version = \(t.version)",
                                                     logger: logger).decode(String.self) {
            return hash == t.hash ? .unchanged : .conflict(existingHash: hash)
        }
        throw PostgresStoreError("template \(t.name)@\(t.version) was neither stored nor found")
    }

    public func templateVersions(name: String) async throws -> [StoredTemplate] {
        var out: [StoredTemplate] = []
        for try await r in try await client.query("""
            SELECT name, version, hash, document, source, created_by, created_at FROM nova_templates WHERE name = \(name)
            """, logger: logger).decode(TemplateRow.self) { out.append(Self.template(r)) }
        return out
    }

    public func allTemplates() async throws -> [StoredTemplate] {
        var out: [StoredTemplate] = []
        for try await r in try await client.query("SELECT name, version, hash, document, source, created_by, created_at FROM nova_templates",
                                                  logger: logger).decode(TemplateRow.self) { out.append(Self.template(r)) }
        return out
    }

    private typealias ApprovalRow = (String, String, String, String, String, String, String, String, String, String, String, Int64, String?, String?, String?, String?)

    private static func approval(_ r: ApprovalRow) -> ApprovalRequest {
        var a = ApprovalRequest(id: r.0, runId: r.1, stepId: r.2, tool: r.3, inputDigest: r.4, input: (try? JSONValue.parse(r.5)) ?? .null,
                        principal: r.6, rule: r.7, reason: r.8, status: ApprovalStatus(rawValue: r.9) ?? .pending, requestedAt: r.10,
                        expiresAtMs: r.11, decidedBy: r.12, decidedAt: r.13, comment: r.14)
        a.checkpoint = r.15.flatMap { try? JSONValue.parse($0) }
        return a
    }

    private static let approvalColumns = "id, run_id, step_id, tool, input_digest, input, principal, rule, reason, status, requested_at, expires_at, decided_by, decided_at, comment, checkpoint"

    private func approvals(_ query: PostgresQuery) async throws -> [ApprovalRequest] {
        var out: [ApprovalRequest] = []
        for try await r in try await client.query(query, logger: logger).decode(ApprovalRow.self) { out.append(Self.approval(r)) }
        return out
    }

    public func openApproval(_ a: ApprovalRequest) async throws -> ApprovalRequest {
        let input = a.input.serialized(sortedKeys: true)
        let checkpoint = a.checkpoint?.serialized(sortedKeys: true)
        try await client.query("""
            INSERT INTO nova_approvals (id, run_id, step_id, tool, input_digest, input, principal, rule, reason, status, requested_at, expires_at, checkpoint)
            VALUES (\(a.id), \(a.runId), \(a.stepId), \(a.tool), \(a.inputDigest), \(input), \(a.principal), \(a.rule), \(a.reason),
                    \(a.status.rawValue), \(a.requestedAt), \(a.expiresAtMs), \(checkpoint))
            ON CONFLICT (run_id, step_id, input_digest) DO NOTHING
            """, logger: logger)
        var q = PostgresQuery(unsafeSQL: "SELECT \(Self.approvalColumns) FROM nova_approvals WHERE run_id = $1 AND step_id = $2 AND input_digest = $3")
        q.binds.append(a.runId); q.binds.append(a.stepId); q.binds.append(a.inputDigest)
        guard let stored = try await approvals(q).first else { throw PostgresStoreError("approval request for run \(a.runId) was not stored") }
        return stored
    }

    public func approval(id: String) async throws -> ApprovalRequest? {
        var q = PostgresQuery(unsafeSQL: "SELECT \(Self.approvalColumns) FROM nova_approvals WHERE id = $1")
        q.binds.append(id)
        return try await approvals(q).first
    }

    public func decideApproval(id: String, approve: Bool, by: String, comment: String?, nowMs: Int64) async throws -> ApprovalDecisionOutcome {
        let logger = self.logger
        return try await inTransaction { conn in
            var q = PostgresQuery(unsafeSQL: "SELECT \(Self.approvalColumns) FROM nova_approvals WHERE id = $1 FOR UPDATE")
            q.binds.append(id)
            var found: ApprovalRequest?
            for try await r in try await conn.query(q, logger: logger).decode(ApprovalRow.self) { found = Self.approval(r) }
            guard var a = found else { return .notFound }
            guard a.status == .pending else { return .notPending(a) }
            if nowMs > a.expiresAtMs {
                try await conn.query("UPDATE nova_approvals SET status = 'expired' WHERE id = \(id)", logger: logger)
                a.status = .expired
                return .notPending(a)
            }
            let at = Timestamps.now()
            a.status = approve ? .approved : .denied
            (a.decidedBy, a.decidedAt, a.comment) = (by, at, comment)
            try await conn.query("""
                UPDATE nova_approvals SET status = \(a.status.rawValue), decided_by = \(by), decided_at = \(at), comment = \(comment) WHERE id = \(id)
                """, logger: logger)
            return .decided(a)
        }
    }

    public func listApprovals(status: ApprovalStatus?, runId: String?, limit: Int) async throws -> [ApprovalRequest] {
        var q = PostgresQuery(unsafeSQL: """
            SELECT \(Self.approvalColumns) FROM nova_approvals WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR run_id = $2)
            ORDER BY requested_at DESC, id LIMIT $3
            """)
        q.binds.append(status?.rawValue); q.binds.append(runId); q.binds.append(max(0, limit))
        return try await approvals(q)
    }
}
