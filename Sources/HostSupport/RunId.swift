/// Run ids (also the ids of jobs and episodes).
public enum RunId {
    /// A new run id: time-ordered and unique (`r` + 12 hex digits of ms + 8 random hex digits).
    public static func make() -> String {
        let ms = UInt64(Timestamps.wallNanos() / 1_000_000)
        let rnd = UInt32.random(in: 0...UInt32.max)
        func hex<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "r" + hex(ms, 12) + hex(rnd, 8)
    }
}
