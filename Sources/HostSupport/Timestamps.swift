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

    /// Monotonic nanoseconds (for intervals; immune to wall-clock steps).
    public static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func format(nanosSinceEpoch n: Int64) -> String {
        var t = time_t(n / 1_000_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        let ms = Int((n % 1_000_000_000) / 1_000_000)
        let year = tm.tm_year + 1900
        guard (0...9999).contains(year), ms >= 0 else {
            func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
            return "\(pad(year, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ms), 3))Z"
        }
        // yyyy-mm-ddThh:mm:ss.mmmZ, written in place (this runs several times per call).
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ v: Int32, _ width: Int, _ at: Int, then sep: UInt8) {
                FixedText.putDecimal(Int(v), width: width, into: out, at: at)
                out[at + width] = sep
            }
            put(year, 4, 0, then: 0x2D)
            put(tm.tm_mon + 1, 2, 5, then: 0x2D)
            put(tm.tm_mday, 2, 8, then: 0x54)
            put(tm.tm_hour, 2, 11, then: 0x3A)
            put(tm.tm_min, 2, 14, then: 0x3A)
            put(tm.tm_sec, 2, 17, then: 0x2E)
            put(Int32(ms), 3, 20, then: 0x5A)
            return 24
        }
    }

    /// Epoch milliseconds of an RFC 3339 time (`2026-12-05T20:00:00Z`, fractional seconds and a
    /// `±hh:mm` offset allowed); nil when `text` is not one.
    public static func parseMs(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= b.count else { return nil }
            var v = 0
            for c in b[from..<(from + count)] {
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard b.count >= 20, let year = num(0, 4), b[4] == 45, let month = num(5, 2), b[7] == 45, let day = num(8, 2),
              b[10] == 84 || b[10] == 116, let hour = num(11, 2), b[13] == 58, let minute = num(14, 2), b[16] == 58, let second = num(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var ms = 0
        if i < b.count, b[i] == 46 {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 48, b[i] <= 57 {
                if digits < 3 { ms = ms * 10 + Int(b[i] - 48); digits += 1 }
                i += 1
            }
            guard digits > 0 else { return nil }
            while digits < 3 { ms *= 10; digits += 1 }
        }
        var offsetMinutes = 0
        guard i < b.count else { return nil }
        if b[i] == 90 || b[i] == 122 {
            i += 1
        } else if b[i] == 43 || b[i] == 45, let oh = num(i + 1, 2), b.count > i + 3, b[i + 3] == 58, let om = num(i + 4, 2) {
            offsetMinutes = (oh * 60 + om) * (b[i] == 45 ? -1 : 1)
            i += 6
        } else { return nil }
        guard i == b.count else { return nil }
        var t = tm()
        t.tm_year = Int32(year - 1900)
        t.tm_mon = Int32(month - 1)
        t.tm_mday = Int32(day)
        t.tm_hour = Int32(hour)
        t.tm_min = Int32(minute)
        t.tm_sec = Int32(second)
        let seconds = Int64(timegm(&t)) - Int64(offsetMinutes * 60)
        return seconds * 1000 + Int64(ms)
    }
}
