import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Episodes
import HostSupport
import JSON
import Threads

/// The child process of the episode kill test (`episode-kill-worker --data DIR [--count N]
/// [--writers W] [--segment-bytes B]`, Tests/EpisodeTests/KillTest.swift): opens the data directory with the normal start-up recovery, prints `READY`,
/// then writes episodes from `writers` threads and prints `ACK <run_id>` (one `write(2)` to
/// stdout, unbuffered) after each write has returned, i.e. once the episode is durable. The
/// test SIGKILLs it at random moments and then checks that every acknowledged run id is
/// present and the chain verifies.
enum EpisodeKillTestWorker {
    /// Runs the worker; returns after `count` episodes (normally it is killed long before).
    static func run(dataDir: String, count: Int, writers: Int = 2, segmentBytes: Int = EpisodeSegmentLog.defaultSegmentBytes) throws {
        // The episode log alone: the kill test is about its durability, not the index.
        let log = try EpisodeSegmentLog(dataDirectory: dataDir, segmentBytes: segmentBytes)
        emit("READY\n")
        let prefix = "k\(Timestamps.wallNanos())-\(getpid())"
        let next = Counter()
        let failures = Counter()
        let threads = (0..<max(1, writers)).map { _ in
            PosixThread {
                while true {
                    let i = next.increment()
                    if i > count { return }
                    let runId = "\(prefix)-\(i)"
                    do {
                        try log.write(body: sampleBody(runId: runId, index: i), runId: runId)
                        emit("ACK \(runId)\n")
                    } catch {
                        _ = failures.increment()
                        emit("ERR \(runId) \(error)\n")
                    }
                }
            }
        }
        for t in threads { t.join() }
        if failures.value > 0 {
            throw EpisodeError.io(EpisodeFileSystemError(operation: "torture: \(failures.value) write(s) failed", path: dataDir, errno: EIO))
        }
    }

    /// A run-record-shaped body of roughly `size` bytes.
    static func sampleBody(runId: String, index: Int, size: Int = 600) -> JSONValue {
        let filler = String(repeating: "x", count: max(0, size - 420))
        return [
            "run_id": .string(runId), "plan_name": "torture", "principal": index % 3 == 0 ? "svc" : "alice",
            "status": index % 5 == 0 ? "failed" : "succeeded", "started_at": .string(Timestamps.now()),
            "finished_at": .string(Timestamps.now()), "duration_ms": .double(Double(index % 97) + 0.25),
            "inputs": ["n": .int(index)], "plan": ["steps": [["id": "a", "call": "text.echo"]]],
            "steps": [["id": "a", "call": "text.echo", "status": "succeeded",
                       "attempts": [["attempt": 1, "input": ["text": .string(filler)], "output": ["ok": true]]]]],
            "totals": ["calls": 1, "tokens": .int(index % 1000), "cost_micros": .int(index * 7)],
        ]
    }

    static func emit(_ s: String) {
        var bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = ConditionLock()
    private var n = 0
    func increment() -> Int { lock.withLock { n += 1; return n } }
    var value: Int { lock.withLock { n } }
}

/// `--name value` from the command line, or `fallback`.
func option(_ name: String, _ fallback: String?) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}

guard let data = option("--data", nil) else {
    FileHandle.standardError.write(Data("usage: episode-kill-worker --data DIR [--count N] [--writers W] [--segment-bytes B]\n".utf8))
    exit(2)
}
do {
    try EpisodeKillTestWorker.run(dataDir: data, count: Int(option("--count", nil) ?? "") ?? 1_000_000,
                                  writers: Int(option("--writers", nil) ?? "") ?? 2,
                                  segmentBytes: Int(option("--segment-bytes", nil) ?? "") ?? EpisodeSegmentLog.defaultSegmentBytes)
} catch {
    FileHandle.standardError.write(Data("episode-kill-worker: \(error)\n".utf8))
    exit(1)
}
