import HostSupport
import JSON

/// One key of an agent's (or a shared namespace's) versioned state.
public struct StateEntry: Sendable, Equatable {
    /// The agent's id, or `shared:<namespace>`.
    public var scope: String
    public var key: String
    public var value: JSONValue
    /// 1 for a new key, +1 on every put.
    public var version: Int
    /// The store-wide revision of the change that wrote it.
    public var revision: Int64
    public var updatedAt: String

    public init(scope: String, key: String, value: JSONValue, version: Int, revision: Int64, updatedAt: String) {
        (self.scope, self.key, self.value, self.version, self.revision, self.updatedAt) = (scope, key, value, version, revision, updatedAt)
    }

    public var json: JSONValue {
        ["key": .string(key), "value": value, "version": .int(version), "revision": .int(Int(revision)), "updated_at": .string(updatedAt)]
    }
}

/// One change of state, in revision order: what a watch replays.
public struct StateChange: Sendable, Equatable {
    public var revision: Int64
    public var scope: String
    public var key: String
    /// `put` or `delete`.
    public var op: String
    public var value: JSONValue?
    public var version: Int

    public init(revision: Int64, scope: String, key: String, op: String, value: JSONValue?, version: Int) {
        (self.revision, self.scope, self.key, self.op, self.value, self.version) = (revision, scope, key, op, value, version)
    }

    public var json: JSONValue {
        ["revision": .int(Int(revision)), "key": .string(key), "op": .string(op), "value": value ?? .null, "version": .int(version)]
    }
}

/// A state change refused.
public enum StateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `ifVersion` did not hold: `current` is the stored version (nil: the key is absent).
    case versionConflict(key: String, current: Int?)

    /// The stored version the change met (nil: the key is absent).
    public var current: Int? {
        switch self { case .versionConflict(_, let c): c }
    }

    public var description: String {
        switch self {
        case .versionConflict(let key, let current):
            "state key '\(key)' is \(current.map { "at version \($0)" } ?? "absent"): the change was based on another version"
        }
    }
}

/// What a watch from a revision gets: the changes after it, or — when changes it has not seen
/// were compacted away — the word that it must start from a snapshot.
public struct StateChanges: Sendable {
    public var changes: [StateChange]
    /// True when changes after the requested revision were compacted: read a snapshot.
    public var compacted: Bool
    /// The store's latest revision.
    public var head: Int64

    public init(changes: [StateChange], compacted: Bool, head: Int64) { (self.changes, self.compacted, self.head) = (changes, compacted, head) }
}

/// Versioned key-value state per agent (and shared namespace), with a change log that a
/// watch replays without skipping (`StateChanges.compacted` says when it cannot).
public protocol StateStore: Sendable {
    func stateGet(scope: String, key: String) async throws -> StateEntry?
    /// Writes `value`. `ifVersion`: nil writes whatever is there; 0 only if the key is absent;
    /// n only if the key is at version n. Throws `StateError.versionConflict` otherwise.
    func statePut(scope: String, key: String, value: JSONValue, ifVersion: Int?) async throws -> StateEntry
    /// Removes the key (same `ifVersion` rule); false when it was absent.
    func stateDelete(scope: String, key: String, ifVersion: Int?) async throws -> Bool
    /// The keys of `scope` starting with `prefix`, by key.
    func stateList(scope: String, prefix: String, limit: Int) async throws -> [StateEntry]
    /// The changes of `scope` after `revision`, oldest first, at most `limit`.
    func stateChanges(scope: String, after revision: Int64, limit: Int) async throws -> StateChanges
    /// Drops all but the newest `keepLast` changes of the store; returns how many went.
    func compactStateChanges(keepLast: Int) async throws -> Int
}

extension StateError {
    /// Checks `ifVersion` against the stored version (`current`, nil when absent).
    public static func check(key: String, ifVersion: Int?, current: Int?) throws(StateError) {
        guard let ifVersion else { return }
        if ifVersion == 0 ? current != nil : current != ifVersion { throw .versionConflict(key: key, current: current) }
    }
}

extension HostStore {
    /// The store's agent state (both shipped stores have it).
    public var stateStore: (any StateStore)? { self as? any StateStore }
}
