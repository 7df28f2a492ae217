import CHostSupport
import DriverABI

/// Timing helpers: medians over rounds, monotonic clock.
enum Measure {
    /// Runs `body` `iterations` times per round and returns the median ns per iteration.
    static func nsPerOp(rounds: Int = 7, iterations: Int, _ body: () -> Void) -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let t0 = nova_monotonic_ns()
            for _ in 0..<iterations { body() }
            samples.append(Double(nova_monotonic_ns() - t0) / Double(iterations))
        }
        return median(samples)
    }

    static func nsPerOpAsync(rounds: Int = 7, iterations: Int, _ body: () async throws -> Void) async rethrows -> Double {
        var samples: [Double] = []
        for _ in 0..<rounds {
            let t0 = nova_monotonic_ns()
            for _ in 0..<iterations { try await body() }
            samples.append(Double(nova_monotonic_ns() - t0) / Double(iterations))
        }
        return median(samples)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    static func fmt(_ ns: Double) -> String {
        if ns < 0 { return "-" + fmt(-ns) }
        if ns >= 10_000_000 { return "\((ns / 10_000).rounded() / 100) ms" }
        return ns < 1000 ? "\((ns * 10).rounded() / 10) ns" : "\((ns / 10).rounded() / 100) µs"
    }
}
