/// Run ids (also the ids of jobs and episodes).
public enum RunId {
    /// A new run id: time-ordered and unique (`r` + 12 hex digits of ms + 8 random hex digits).
    public static func make() -> String {
        let ms = UInt64(Timestamps.wallNanos() / 1_000_000)
        let rnd = UInt64(UInt32.random(in: 0...UInt32.max))
        return String(unsafeUninitializedCapacity: 21) { out in
            out[0] = UInt8(ascii: "r")
            FixedText.putHex(ms, width: 12, into: out, at: 1)
            FixedText.putHex(rnd, width: 8, into: out, at: 13)
            return 21
        }
    }
}
