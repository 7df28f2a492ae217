import Foundation
import HostSupport
import JSON

/// One thing an agent remembers. `owner` is the agent's id, or `shared:<namespace>` for memory
/// several agents may read. The source (run and step) is set by the host, never by a caller.
public struct MemoryItem: Sendable, Equatable {
    public var id: String
    public var owner: String
    /// `skill_result`, `user_input`, `system`, `context`, `observation`, or one an agent adds.
    public var type: String
    public var text: String
    public var meta: JSONValue
    public var tags: [String]
    public var sourceRunId: String?
    public var sourceStepId: String?
    /// Epoch milliseconds.
    public var createdAtMs: Int64
    /// When the item stops being recalled (and is purged), epoch ms; nil: never.
    public var expiresAtMs: Int64?

    /// Memory types every agent has.
    public static let builtInTypes = ["skill_result", "user_input", "system", "context", "observation"]
    /// The longest text one item may hold (bytes of UTF-8).
    public static let maxTextBytes = 64 * 1024

    public init(id: String = UUID().uuidString.lowercased(), owner: String, type: String, text: String, meta: JSONValue = .object([:]),
                tags: [String] = [], sourceRunId: String? = nil, sourceStepId: String? = nil,
                createdAtMs: Int64 = Timestamps.wallNanos() / 1_000_000, expiresAtMs: Int64? = nil) {
        (self.id, self.owner, self.type, self.text, self.meta, self.tags) = (id, owner, type, text, meta, tags)
        (self.sourceRunId, self.sourceStepId, self.createdAtMs, self.expiresAtMs) = (sourceRunId, sourceStepId, createdAtMs, expiresAtMs)
    }

    /// The API form.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id), "owner": .string(owner), "memory_type": .string(type), "text": .string(text), "meta": meta,
            "tags": .array(tags.map(JSONValue.string)), "created_at": .string(Timestamps.format(nanosSinceEpoch: createdAtMs * 1_000_000)),
        ]
        o["source"] = sourceRunId.map { ["run_id": .string($0), "step_id": sourceStepId.map(JSONValue.string) ?? .null] } ?? .null
        o["expires_at"] = expiresAtMs.map { .string(Timestamps.format(nanosSinceEpoch: $0 * 1_000_000)) } ?? .null
        return .object(o)
    }
}

/// What to recall: a full-text query ranked by relevance (or, without one, newest first),
/// narrowed by type, tags (all of them) and creation time.
public struct RecallQuery: Sendable {
    public var owner: String
    public var text: String?
    public var types: [String]
    public var tags: [String]
    public var sinceMs: Int64?
    public var untilMs: Int64?
    public var limit: Int
    public var offset: Int
    /// Items that expired before this instant are never returned.
    public var nowMs: Int64

    public init(owner: String, text: String? = nil, types: [String] = [], tags: [String] = [], sinceMs: Int64? = nil,
                untilMs: Int64? = nil, limit: Int = 20, offset: Int = 0, nowMs: Int64 = Timestamps.wallNanos() / 1_000_000) {
        (self.owner, self.text, self.types, self.tags, self.sinceMs, self.untilMs) = (owner, text, types, tags, sinceMs, untilMs)
        (self.limit, self.offset, self.nowMs) = (limit, offset, nowMs)
    }
}

/// One recalled item with its relevance (higher is better; 0 without a text query).
public struct RecallHit: Sendable, Equatable {
    public var item: MemoryItem
    public var score: Double
    public init(item: MemoryItem, score: Double) { (self.item, self.score) = (item, score) }

    /// The item's API form with its `score`.
    public var json: JSONValue {
        var o = item.json.objectValue ?? [:]
        o["score"] = .double(score)
        return .object(o)
    }
}

/// A recall the full-text engine refused (a query it cannot parse): the caller's mistake.
public struct RecallQueryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Agents' memory in the host store: SQLite FTS5 ranked with bm25, PostgreSQL `tsvector`
/// ranked with `ts_rank`.
public protocol MemoryStore: Sendable {
    func putMemory(_ item: MemoryItem) async throws
    /// Stores `items` in one transaction (an import, a benchmark's corpus).
    func putMemories(_ items: [MemoryItem]) async throws
    func memory(id: String) async throws -> MemoryItem?
    /// Items of `query.owner` that match, best first (or newest first without text), never an
    /// expired one. Throws `RecallQueryError` for a query the engine cannot parse.
    func recall(_ query: RecallQuery) async throws -> [RecallHit]
    /// Removes item `id` of `owner`; false when there is none.
    func forgetMemory(id: String, owner: String) async throws -> Bool
    /// Removes every item expired at `nowMs`; returns how many.
    func purgeExpiredMemory(nowMs: Int64) async throws -> Int
}
