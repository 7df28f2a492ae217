import CHostSupport

/// The byte layout of the episode log's segment files (`EpisodeSegmentLog`).
///
/// A segment is a preallocated file: a 64-byte header, then frames back to back, then zeros.
/// A frame is a 24-byte header, the run id, the episode's stored bytes (its canonical JSON and a
/// newline, exactly what a legacy `<run_id>.json` file held), and zero padding to a multiple of
/// 8 bytes:
///
///     0  magic "NEP1"            4  length of run id + episode bytes (UInt32 LE)
///     8  seq (UInt64 LE)         16 run id length (UInt16 LE), 18 reserved (0)
///     20 CRC-32C of bytes 0..<20, the run id and the episode bytes (UInt32 LE)
///
/// The CRC makes a torn or partial write at the tail detectable without parsing JSON; the
/// episode's own SHA-256 `hash` and the chain (`seq`, `prev_hash`) detect a deliberate change.
enum SegmentFormat {
    static let segmentHeaderBytes = 64
    static let frameHeaderBytes = 24
    static let frameMagic: [UInt8] = Array("NEP1".utf8)
    static let segmentMagic: [UInt8] = Array("NOVA-EPISODE-SEG".utf8)
    static let version: UInt32 = 1

    /// The header of segment `number`: magic, version, number, CRC of the preceding bytes.
    static func segmentHeader(number: Int) -> [UInt8] {
        var h = segmentMagic
        h.appendLE(version)
        h.appendLE(UInt64(number))
        h.appendLE(CRC32C.checksum(h))
        h += [UInt8](repeating: 0, count: segmentHeaderBytes - h.count)
        return h
    }

    /// Whether `bytes` begin with the intact header of segment `number`.
    static func isSegmentHeader(_ bytes: ArraySlice<UInt8>, number: Int) -> Bool {
        bytes.count >= segmentHeaderBytes && Array(bytes.prefix(segmentHeaderBytes)) == segmentHeader(number: number)
    }

    /// The frame holding `episode` (stored bytes) of `runId` at `seq`.
    static func frame(runId: String, seq: Int, episode: [UInt8]) -> [UInt8] {
        var f: [UInt8] = []
        f.reserveCapacity(frameBytes(runId: runId, episodeBytes: episode.count))
        appendFrame(runId: runId, seq: seq, episode: episode, to: &f)
        return f
    }

    /// The size on disk of the frame of `episodeBytes` stored bytes of `runId`, padding included.
    static func frameBytes(runId: String, episodeBytes: Int) -> Int {
        pad(frameHeaderBytes + runId.utf8.count + episodeBytes)
    }

    /// Appends the frame `frame(runId:seq:episode:)` returns to `out` (a group's buffer): no
    /// array of its own. (No `reserveCapacity` here: it reserves exactly, so a group's buffer
    /// would be copied at every frame instead of growing geometrically.)
    static func appendFrame(runId: String, seq: Int, episode: [UInt8], to out: inout [UInt8]) {
        let idCount = runId.utf8.count
        let start = out.count
        out += frameMagic
        out.appendLE(UInt32(idCount + episode.count))
        out.appendLE(UInt64(seq))
        out.appendLE(UInt16(idCount))
        out.appendLE(UInt16(0))
        var id = runId
        var crc = CRC32C.update(CRC32C.initial, out[start...])
        crc = id.withUTF8 { CRC32C.update(crc, UnsafeRawBufferPointer($0)) }
        crc = CRC32C.update(crc, episode[...])
        out.appendLE(crc ^ 0xFFFF_FFFF)
        out.append(contentsOf: runId.utf8)
        out += episode
        while (out.count - start) % 8 != 0 { out.append(0) }
    }

    /// A frame's fixed fields, read without checking its CRC.
    struct Header: Equatable {
        let length: Int
        let seq: Int
        let runIdLength: Int
        let crc: UInt32
        /// The whole frame's size on disk, padding included.
        var frameBytes: Int { pad(frameHeaderBytes + length) }
    }

    static func pad(_ n: Int) -> Int { (n + 7) & ~7 }

    /// The frame header at `offset` of `bytes`, if it has the magic and plausible lengths.
    static func header(_ bytes: [UInt8], at offset: Int) -> Header? {
        guard offset >= 0, offset + frameHeaderBytes <= bytes.count else { return nil }
        guard bytes[offset] == frameMagic[0], bytes[offset + 1] == frameMagic[1],
              bytes[offset + 2] == frameMagic[2], bytes[offset + 3] == frameMagic[3] else { return nil }
        let length = Int(bytes.readLE32(offset + 4))
        let seq = bytes.readLE64(offset + 8)
        let idLength = Int(bytes.readLE16(offset + 16))
        guard seq >= 1, seq < UInt64(Int.max), idLength >= 1, idLength <= 128, length > idLength else { return nil }
        return Header(length: length, seq: Int(seq), runIdLength: idLength, crc: bytes.readLE32(offset + 20))
    }

    /// One intact frame found in a segment.
    struct Frame {
        let offset: Int
        let header: Header
        let runId: String
        let episode: [UInt8]
        let raw: ArraySlice<UInt8>
    }

    /// The frame at `offset` of `bytes` if it is complete and its CRC checks out.
    static func frame(in bytes: [UInt8], at offset: Int) -> Frame? {
        guard let h = header(bytes, at: offset), offset + h.frameBytes <= bytes.count else { return nil }
        let idStart = offset + frameHeaderBytes
        let end = idStart + h.length
        var crc = CRC32C.update(CRC32C.initial, bytes[offset..<offset + 20])
        crc = CRC32C.update(crc, bytes[idStart..<end])
        guard crc ^ 0xFFFF_FFFF == h.crc else { return nil }
        let runId = String(decoding: bytes[idStart..<idStart + h.runIdLength], as: UTF8.self)
        return Frame(offset: offset, header: h, runId: runId, episode: Array(bytes[idStart + h.runIdLength..<end]),
                     raw: bytes[offset..<offset + h.frameBytes])
    }

    /// The file name of segment `number`.
    static func fileName(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".seg"
    }

    /// The segment number named by `name`, if it is a segment file name.
    static func number(ofFile name: String) -> Int? {
        guard name.hasSuffix(".seg"), name.count == 12, let n = Int(name.dropLast(4)), n >= 1 else { return nil }
        return n
    }
}

/// CRC-32C (Castagnoli): the checksum of the log's frames (`nova_crc32c_update`: the SSE 4.2
/// instruction where the CPU has it).
enum CRC32C {
    static let initial: UInt32 = 0xFFFF_FFFF

    static func update(_ crc: UInt32, _ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { nova_crc32c_update(crc, $0.baseAddress, $0.count) }
    }

    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        nova_crc32c_update(crc, bytes.baseAddress, bytes.count)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 { update(initial, bytes[...]) ^ 0xFFFF_FFFF }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    func readLE16(_ at: Int) -> UInt16 { UInt16(self[at]) | UInt16(self[at + 1]) << 8 }
    func readLE32(_ at: Int) -> UInt32 { (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[at + $1]) << (8 * $1) } }
    func readLE64(_ at: Int) -> UInt64 { (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[at + $1]) << (8 * $1) } }
}
