import CHostSupport

/// SHA-256 (FIPS 180-4), used for the episode hash chain. The block compression is C
/// (`nova_sha256_blocks`: the CPU's SHA extensions where present, a portable loop otherwise);
/// tested against the NIST example vectors in `Tests/EpisodeTests/SHA256Tests.swift`.
///
/// One-shot: `SHA256.hex(bytes)`; incremental: `var h = SHA256(); h.update(a); h.update(b);
/// let digest = h.finalize()`.
public struct SHA256: Sendable {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
    /// Bytes not yet compressed (always fewer than 64).
    private var buffer: [UInt8] = []
    private var totalLength: UInt64 = 0

    /// A fresh hasher.
    public init() {}

    /// The digest (32 bytes) of `bytes`.
    public static func digest<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var h = SHA256()
        h.update(bytes)
        return h.finalize()
    }

    /// The digest of `bytes` as 64 lowercase hexadecimal characters.
    public static func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        hexString(digest(bytes))
    }

    /// Lowercase hexadecimal text of `bytes`.
    public static func hexString(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            let digits: StaticString = "0123456789abcdef"
            let d = digits.utf8Start
            for (i, b) in bytes.enumerated() {
                out[2 * i] = d[Int(b >> 4)]
                out[2 * i + 1] = d[Int(b & 0x0F)]
            }
            return bytes.count * 2
        }
    }

    /// Whether the block compression uses the CPU's SHA extensions.
    public static var usesHardware: Bool { nova_sha256_has_hardware() != 0 }

    /// Adds `bytes` to the message.
    public mutating func update<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { update(buffer: UnsafeRawBufferPointer($0)) }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update(buffer: $0) }
        }
    }

    /// Adds the bytes in `raw` to the message.
    public mutating func update(buffer raw: UnsafeRawBufferPointer) {
        totalLength &+= UInt64(raw.count)
        var offset = 0
        if !buffer.isEmpty {
            let take = min(64 - buffer.count, raw.count)
            buffer.append(contentsOf: raw[0..<take])
            offset = take
            if buffer.count == 64 {
                let block = buffer
                block.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        let whole = (raw.count - offset) / 64
        if whole > 0 {
            compress(raw.baseAddress! + offset, blocks: whole)
            offset += whole * 64
        }
        if offset < raw.count {
            buffer.append(contentsOf: raw[offset..<raw.count])
        }
    }

    /// Pads the message and returns the 32-byte digest. The hasher must not be used afterwards.
    public mutating func finalize() -> [UInt8] {
        let bitLength = totalLength &* 8
        // The tail: buffered bytes, 0x80, zeros, the 64-bit length; one or two blocks.
        let blocks = buffer.count + 9 <= 64 ? 1 : 2
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
            tail.initialize(repeating: 0)
            for (i, b) in buffer.enumerated() { tail[i] = b }
            tail[buffer.count] = 0x80
            let end = blocks * 64
            for i in 0..<8 { tail[end - 1 - i] = UInt8(truncatingIfNeeded: bitLength &>> (UInt64(i) &* 8)) }
            compress(UnsafeRawPointer(tail.baseAddress!), blocks: blocks)
        }
        buffer.removeAll()
        return withUnsafeBytes(of: state) { raw in
            let words = raw.bindMemory(to: UInt32.self)
            return [UInt8](unsafeUninitializedCapacity: 32) { out, count in
                for (i, word) in words.enumerated() {
                    out[4 * i] = UInt8(truncatingIfNeeded: word >> 24)
                    out[4 * i + 1] = UInt8(truncatingIfNeeded: word >> 16)
                    out[4 * i + 2] = UInt8(truncatingIfNeeded: word >> 8)
                    out[4 * i + 3] = UInt8(truncatingIfNeeded: word)
                }
                count = 32
            }
        }
    }

    /// Compresses `blocks` 64-byte blocks at `p` into the state.
    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        withUnsafeMutableBytes(of: &state) { raw in
            nova_sha256_blocks(raw.baseAddress!.assumingMemoryBound(to: UInt32.self), p, blocks)
        }
    }
}
