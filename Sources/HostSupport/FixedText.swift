/// Fixed-width ASCII digits written straight into a string's buffer: timestamps, run ids and
/// request ids are made on every call, and building them from padded pieces allocated a string
/// per piece.
public enum FixedText {
    /// `width` lowercase hexadecimal digits of `value` (the low `4 * width` bits, zero-padded).
    public static func hex(_ value: UInt64, width: Int) -> String {
        String(unsafeUninitializedCapacity: width) { out in
            putHex(value, width: width, into: out, at: 0)
            return width
        }
    }

    /// Writes `width` hexadecimal digits of `value` at `at`.
    @inlinable
    public static func putHex(_ value: UInt64, width: Int, into out: UnsafeMutableBufferPointer<UInt8>, at: Int) {
        var v = value
        var i = at + width - 1
        while i >= at {
            let d = UInt8(truncatingIfNeeded: v & 0xF)
            out[i] = d < 10 ? 0x30 + d : 0x57 + d
            v >>= 4
            i -= 1
        }
    }

    /// Writes `width` decimal digits of `value` (non-negative, zero-padded, the low digits if
    /// it has more) at `at`.
    @inlinable
    public static func putDecimal(_ value: Int, width: Int, into out: UnsafeMutableBufferPointer<UInt8>, at: Int) {
        var v = value
        var i = at + width - 1
        while i >= at {
            out[i] = 0x30 + UInt8(truncatingIfNeeded: v % 10)
            v /= 10
            i -= 1
        }
    }
}
