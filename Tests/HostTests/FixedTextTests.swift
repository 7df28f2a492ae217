import Host
import Testing

/// Timestamps, run ids and hex written in place agree with what they replaced.
@Suite struct FixedTextTests {
    @Test func timestampsFormatEveryField() {
        #expect(Timestamps.format(nanosSinceEpoch: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamps.format(nanosSinceEpoch: 1_733_500_000_123_456_789) == "2024-12-06T15:46:40.123Z")
        #expect(Timestamps.format(nanosSinceEpoch: Int64.max) == "2262-04-11T23:47:16.854Z")
        // Round trip through the parser, at every millisecond of a second and across fields.
        for ms in stride(from: Int64(1_700_000_000_000), to: 1_700_000_001_000, by: 7) {
            #expect(Timestamps.parseMs(Timestamps.format(nanosSinceEpoch: ms * 1_000_000)) == ms)
        }
    }

    @Test func runIdsAreTimeOrderedHex() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RunId.make()
            #expect(id.count == 21 && id.first == "r" && id.dropFirst().allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id)")
            seen.insert(id)
        }
        #expect(seen.count == 1000)
        let ms = UInt64(Timestamps.wallNanos() / 1_000_000)
        let id = RunId.make()
        let idMs = UInt64(id.dropFirst().prefix(12), radix: 16)!
        #expect(idMs >= ms && idMs - ms < 60_000)
    }

    @Test func hexIsZeroPaddedLowercase() {
        #expect(FixedText.hex(0, width: 4) == "0000")
        #expect(FixedText.hex(0xABC, width: 6) == "000abc")
        #expect(FixedText.hex(UInt64.max, width: 16) == "ffffffffffffffff")
        #expect(FixedText.hex(0x1234_5678_9A, width: 8) == "3456789a")  // the low digits
    }
}
