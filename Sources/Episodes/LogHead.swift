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

    /// The record's bytes: one line of text, its checksum (the first 8 bytes of the text's
    /// SHA-256, as hex) and padding. Built in one buffer: a writer encodes two per group commit.
    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.recordBytes)
        out.append(contentsOf: "nova-episode-log-head 1 ".utf8)
        out.append(contentsOf: bootId.utf8)
        out.append(contentsOf: (clean ? " clean " : " dirty ").utf8)
        Self.appendDecimal(tip.seq, to: &out)
        out.append(0x20)
        out.append(contentsOf: tip.hash.utf8)
        out.append(0x20)
        out.append(contentsOf: tip.runId.utf8)
        out.append(0x20)
        Self.appendDecimal(tip.segment, to: &out)
        out.append(0x20)
        Self.appendDecimal(tip.offset, to: &out)
        let digest = SHA256.digest(out)
        out.append(0x20)
        for b in digest.prefix(8) {
            out.append(Self.hexDigits[Int(b >> 4)])
            out.append(Self.hexDigits[Int(b & 0x0F)])
        }
        out.append(0x0A)
        if out.count < Self.recordBytes { out.append(contentsOf: repeatElement(0x20, count: Self.recordBytes - out.count)) }
        return out
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `value` in decimal, as `String(value)` would spell it.
    private static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 0 { out.append(0x2D) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value.magnitude, count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[count] = 0x30 + UInt8(n % 10)
                n /= 10
                count += 1
            } while n > 0
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(d[i]) }
        }
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
