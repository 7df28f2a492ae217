// What every test target shares: where the package and the built products are, temporary
// directories, a gate that allows everything, the outcome of one call, a process runner and a
// closed port. One copy, instead of one per test target.
import Foundation
import Host
import JSON
import Threads
import Testing

/// The package's paths as the tests see them.
public enum TestPaths {
    /// The package root (three levels above this file).
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Where the built products are: `$NOVA_BIN_DIR` (make test sets it) or `.build/debug`.
    public static let binDir: String = ProcessInfo.processInfo.environment["NOVA_BIN_DIR"] ?? root + "/.build/debug"

    /// The built `nova-host` binary.
    public static var novaHost: String { binDir + "/nova-host" }

    /// A fresh temporary directory (under `$TMPDIR`), named after `label`.
    public static func tempDir(_ label: String = "nova") -> String {
        let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            // Not recoverable for a test (every caller needs the directory): say why and stop.
            fatalError("cannot create the test directory \(path): \(error) (disk full? TMPDIR=\(NSTemporaryDirectory()))")
        }
        return path
    }

    /// Removes `path` and everything below it (errors ignored: cleanup only).
    public static func remove(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}

/// A gate that allows every call (tests of drivers, not of policy).
public struct AllowAllGate: CallGate {
    public init() {}
    public func authorize(_ request: GateRequest) async -> GateDecision { GateDecision(allowed: true, ruleId: "test-allow", reason: "test") }
    public func charge(_ request: GateRequest, usage: ToolUsage, durationNanos: Int64) async {}
}

/// What one call through the run engine produced.
public struct Outcome: Sendable {
    public let step: StepRecord
    public init(step: StepRecord) { self.step = step }
    public var output: JSONValue? { step.output }
    public var error: ToolCallError? { step.attempts.last?.error }
    public var succeeded: Bool { step.status == .succeeded }
    /// The output, or a test failure showing why there is none.
    public func value(sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        try #require(step.output, "step \(step.status.rawValue): \(step.reason ?? "-") \(error.map { "[\($0.code)] \($0.message)" } ?? "")",
                     sourceLocation: sourceLocation)
    }
}

/// What a finished child process printed.
public struct ProcessResult: Sendable, CustomStringConvertible {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs programs as a user would (stdin /dev/null, stdout and stderr captured), on a thread of
/// their own so that waiting never holds a thread of Swift's cooperative pool.
public enum ProcessRunner {
    public static func run(_ path: String, _ args: [String], environment: [String: String]? = nil, cwd: String? = nil) async throws -> ProcessResult {
        try await OffPool.run { try runBlocking(path, args, environment: environment, cwd: cwd) }
    }

    /// The blocking part of `run`, kept private: called from a test's task it would hold one
    /// of the cooperative pool's (here two) threads for the whole life of the child process.
    private static func runBlocking(_ path: String, _ args: [String], environment: [String: String]? = nil, cwd: String? = nil) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// Network helpers.
public enum Ports {
    /// A port on 127.0.0.1 where nothing listens: a socket stays bound to it, not listening, for
    /// the rest of the test process, so a connection is refused and no other test's server can
    /// be given the port. (Bound and closed at once, the port went back to the kernel's pool, and
    /// a server that another test started meanwhile on port 0 got it: a "refused" connection was
    /// answered — seen in CI.)
    public static func closed() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0, "cannot create a probe socket")
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        try #require(ok, "cannot bind a probe socket")
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// Waiting for a state instead of sleeping for a fixed time.
public enum Wait {
    /// Polls `check` every 10 ms until it holds. After a minute the test fails with `what`
    /// instead of hanging (a guard, not a timing assertion: the state normally comes at once).
    public static func until(_ what: String, sourceLocation: SourceLocation = #_sourceLocation,
                             _ check: () async throws -> Bool) async throws {
        for _ in 0..<6_000 {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("never: \(what)", sourceLocation: sourceLocation)
    }

    /// Waits until `registry` has a call of driver `name` in flight.
    public static func untilInFlight(_ registry: DriverRegistry, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await until("a call of \(name) in flight", sourceLocation: sourceLocation) {
            registry.statuses().contains { $0.name == name && $0.inFlight > 0 }
        }
    }
}
