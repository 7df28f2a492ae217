#if canImport(Glibc)
import Glibc
#endif

/// UTC timestamps in RFC 3339 with milliseconds, without Foundation's formatters.
public enum Timestamps {
    public static func now() -> String { format(nanosSinceEpoch: wallNanos()) }

    /// Wall-clock nanoseconds since the Unix epoch.
    public static func wallNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func format(nanosSinceEpoch n: Int64) -> String {
        var t = time_t(n / 1_000_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int((n % 1_000_000_000) / 1_000_000)
        func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
    }
}
