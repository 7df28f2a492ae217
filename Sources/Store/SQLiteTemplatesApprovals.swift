import CSQLite
import HostSupport
import JSON

/// Templates and approval requests in the embedded store (schema version 6).
extension SQLiteStore: TemplateStore, ApprovalStore {
    static let templatesApprovalsMigration = """
        CREATE TABLE templates (
            name       TEXT NOT NULL,
            version    TEXT NOT NULL,
            hash       TEXT NOT NULL,
            document   TEXT NOT NULL,
            source     TEXT NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (name, version)
        );
        CREATE TABLE approvals (
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
            expires_at   INTEGER NOT NULL,
            decided_by   TEXT,
            decided_at   TEXT,
            comment      TEXT,
            checkpoint   TEXT,
            UNIQUE (run_id, step_id, input_digest)
        );
        CREATE INDEX approvals_by_status ON approvals(status, requested_at);
        """

    private static func template(_ r: [SQLValue]) -> StoredTemplate {
        StoredTemplate(name: r[0].text ?? "", version: r[1].text ?? "", hash: r[2].text ?? "",
                       document: (try? JSONValue.parse(r[3].text ?? "null")) ?? .null, source: r[4].text ?? "",
                       createdBy: r[5].text, createdAt: r[6].text ?? "")
    }

    static let templateColumns = "name, version, hash, document, source, created_by, created_at"

    public func putTemplate(_ t: StoredTemplate) async throws -> TemplatePutOutcome {
        try await write { [self] in
            if let existing = try conn.query("SELECT hash FROM templates WHERE name = ? AND version = ?", [.text(t.name), .text(t.version)]).first {
                let hash = existing[0].text ?? ""
                return hash == t.hash ? .unchanged : .conflict(existingHash: hash)
            }
            try conn.query("INSERT INTO templates (\(Self.templateColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [.text(t.name), .text(t.version), .text(t.hash), .text(t.document.serialized(sortedKeys: true)), .text(t.source),
                            t.createdBy.map { .text($0) } ?? .null, .text(t.createdAt)])
            return .created
        }
    }

    public func templateVersions(name: String) async throws -> [StoredTemplate] {
        try await onConnection { [self] in
            try conn.query("SELECT \(Self.templateColumns) FROM templates WHERE name = ?", [.text(name)]).map(Self.template)
        }
    }

    public func allTemplates() async throws -> [StoredTemplate] {
        try await onConnection { [self] in try conn.query("SELECT \(Self.templateColumns) FROM templates").map(Self.template) }
    }

    static let approvalColumns = "id, run_id, step_id, tool, input_digest, input, principal, rule, reason, status, requested_at, expires_at, decided_by, decided_at, comment, checkpoint"

    private static func approval(_ r: [SQLValue]) -> ApprovalRequest {
        var a = ApprovalRequest(id: r[0].text ?? "", runId: r[1].text ?? "", stepId: r[2].text ?? "", tool: r[3].text ?? "",
                        inputDigest: r[4].text ?? "", input: (try? JSONValue.parse(r[5].text ?? "null")) ?? .null,
                        principal: r[6].text ?? "", rule: r[7].text ?? "", reason: r[8].text ?? "",
                        status: ApprovalStatus(rawValue: r[9].text ?? "") ?? .pending, requestedAt: r[10].text ?? "",
                        expiresAtMs: Int64(r[11].int ?? 0), decidedBy: r[12].text, decidedAt: r[13].text, comment: r[14].text)
        a.checkpoint = r[15].text.flatMap { try? JSONValue.parse($0) }
        return a
    }

    private func approvalRow(id: String) throws -> ApprovalRequest? {
        try conn.query("SELECT \(Self.approvalColumns) FROM approvals WHERE id = ?", [.text(id)]).first.map(Self.approval)
    }

    public func openApproval(_ a: ApprovalRequest) async throws -> ApprovalRequest {
        try await write { [self] in
            if let existing = try conn.query("SELECT \(Self.approvalColumns) FROM approvals WHERE run_id = ? AND step_id = ? AND input_digest = ?",
                                             [.text(a.runId), .text(a.stepId), .text(a.inputDigest)]).first {
                return Self.approval(existing)
            }
            try conn.query("INSERT INTO approvals (\(Self.approvalColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?)",
                           [.text(a.id), .text(a.runId), .text(a.stepId), .text(a.tool), .text(a.inputDigest),
                            .text(a.input.serialized(sortedKeys: true)), .text(a.principal), .text(a.rule), .text(a.reason),
                            .text(a.status.rawValue), .text(a.requestedAt), .int(a.expiresAtMs),
                            a.checkpoint.map { .text($0.serialized(sortedKeys: true)) } ?? .null])
            return a
        }
    }

    public func approval(id: String) async throws -> ApprovalRequest? {
        try await onConnection { [self] in try approvalRow(id: id) }
    }

    public func decideApproval(id: String, approve: Bool, by: String, comment: String?, nowMs: Int64) async throws -> ApprovalDecisionOutcome {
        try await write { [self] in
            guard var a = try approvalRow(id: id) else { return .notFound }
            guard a.status == .pending else { return .notPending(a) }
            let at = Timestamps.now()
            if nowMs > a.expiresAtMs {
                try conn.query("UPDATE approvals SET status = 'expired' WHERE id = ?", [.text(id)])
                a.status = .expired
                return .notPending(a)
            }
            a.status = approve ? .approved : .denied
            (a.decidedBy, a.decidedAt, a.comment) = (by, at, comment)
            try conn.query("UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, comment = ? WHERE id = ?",
                           [.text(a.status.rawValue), .text(by), .text(at), comment.map { .text($0) } ?? .null, .text(id)])
            return .decided(a)
        }
    }

    public func listApprovals(status: ApprovalStatus?, runId: String?, limit: Int) async throws -> [ApprovalRequest] {
        try await onConnection { [self] in
            var sql = "SELECT \(Self.approvalColumns) FROM approvals WHERE 1 = 1"
            var args: [SQLValue] = []
            if let status { sql += " AND status = ?"; args.append(.text(status.rawValue)) }
            if let runId { sql += " AND run_id = ?"; args.append(.text(runId)) }
            sql += " ORDER BY requested_at DESC, id LIMIT ?"
            args.append(.int(Int64(max(0, limit))))
            return try conn.query(sql, args).map(Self.approval)
        }
    }
}
