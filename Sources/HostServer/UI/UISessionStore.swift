import Foundation
import Host
import Synchronization

/// One signed-in dashboard user: the caller its credential stood for when it logged in, its
/// CSRF token and when it was last used.
struct UISession: Sendable {
    /// The caller (principal, role, admin or not) authenticated at login.
    var caller: Caller
    /// The per-session CSRF token every state-changing request must echo.
    var csrfToken: String
    /// Monotonic nanoseconds of creation (for the absolute lifetime).
    var createdNanos: UInt64
    /// Monotonic nanoseconds of the last request (for the idle timeout).
    var lastSeenNanos: UInt64
}

/// Dashboard sessions, in memory: a random 256-bit id (hex) per login, looked up by the id's
/// SHA-256 (the ids themselves are never kept), expiring after `idle` without a request or
/// `absolute` after login, whichever comes first. At most `capacity` sessions: the least
/// recently used goes first. Sessions do not survive a restart (one logs in again).
final class UISessionStore: Sendable {
    /// How long a session lives without a request.
    let idle: Duration
    /// How long a session lives at most.
    let absolute: Duration
    /// How many sessions are kept.
    let capacity: Int
    private let sessions = Mutex<[String: UISession]>([:])
    private let now: @Sendable () -> UInt64

    /// A store; `now` (monotonic nanoseconds) is replaceable for tests.
    init(idle: Duration = .seconds(8 * 3600), absolute: Duration = .seconds(24 * 3600), capacity: Int = 10_000,
         now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.idle = idle
        self.absolute = absolute
        self.capacity = capacity
        self.now = now
    }

    /// Starts a session for `caller`; returns its id (for the cookie) and CSRF token.
    func create(for caller: Caller) -> (id: String, csrfToken: String) {
        let id = Self.randomToken(), csrf = Self.randomToken()
        let t = now()
        sessions.withLock { all in
            Self.prune(&all, now: t, idle: idle, absolute: absolute)
            if all.count >= capacity, let oldest = all.min(by: { $0.value.lastSeenNanos < $1.value.lastSeenNanos })?.key {
                all[oldest] = nil
            }
            all[Self.key(id)] = UISession(caller: caller, csrfToken: csrf, createdNanos: t, lastSeenNanos: t)
        }
        return (id, csrf)
    }

    /// The live session with this id, touched (its idle clock restarts); nil when there is none
    /// or it expired (an expired one is removed).
    func session(_ id: String?) -> UISession? {
        guard let id, Self.isWellFormed(id) else { return nil }
        let t = now(), k = Self.key(id)
        return sessions.withLock { all in
            guard var s = all[k] else { return nil }
            guard !Self.expired(s, now: t, idle: idle, absolute: absolute) else {
                all[k] = nil
                return nil
            }
            s.lastSeenNanos = t
            all[k] = s
            return s
        }
    }

    /// Whether the session is still live, without touching it (for long-lived event streams).
    func isLive(_ id: String) -> Bool {
        let t = now()
        return sessions.withLock { all in all[Self.key(id)].map { !Self.expired($0, now: t, idle: idle, absolute: absolute) } ?? false }
    }

    /// Ends the session (logout).
    func remove(_ id: String?) {
        guard let id, Self.isWellFormed(id) else { return }
        _ = sessions.withLock { $0.removeValue(forKey: Self.key(id)) }
    }

    /// How many sessions are held (expired ones included until they are next pruned).
    var count: Int { sessions.withLock { $0.count } }

    /// 32 random bytes as 64 lowercase hex digits.
    static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        var s = ""
        s.reserveCapacity(64)
        for _ in 0..<4 {
            let v: UInt64 = g.next()
            let h = String(v, radix: 16)
            s += String(repeating: "0", count: 16 - h.count) + h
        }
        return s
    }

    /// Compares two tokens in time independent of where they differ.
    static func tokensMatch(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count, !x.isEmpty else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    /// Ids are 64 lowercase hex digits; anything else is not looked up.
    static func isWellFormed(_ id: String) -> Bool {
        id.utf8.count == 64 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    private static func key(_ id: String) -> String { SHA256.hex(Array(id.utf8)) }

    private static func expired(_ s: UISession, now: UInt64, idle: Duration, absolute: Duration) -> Bool {
        now &- s.lastSeenNanos > nanos(idle) || now &- s.createdNanos > nanos(absolute)
    }

    private static func prune(_ all: inout [String: UISession], now: UInt64, idle: Duration, absolute: Duration) {
        all = all.filter { !expired($0.value, now: now, idle: idle, absolute: absolute) }
    }

    private static func nanos(_ d: Duration) -> UInt64 {
        let c = d.components
        return UInt64(max(0, c.seconds)) * 1_000_000_000 + UInt64(max(0, c.attoseconds / 1_000_000_000))
    }
}
