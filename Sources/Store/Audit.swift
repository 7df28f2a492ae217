import Foundation
import HostSupport
import JSON

/// One entry of the control-plane audit log: who did what to what, when, hash-chained to the
/// entry before it.
public struct AuditEntry: Sendable, Equatable {
    /// Position in the chain, from 1.
    public var seq: Int64
    public var at: String
    /// Who acted: a principal, `system` (the host itself), or `unknown` (a failed authentication).
    public var actor: String
    /// What happened, dotted: `driver.reload`, `policy.reload`, `agent.pause`, `approval.approve`,
    /// `auth.failure`, `job.retry`, `template.create`, …
    public var action: String
    /// What it was done to (an agent id, a job id, a template `name@version`, …), empty if none.
    public var target: String
    /// Details (outcome, reasons, counts); never credentials.
    public var detail: JSONValue
    /// The previous entry's hash (64 zeros for the first).
    public var prevHash: String
    /// SHA-256 (hex) of `prevHash` followed by the entry's canonical JSON (without its hash).
    public var hash: String

    public static let genesis = String(repeating: "0", count: 64)

    public init(seq: Int64, at: String, actor: String, action: String, target: String, detail: JSONValue, prevHash: String, hash: String = "") {
        (self.seq, self.at, self.actor, self.action, self.target, self.detail, self.prevHash, self.hash) =
            (seq, at, actor, action, target, detail, prevHash, hash)
        if hash.isEmpty { self.hash = computedHash }
    }

    /// The entry as hashed: every field but `hash`.
    public var body: JSONValue {
        ["seq": .int(Int(seq)), "at": .string(at), "actor": .string(actor), "action": .string(action), "target": .string(target),
         "detail": detail, "prev_hash": .string(prevHash)]
    }

    public var computedHash: String { SHA256.hex(Array(prevHash.utf8) + body.canonicalBytes()) }

    /// The entry as exported and shown: `body` and `hash` (one JSON line each in an export).
    public var json: JSONValue {
        guard case .object(var o) = body else { return body }
        o["hash"] = .string(hash)
        return .object(o)
    }

    /// Reads an exported line back.
    public init?(json: JSONValue) {
        guard let seq = json["seq"]?.intValue, let at = json["at"]?.stringValue, let actor = json["actor"]?.stringValue,
              let action = json["action"]?.stringValue, let prev = json["prev_hash"]?.stringValue, let hash = json["hash"]?.stringValue else { return nil }
        self.init(seq: Int64(seq), at: at, actor: actor, action: action, target: json["target"]?.stringValue ?? "",
                  detail: json["detail"] ?? .null, prevHash: prev, hash: hash)
    }

    /// The first entry of `entries` (in order) that breaks the chain, with why; nil when intact.
    /// `after` is the hash the first entry must follow (genesis for a whole log).
    public static func firstBreak(_ entries: [AuditEntry], after: String = genesis, firstSeq: Int64 = 1) -> (seq: Int64, problem: String)? {
        var prev = after
        var expected = firstSeq
        for e in entries {
            if e.seq != expected { return (e.seq, "sequence gap: expected \(expected), found \(e.seq)") }
            if e.prevHash != prev { return (e.seq, "prev_hash does not match the hash of entry \(e.seq - 1)") }
            if e.computedHash != e.hash { return (e.seq, "hash does not match the entry's content (changed after it was written)") }
            prev = e.hash
            expected += 1
        }
        return nil
    }
}

/// A filter of `listAudit`.
public struct AuditFilter: Sendable {
    public var actor: String?
    /// An action, or a prefix ending in `.` (`agent.`).
    public var action: String?
    public var sinceMs: Int64?
    public var afterSeq: Int64?
    public init(actor: String? = nil, action: String? = nil, sinceMs: Int64? = nil, afterSeq: Int64? = nil) {
        (self.actor, self.action, self.sinceMs, self.afterSeq) = (actor, action, sinceMs, afterSeq)
    }
}

/// The audit log in the store: appended in one transaction per entry (the chain's head read and
/// the new entry written under the store's write lock), never updated.
public protocol AuditStore: Sendable {
    /// Appends an entry after the current head; returns it with its seq and hashes.
    func appendAudit(actor: String, action: String, target: String, detail: JSONValue) async throws -> AuditEntry
    /// Entries in chain order (oldest first) matching `filter`, at most `limit`.
    func listAudit(_ filter: AuditFilter, limit: Int) async throws -> [AuditEntry]
}

extension AuditStore {
    /// Appends an entry for an action that has already happened. A failure is reported on
    /// stderr and returned, never thrown: an audit entry never undoes the action it records.
    @discardableResult
    public func record(_ action: String, target: String = "", detail: JSONValue = .object([:]), actor: String) async -> String? {
        do {
            _ = try await appendAudit(actor: actor, action: action, target: target, detail: detail)
            return nil
        } catch {
            let message = "audit entry \(action) not written: \(error)"
            FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
            return message
        }
    }

    /// Checks the whole chain, page by page: the first broken entry and why, or nil.
    public func verifyAudit() async throws -> (entries: Int64, broken: (seq: Int64, problem: String)?) {
        var prev = AuditEntry.genesis
        var next: Int64 = 1
        while true {
            let page = try await listAudit(AuditFilter(afterSeq: next - 1), limit: 1000)
            if let b = AuditEntry.firstBreak(page, after: prev, firstSeq: next) { return (next - 1, b) }
            guard let last = page.last else { return (next - 1, nil) }
            prev = last.hash
            next = last.seq + 1
        }
    }
}

/// Who is acting, for audit entries written deeper down (the REST layer sets the caller's
/// principal for the duration of a request).
public enum AuditActor {
    @TaskLocal public static var principal: String?
}
