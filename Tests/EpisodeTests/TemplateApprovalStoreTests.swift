import Foundation
import Host
import JSON
import PostgresStore
import Testing

/// The contract of `TemplateStore` and `ApprovalStore`, run on SQLite and PostgreSQL.
enum TemplateApprovalStoreConformance {
    typealias Store = TemplateStore & ApprovalStore
    typealias Database = @Sendable () async throws -> any Store

    /// A version is stored once; the same content again is unchanged; other content under the
    /// same version is a conflict and the stored one stays.
    static func templates(_ connect: Database) async throws {
        let s = try await connect()
        func t(_ version: String, _ hash: String) -> StoredTemplate {
            StoredTemplate(name: "restock", version: version, hash: hash, document: ["v": .string(version), "h": .string(hash)],
                           source: "api", createdBy: "ada", createdAt: Timestamps.now())
        }
        #expect(try await s.putTemplate(t("1.0.0", "sha256:a")) == .created)
        #expect(try await s.putTemplate(t("1.0.0", "sha256:a")) == .unchanged)
        #expect(try await s.putTemplate(t("1.0.0", "sha256:b")) == .conflict(existingHash: "sha256:a"))
        #expect(try await s.putTemplate(t("1.1.0", "sha256:c")) == .created)
        _ = try await s.putTemplate(StoredTemplate(name: "other", version: "0.1.0", hash: "sha256:d", document: [:], source: "file:o.json", createdAt: Timestamps.now()))
        let versions = try await s.templateVersions(name: "restock").sorted { $0.version < $1.version }
        #expect(versions.map(\.version) == ["1.0.0", "1.1.0"] && versions[0].document["h"] == "sha256:a" && versions[0].createdBy == "ada")
        #expect(try await s.allTemplates().count == 3)
        #expect(try await s.templateVersions(name: "none").isEmpty)
    }

    /// A request is found again by run, step and input digest; a decision is recorded once; an
    /// expired request becomes `expired`; lists filter by status and run.
    static func approvals(_ connect: Database) async throws {
        let s = try await connect()
        let now = Timestamps.wallNanos() / 1_000_000
        func request(_ id: String, run: String, digest: String, expires: Int64) -> ApprovalRequest {
            var a = ApprovalRequest(id: id, runId: run, stepId: "a", tool: "echo.echo", inputDigest: digest, input: ["x": 1], principal: "uma",
                                    rule: "careful", reason: "needs a person", requestedAt: Timestamps.now(), expiresAtMs: expires)
            a.checkpoint = [["id": "first", "call": "echo.echo", "status": "succeeded", "output": 1]]
            return a
        }
        let first = try await s.openApproval(request("apr_1", run: "r1", digest: "sha256:x", expires: now + 60_000))
        #expect(first.id == "apr_1" && first.status == .pending)
        // The same call again (a resumed run) finds the stored request, not a new one.
        let again = try await s.openApproval(request("apr_2", run: "r1", digest: "sha256:x", expires: now + 60_000))
        #expect(again.id == "apr_1" && again.checkpoint?[0]?["id"] == "first")
        _ = try await s.openApproval(request("apr_3", run: "r1", digest: "sha256:y", expires: now + 60_000))
        _ = try await s.openApproval(request("apr_4", run: "r2", digest: "sha256:x", expires: now - 1))
        guard case .decided(let d) = try await s.decideApproval(id: "apr_1", approve: true, by: "amy", comment: "ok", nowMs: now) else {
            Issue.record("not decided"); return
        }
        #expect(d.status == .approved && d.decidedBy == "amy" && d.comment == "ok" && d.decidedAt != nil)
        guard case .notPending(let twice) = try await s.decideApproval(id: "apr_1", approve: false, by: "ada", comment: nil, nowMs: now) else {
            Issue.record("decided twice"); return
        }
        #expect(twice.status == .approved && twice.decidedBy == "amy")
        guard case .notPending(let late) = try await s.decideApproval(id: "apr_4", approve: true, by: "amy", comment: nil, nowMs: now) else {
            Issue.record("an expired request was decided"); return
        }
        #expect(late.status == .expired)
        #expect(try await s.decideApproval(id: "apr_none", approve: true, by: "amy", comment: nil, nowMs: now) == .notFound)
        #expect(try await s.approval(id: "apr_4")?.status == .expired)
        #expect(try await s.listApprovals(status: .pending, runId: nil, limit: 10).map(\.id) == ["apr_3"])
        #expect(Set(try await s.listApprovals(status: nil, runId: "r1", limit: 10).map(\.id)) == ["apr_1", "apr_3"])
        #expect(try await s.listApprovals(status: nil, runId: nil, limit: 2).count == 2)
    }
}

@Suite struct SQLiteTemplateApprovalStoreTests {
    static func database() -> TemplateApprovalStoreConformance.Database {
        let path = EpisodeFixtures.tempDir("templates") + "/nova.sqlite"
        return { try SQLiteStore(path: path) }
    }
    @Test func templates() async throws { try await TemplateApprovalStoreConformance.templates(Self.database()) }
    @Test func approvals() async throws { try await TemplateApprovalStoreConformance.approvals(Self.database()) }
}

@Suite struct PostgresTemplateApprovalStoreTests {
    static func database(_ stores: PostgresStoreTests.Stores) async throws -> TemplateApprovalStoreConformance.Database {
        let url = try await PostgresStoreTests.freshDatabase()
        return { try await stores.connect(url) }
    }
    @Test func templates() async throws { try await TemplateApprovalStoreConformance.templates(try await Self.database(.init())) }
    @Test func approvals() async throws { try await TemplateApprovalStoreConformance.approvals(try await Self.database(.init())) }
}

/// The audit log's contract on both stores: one chain, however many writers; filters; verify.
enum AuditStoreConformance {
    static func chain(_ connect: @Sendable () async throws -> any AuditStore) async throws {
        let s = try await connect()
        _ = try await s.appendAudit(actor: "ada", action: "agent.create", target: "a1", detail: ["name": "scout"])
        // Concurrent writers (several hosts) still make one chain without gaps.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask { _ = try await s.appendAudit(actor: i % 2 == 0 ? "ada" : "system", action: i % 3 == 0 ? "policy.reload" : "agent.pause",
                                                            target: "t\(i)", detail: ["i": .int(i)]) }
            }
            try await group.waitForAll()
        }
        let all = try await s.listAudit(AuditFilter(), limit: 100)
        #expect(all.map(\.seq) == Array(1...21) && all[0].prevHash == AuditEntry.genesis)
        #expect(AuditEntry.firstBreak(all) == nil)
        let verified = try await s.verifyAudit()
        #expect(verified.entries == 21 && verified.broken == nil)
        #expect(try await s.listAudit(AuditFilter(actor: "system"), limit: 100).count == 10)
        #expect(try await s.listAudit(AuditFilter(action: "agent."), limit: 100).count == 14)
        #expect(try await s.listAudit(AuditFilter(action: "policy.reload"), limit: 100).count == 7)
        #expect(try await s.listAudit(AuditFilter(afterSeq: 19), limit: 100).map(\.seq) == [20, 21])
        #expect(try await s.listAudit(AuditFilter(sinceMs: Timestamps.wallNanos() / 1_000_000 + 60_000), limit: 100).isEmpty)
    }
}

@Suite struct AuditChainTests {
    static func entries(_ n: Int) -> [AuditEntry] {
        var out: [AuditEntry] = []
        var prev = AuditEntry.genesis
        for i in 1...n {
            let e = AuditEntry(seq: Int64(i), at: "2026-12-06T00:00:0\(i)Z", actor: "ada", action: "agent.pause", target: "a\(i)", detail: ["i": .int(i)], prevHash: prev)
            out.append(e)
            prev = e.hash
        }
        return out
    }

    @Test func verifyNamesTheFirstBrokenEntry() throws {
        let good = Self.entries(5)
        #expect(AuditEntry.firstBreak(good) == nil)
        var changed = good
        changed[2].detail = ["i": 99]
        #expect(AuditEntry.firstBreak(changed)?.seq == 3 && AuditEntry.firstBreak(changed)?.problem.contains("content") == true)
        var removed = good
        removed.remove(at: 1)
        #expect(AuditEntry.firstBreak(removed)?.seq == 3)
        var rehashed = good
        rehashed[3].actor = "mallory"
        rehashed[3].hash = rehashed[3].computedHash  // forged hash: the next entry no longer follows it
        #expect(AuditEntry.firstBreak(rehashed)?.seq == 5)
        // An export that starts later is checked from its own first entry.
        #expect(AuditEntry.firstBreak(Array(good[2...]), after: good[2].prevHash, firstSeq: 3) == nil)
        // Lines read back are the same entries.
        #expect(good.map { AuditEntry(json: $0.json) } == good.map(Optional.some))
    }

    @Test func sqliteChain() async throws {
        let path = EpisodeFixtures.tempDir("audit") + "/nova.sqlite"
        try await AuditStoreConformance.chain { try SQLiteStore(path: path) }
    }

    @Test func postgresChain() async throws {
        let stores = PostgresStoreTests.Stores()
        let url = try await PostgresStoreTests.freshDatabase()
        try await AuditStoreConformance.chain { try await stores.connect(url) }
    }
}
