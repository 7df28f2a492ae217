import HostSupport

/// The end of the episode log: where the next frame goes and the chain's tip.
struct LogTip: Equatable, Sendable {
    /// The segment being appended to (0: the log has no segment yet).
    var segment: Int
    /// The offset after the last frame in `segment`.
    var offset: Int
    /// The last record's seq, hash and run id (0, 64 zeros and "-" for an empty log).
    var seq: Int
    var hash: String
    var runId: String

    static let empty = LogTip(segment: 0, offset: 0, seq: 0, hash: EpisodeFormat.genesisHash, runId: "-")
}

/// The log's head record, kept in `episodes/log/.lock` (the file writers `flock`): like the
/// legacy `EpisodeHead` a hint that saves a scan, not a source of truth. A writer marks it
/// dirty before it appends and clean with the new tip once the batch is durable; a head that is
/// dirty, unreadable or from another boot makes the next writer run the full recovery scan.
struct LogHead: Equatable {
    var clean: Bool
    var bootId: String
    var tip: LogTip

    /// The record's size on disk: every record is padded to it (spaces after the newline), so
    /// a writer overwrites the previous one in place, one `pwrite` and no `ftruncate`.
    static let recordBytes = 400

    var encoded: [UInt8] {
        let text = "nova-episode-log-head 1 \(bootId) \(clean ? "clean" : "dirty") \(tip.seq) \(tip.hash) \(tip.runId) \(tip.segment) \(tip.offset)"
        let line = Array("\(text) \(SHA256.hex(Array(text.utf8)).prefix(16))\n".utf8)
        return line + [UInt8](repeating: 0x20, count: max(0, Self.recordBytes - line.count))
    }

    /// Parses a head record; `nil` if it is absent, truncated or fails its checksum.
    static func decode(_ bytes: [UInt8]) -> LogHead? {
        guard let nl = bytes.firstIndex(of: 0x0A) else { return nil }
        let parts = String(decoding: bytes[..<nl], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 10, parts[0] == "nova-episode-log-head", parts[1] == "1" else { return nil }
        guard SHA256.hex(Array(parts[0..<9].joined(separator: " ").utf8)).prefix(16) == parts[9] else { return nil }
        guard parts[3] == "clean" || parts[3] == "dirty", let seq = Int(parts[4]), seq >= 0, EpisodeFormat.isHex64(parts[5]),
              let segment = Int(parts[7]), segment >= 0, let offset = Int(parts[8]), offset >= 0 else { return nil }
        return LogHead(clean: parts[3] == "clean", bootId: parts[2],
                       tip: LogTip(segment: segment, offset: offset, seq: seq, hash: parts[5], runId: parts[6]))
    }

    /// Whether a writer may continue from this head without the recovery scan.
    var trustworthy: Bool { clean && bootId == EpisodeHead.currentBootId }
}
