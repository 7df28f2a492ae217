import JSON
import HostSupport

/// Where a durably written episode is: its run id, chain position, hash and file.
public struct EpisodeRef: Sendable, Hashable, CustomStringConvertible {
    /// The run id (also the file name, `<run_id>.json`).
    public let runId: String
    /// Position in the chain: 1, 2, 3, …
    public let seq: Int
    /// SHA-256 (hex) of the canonical encoding of the episode without its `hash` field.
    public let hash: String
    /// The primary file, `<data>/episodes/<run_id>.json`.
    public let path: String

    /// A reference to the episode of `runId` at `seq` with `hash`, stored at `path`.
    public init(runId: String, seq: Int, hash: String, path: String) {
        self.runId = runId
        self.seq = seq
        self.hash = hash
        self.path = path
    }

    public var description: String { "\(runId) (seq \(seq), hash \(hash.prefix(12))…)" }
}

/// One stored episode as read back from its file.
public struct Episode: Sendable {
    /// The stored document: the run's body plus `run_id`, `seq`, `prev_hash`, `hash` and
    /// `episode_version`.
    public let document: JSONValue
    /// Where it is, from the document's own fields.
    public let ref: EpisodeRef
    /// The `prev_hash` field: the previous episode's `hash` (64 zeros for seq 1).
    public let prevHash: String
    /// `nil` when the file is intact (hash matches, canonical bytes, name matches run id);
    /// otherwise what is wrong with it.
    public let problem: String?

    /// The run's body: the document without the chain fields.
    public var body: JSONValue {
        guard case .object(var o) = document else { return document }
        for k in EpisodeFormat.chainKeys where k != "run_id" { o.removeValue(forKey: JSONKey(k)) }
        return .object(o)
    }
}

/// The on-disk episode format and its integrity check.
///
/// A stored episode is one JSON object: the body's members plus `run_id`, `seq`, `prev_hash`,
/// `episode_version` and `hash`. `hash` is SHA-256 (lowercase hex) over the canonical encoding
/// (`JSONValue.canonicalBytes()`, RFC 8785 style) of the object without `hash`. The file holds
/// exactly the canonical encoding of the whole object followed by one newline, so any change
/// of any byte is detectable: it breaks the JSON, changes the content (hash mismatch) or leaves
/// the bytes non-canonical.
public enum EpisodeFormat {
    /// The `episode_version` written by this code.
    public static let version = 1
    /// `prev_hash` of the first episode.
    public static let genesisHash = String(repeating: "0", count: 64)
    /// Members the store owns; a body must not set them (except `run_id`, which must match).
    public static let chainKeys: [String] = ["run_id", "seq", "prev_hash", "hash", "episode_version"]

    /// Whether `runId` can name an episode file: 1–128 characters of `A–Z a–z 0–9 - _ .`,
    /// not starting with `.` or `_` (reserved for temp files and `_backup`).
    public static func isValidRunId(_ runId: String) -> Bool {
        let u = Array(runId.utf8)
        guard !u.isEmpty, u.count <= 128, u[0] != UInt8(ascii: "."), u[0] != UInt8(ascii: "_") else { return false }
        for c in u {
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                continue
            default:
                return false
            }
        }
        return true
    }

    /// The stored bytes of `body` at chain position `seq` after `prevHash`, and their hash.
    static func encode(body: JSONObject, runId: String, seq: Int, prevHash: String)
        -> (hash: String, bytes: [UInt8])
    {
        encode(members: bodyMembers(body), runId: runId, seq: seq, prevHash: prevHash)
    }

    /// The encoded members of a body `validateBody` accepted, without `run_id` (the chain
    /// members are added at the body's chain position).
    static func bodyMembers(_ body: JSONObject) -> CanonicalMembers {
        var members = body
        members.removeValue(forKey: "run_id")
        return CanonicalMembers(members)
    }

    /// `body` checked for storing as the episode of `runId` (a valid run id; no chain member but
    /// a matching `run_id`) and encoded; throws what a write would.
    static func checkedMembers(body: JSONValue, runId: String) throws -> CanonicalMembers {
        guard isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        return bodyMembers(try validateBody(body, runId: runId).get())
    }

    /// `checkedMembers(body:runId:)` for a body already encoded.
    static func checkedMembers(_ members: CanonicalMembers, runId: String) throws -> CanonicalMembers {
        guard isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        return try validate(members: members, runId: runId).get()
    }

    /// The stored bytes of a body already encoded (`validate(members:runId:)`: no chain
    /// member) at chain position `seq` after `prevHash`, and their hash. Only the chain members
    /// are encoded here; the body's bytes are copied.
    static func encode(members body: CanonicalMembers, runId: String, seq: Int, prevHash: String)
        -> (hash: String, bytes: [UInt8])
    {
        var chain = CanonicalObjectWriter()
        chain.member("run_id", .string(runId))
        chain.member("seq", .int(seq))
        chain.member("prev_hash", .string(prevHash))
        chain.member("episode_version", .int(version))
        let unhashed = UnhashedEncoding(merging: body, chain.finishMembers())
        let hash = SHA256.hex(unhashed.bytes)
        return (hash, unhashed.stored(hash: hash))
    }

    /// The canonical encoding of a document without its `hash` member (what the hash covers),
    /// with the place where `hash` sorts; `stored(hash:)` splices the member in there. Together
    /// equal to the canonical encoding of the whole document plus a newline (tested against
    /// `canonicalBytes()`).
    struct UnhashedEncoding {
        var bytes: [UInt8]
        /// The offset after the last member that sorts before "hash".
        var hashAt = 1

        /// The object of the members of `a` and `b` (no name in both).
        init(merging a: CanonicalMembers, _ b: CanonicalMembers) {
            (bytes, hashAt) = CanonicalMembers.object(merging: a, b, mark: "hash")
        }

        /// The stored bytes: these with `"hash":"<hash>"` in its place, and a newline.
        func stored(hash: String) -> [UInt8] {
            var out: [UInt8] = []
            out.reserveCapacity(bytes.count + 80)
            out.append(contentsOf: bytes[0..<hashAt])
            if hashAt > 1 { out.append(0x2C) }
            out.append(contentsOf: #""hash":""#.utf8)
            out.append(contentsOf: hash.utf8)  // 64 lowercase hex digits: nothing to escape
            out.append(0x22)
            // What followed the place: "," and the next member, or the closing "}".
            if hashAt == 1 && bytes.count > 2 { out.append(0x2C) }
            out.append(contentsOf: bytes[hashAt...])
            out.append(0x0A)
            return out
        }
    }

    /// The exact bytes `EpisodeFileChain.write` stores for `body` as the episode of `runId` at
    /// `seq` after `prevHash` (for tools and benchmarks). Throws what `write` would for an
    /// invalid run id or body.
    public static func encodedBytes(body: JSONValue, runId: String, seq: Int = 1, prevHash: String = genesisHash) throws -> [UInt8] {
        encode(members: try checkedMembers(body: body, runId: runId), runId: runId, seq: seq, prevHash: prevHash).bytes
    }

    /// `encodedBytes(body:runId:seq:prevHash:)` for a body already encoded (e.g.
    /// `RunRecord.episodeMembers`): equal bytes for equal content.
    public static func encodedBytes(members: CanonicalMembers, runId: String, seq: Int = 1, prevHash: String = genesisHash) throws -> [UInt8] {
        encode(members: try checkedMembers(members, runId: runId), runId: runId, seq: seq, prevHash: prevHash).bytes
    }

    /// Checks a body before it is written; returns the body's members or a reason it is refused.
    static func validateBody(_ body: JSONValue, runId: String) -> Result<JSONObject, EpisodeError> {
        guard case .object(let o) = body else {
            return .failure(.invalidBody(runId: runId, reason: "the body must be a JSON object, not \(body.typeName)"))
        }
        for k in chainKeys where o[k] != nil {
            if k == "run_id" {
                if o[k]?.stringValue != runId {
                    return .failure(.invalidBody(runId: runId, reason: "the body's run_id \(o[k]!.description) differs from the run id"))
                }
                continue
            }
            return .failure(.invalidBody(runId: runId, reason: "the body must not set \"\(k)\" (the store writes it)"))
        }
        return .success(o)
    }

    /// Checks a body already encoded before it is written: returns its members without
    /// `run_id` (which must match) or a reason it is refused.
    static func validate(members: CanonicalMembers, runId: String) -> Result<CanonicalMembers, EpisodeError> {
        for k in chainKeys {
            guard let encoded = members.encoding(of: k) else { continue }
            if k == "run_id" {
                let value = encoded.dropFirst(#""run_id":"#.utf8.count)
                guard value.elementsEqual(JSONValue.string(runId).canonicalBytes()) else {
                    return .failure(.invalidBody(runId: runId, reason: "the body's run_id \(String(decoding: value, as: UTF8.self)) differs from the run id"))
                }
                continue
            }
            return .failure(.invalidBody(runId: runId, reason: "the body must not set \"\(k)\" (the store writes it)"))
        }
        return .success(members.removing("run_id"))
    }

    /// The result of checking one stored file.
    enum Check {
        /// Parsed, hash correct, canonical bytes, `run_id` matches the name.
        case valid(Episode)
        /// Something is wrong; `kind` classifies it. `seq`/`hash` are the file's own claims when
        /// readable (untrusted).
        case invalid(kind: ChainIssue.Kind, reason: String, claimedSeq: Int?, claimedHash: String?, document: JSONValue?)
    }

    static func isHex64(_ s: String) -> Bool {
        let u = s.utf8
        return u.count == 64 && u.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    /// Checks the bytes of a stored file named `<expectedRunId>.json` at `path`.
    static func check(bytes: [UInt8], expectedRunId: String, path: String) -> Check {
        let doc: JSONValue
        do {
            doc = try JSONValue.parse(bytes)
        } catch {
            return .invalid(kind: .corrupt, reason: "not valid JSON (\(error))", claimedSeq: nil, claimedHash: nil, document: nil)
        }
        guard case .object(var o) = doc else {
            return .invalid(kind: .corrupt, reason: "not a JSON object", claimedSeq: nil, claimedHash: nil, document: doc)
        }
        let claimedSeq = o["seq"]?.intValue
        let claimedHash = o["hash"]?.stringValue
        func malformed(_ why: String) -> Check {
            .invalid(kind: .corrupt, reason: why, claimedSeq: claimedSeq, claimedHash: claimedHash, document: doc)
        }
        guard let hash = claimedHash, isHex64(hash) else { return malformed("no valid \"hash\" field") }
        guard let seq = claimedSeq, seq >= 1, case .int = o["seq"]! else { return malformed("no valid \"seq\" field") }
        guard let prev = o["prev_hash"]?.stringValue, isHex64(prev) else { return malformed("no valid \"prev_hash\" field") }
        guard let runId = o["run_id"]?.stringValue else { return malformed("no \"run_id\" field") }
        guard o["episode_version"]?.intValue == version else { return malformed("unknown episode_version") }
        o.removeValue(forKey: "hash")
        let unhashed = UnhashedEncoding(merging: CanonicalMembers(o), .empty)
        let full = unhashed.stored(hash: hash)
        let actual = SHA256.hex(unhashed.bytes)
        if actual != hash {
            return .invalid(kind: .changed, reason: "content changed: stored hash \(hash.prefix(16))… but the content hashes to \(actual.prefix(16))…",
                            claimedSeq: seq, claimedHash: hash, document: doc)
        }
        if full != bytes {
            return .invalid(kind: .changed, reason: "file bytes changed: they differ from the canonical encoding of the (correctly hashed) content",
                            claimedSeq: seq, claimedHash: hash, document: doc)
        }
        if runId != expectedRunId {
            return .invalid(kind: .misnamed, reason: "file is named \(expectedRunId).json but holds run \(runId)",
                            claimedSeq: seq, claimedHash: hash, document: doc)
        }
        let ref = EpisodeRef(runId: runId, seq: seq, hash: hash, path: path)
        return .valid(Episode(document: doc, ref: ref, prevHash: prev, problem: nil))
    }
}
