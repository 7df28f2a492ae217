import Foundation
import Synchronization

/// Failed dashboard logins per client address, limited by a token bucket: each failure takes a
/// token; with none left every login from that address is refused (429 with `Retry-After`)
/// until one has refilled — a correct credential too, so guessing gains nothing while refused.
/// Successful logins take nothing. Keyed by the connection's peer address only: a failed
/// login has no trustworthy credential id (a wrong API key names none, a bad JWT's claims are
/// unverified, and limiting by them would let anyone lock a known user out), and
/// `X-Forwarded-For` can be forged (behind a proxy the proxy's address is what is limited).
final class UILoginLimiter: Sendable {
    /// Failures allowed in a burst.
    let capacity: Double
    /// Seconds for one failure to be allowed again.
    let refillSeconds: Double
    /// Addresses tracked at most (the fullest buckets, which limit nothing, go first).
    let maxAddresses: Int
    private let buckets = Mutex<[String: Bucket]>([:])
    private let now: @Sendable () -> UInt64

    private struct Bucket { var tokens: Double; var atNanos: UInt64 }

    /// A limiter of `capacity` failures refilled at one per `refillSeconds`; `now` (monotonic
    /// nanoseconds) is replaceable for tests.
    init(capacity: Int = 10, refillSeconds: Double = 30, maxAddresses: Int = 10_000,
         now: @escaping @Sendable () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.capacity = Double(max(1, capacity))
        self.refillSeconds = max(0.001, refillSeconds)
        self.maxAddresses = max(1, maxAddresses)
        self.now = now
    }

    /// Whole seconds until `address` may try again, or nil when it may now.
    func retryAfter(_ address: String) -> Int? {
        let t = now()
        return buckets.withLock { all -> Int? in
            guard let b = all[address] else { return nil }
            let tokens = refilled(b, t)
            return tokens >= 1 ? nil : max(1, Int(((1 - tokens) * refillSeconds).rounded(.up)))
        }
    }

    /// Records a failed login from `address` (takes one token).
    func recordFailure(_ address: String) {
        let t = now()
        buckets.withLock { all in
            let tokens = all[address].map { refilled($0, t) } ?? capacity
            all[address] = Bucket(tokens: max(0, tokens - 1), atNanos: t)
            if all.count > maxAddresses {
                all = all.filter { refilled($0.value, t) < capacity }
                while all.count > maxAddresses, let oldest = all.min(by: { $0.value.atNanos < $1.value.atNanos })?.key { all[oldest] = nil }
            }
        }
    }

    private func refilled(_ b: Bucket, _ t: UInt64) -> Double {
        min(capacity, b.tokens + Double(t &- b.atNanos) / 1e9 / refillSeconds)
    }
}
