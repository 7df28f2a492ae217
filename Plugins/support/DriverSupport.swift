import DriverKit
import JSON

/// When a call must be finished: the earliest of the host's deadline, the input's `timeout_ms`
/// and the instance's default timeout. All values are CLOCK_MONOTONIC nanoseconds.
public struct CallDeadline: Sendable {
    /// The absolute deadline (CLOCK_MONOTONIC ns).
    public let nanos: Int64
    /// Which limit set it: `"host"` (the step's deadline), `"input"` (`timeout_ms`) or `"default"`.
    public let source: String

    /// The earliest of `call.deadlineNanos`, now + `inputTimeoutMs` and now + `defaultTimeoutMs`.
    public init(call: ToolCall, inputTimeoutMs: Int?, defaultTimeoutMs: Int) {
        let now = monotonicNanos()
        var best = (now + Int64(defaultTimeoutMs) * 1_000_000, "default")
        if let ms = inputTimeoutMs {
            let t = now + Int64(ms) * 1_000_000
            if t < best.0 { best = (t, "input") }
        }
        if let host = call.deadlineNanos, host < best.0 { best = (host, "host") }
        (nanos, source) = best
    }

    /// Creates a deadline `ms` milliseconds from now (benchmarks and tests).
    public init(millisecondsFromNow ms: Int) {
        nanos = monotonicNanos() + Int64(ms) * 1_000_000
        source = "input"
    }

    /// Nanoseconds left (may be negative).
    public var remainingNanos: Int64 { nanos - monotonicNanos() }
    /// Whole milliseconds left, at least 0.
    public var remainingMilliseconds: Int { Int(max(0, remainingNanos) / 1_000_000) }
    /// True once the deadline has passed.
    public var hasPassed: Bool { remainingNanos <= 0 }

    /// The error a driver reports when this deadline passes while doing `what`.
    public func error(_ what: String, code: String = "timeout") -> DriverError {
        DriverError(.deadline, code: code, message: "\(what): deadline passed (\(source) timeout)")
    }
}

/// Runs `operation`, failing with `deadline.error(what)` when the deadline passes first. The
/// operation's task is cancelled in that case; the function returns only once it has ended.
public func withDeadline<T: Sendable>(_ deadline: CallDeadline, _ what: String,
                                      _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    if deadline.hasPassed { throw deadline.error(what) }
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            let left = deadline.remainingNanos
            if left > 0 { try? await Task.sleep(nanoseconds: UInt64(left)) }
            return nil
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
            if deadline.hasPassed { throw deadline.error(what) }
        }
        throw CancellationError()
    }
}

/// Reads an instance configuration object field by field, with errors that name the field.
public struct ConfigReader: Sendable {
    /// The driver's name, used in messages.
    public let driver: String
    /// The configuration object (`{}` if the host gave none).
    public let object: [String: JSONValue]

    /// Fails unless `config` is a JSON object whose keys are all in `known`.
    public init(_ config: JSONValue, driver: String, known: Set<String>) throws {
        guard let obj = config.objectValue else { throw DriverError.invalidArgument("\(driver) configuration must be a JSON object") }
        for key in obj.keys.sorted() where !known.contains(key) {
            throw DriverError.invalidArgument("\(driver) configuration: unknown key '\(key)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        self.driver = driver
        self.object = obj
    }

    /// A string field, or nil when absent.
    public func string(_ key: String) throws -> String? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw DriverError.invalidArgument("\(driver) configuration: \(key) must be a string") }
        return s
    }

    /// A Boolean field, or `def` when absent.
    public func bool(_ key: String, default def: Bool) throws -> Bool {
        guard let v = object[key], !v.isNull else { return def }
        guard let b = v.boolValue else { throw DriverError.invalidArgument("\(driver) configuration: \(key) must be true or false") }
        return b
    }

    /// An integer field in `range`, or `def` when absent.
    public func int(_ key: String, default def: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let v = object[key], !v.isNull else { return def }
        guard let i = v.intValue, v.isNumber, range.contains(i) else {
            throw DriverError.invalidArgument("\(driver) configuration: \(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    /// An array of strings, or nil when absent.
    public func strings(_ key: String) throws -> [String]? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else {
            throw DriverError.invalidArgument("\(driver) configuration: \(key) must be an array of strings")
        }
        return a.compactMap(\.stringValue)
    }

    /// An object whose values are all strings (e.g. headers), or nil when absent.
    public func stringMap(_ key: String) throws -> [String: String]? {
        guard let v = object[key], !v.isNull else { return nil }
        guard let o = v.objectValue else { throw DriverError.invalidArgument("\(driver) configuration: \(key) must be an object of strings") }
        var out: [String: String] = [:]
        for (k, x) in o {
            guard let s = x.stringValue else { throw DriverError.invalidArgument("\(driver) configuration: \(key).\(k) must be a string") }
            out[k] = s
        }
        return out
    }
}

/// Small helpers for reading a tool's input (already validated against its inputSchema by the
/// host, but a driver must not trust that blindly).
public enum Input {
    /// An optional integer in `range`.
    public static func int(_ input: JSONValue, _ key: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let v = input[key], !v.isNull else { return nil }
        guard v.isNumber, let i = v.intValue, range.contains(i) else {
            throw DriverError.invalidArgument("\(key) must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return i
    }

    /// A required string.
    public static func requiredString(_ input: JSONValue, _ key: String) throws -> String {
        guard let s = input[key]?.stringValue else { throw DriverError.invalidArgument("\(key) must be a string") }
        return s
    }

    /// An optional Boolean.
    public static func bool(_ input: JSONValue, _ key: String) throws -> Bool? {
        guard let v = input[key], !v.isNull else { return nil }
        guard let b = v.boolValue else { throw DriverError.invalidArgument("\(key) must be true or false") }
        return b
    }
}

/// CLOCK_MONOTONIC milliseconds elapsed since `start` (ns), rounded to 0.01 ms.
public func elapsedMilliseconds(since start: Int64) -> Double {
    (Double(monotonicNanos() - start) / 10_000).rounded() / 100
}
