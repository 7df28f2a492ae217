import Testing
import CHostSupport
import Host

/// NIST FIPS 180-4 example vectors (and the long-message vectors of the NIST CAVP set).
@Suite struct SHA256Tests {
    @Test func nistVectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        #expect(SHA256.hex(Array(m896.utf8)) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(SHA256.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func incrementalMatchesOneShotAtEveryBoundary() {
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300] {
            let msg = Array(data[0..<length])
            let whole = SHA256.hex(msg)
            for split in Set([0, 1, length / 2, max(0, length - 1), length]) where split <= length {
                var h = SHA256()
                h.update(msg[0..<split])
                h.update(msg[split..<length])
                #expect(SHA256.hexString(h.finalize()) == whole, "length \(length) split \(split)")
            }
        }
    }
}

/// The SHA-extension block compression and the portable loop agree, block by block.
@Suite struct SHA256HardwareTests {
    @Test func hardwareAndPortableCompressionAgree() {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        let data = (0..<(64 * 40)).map { _ -> UInt8 in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: seed >> 56)
        }
        for blocks in [1, 2, 3, 17, 40] {
            var fast: [UInt32] = [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19]
            var slow = fast
            data.withUnsafeBytes { raw in
                nova_sha256_blocks(&fast, raw.baseAddress, blocks)
                nova_sha256_blocks_portable(&slow, raw.baseAddress, blocks)
            }
            #expect(fast == slow, "\(blocks) blocks")
        }
        // Recorded so a run on a CPU without the extensions is visible in the test log.
        print("SHA-256 block compression: \(SHA256.usesHardware ? "SHA extensions" : "portable loop")")
    }
}
