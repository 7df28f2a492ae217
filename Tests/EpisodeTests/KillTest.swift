import Foundation
import Testing
import Host
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// SIGKILLs a process writing episodes at random moments, many times over one data directory,
/// then checks that (after the normal start-up recovery) the chain verifies and every episode
/// whose write was acknowledged is present.
@Suite struct KillTest {
    typealias F = EpisodeFixtures

    /// The `episode-kill-worker` binary (Tests/EpisodeKillWorker): the one next to this test
    /// binary (same build), else `NOVA_BIN_DIR/episode-kill-worker`, else
    /// `<package>/.build/debug/episode-kill-worker`.
    static func workerBinary() -> String? {
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            var url = URL(fileURLWithPath: exe).deletingLastPathComponent()
            // Linux test bundles are executables in the build directory; on some layouts the
            // binary sits inside a `.xctest` directory.
            if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
            candidates.append(url.appendingPathComponent("episode-kill-worker").path)
        }
        if let d = env["NOVA_BIN_DIR"] { candidates.append(d + "/episode-kill-worker") }
        candidates.append(F.root + "/.build/debug/episode-kill-worker")
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func nowMs() -> Double { Double(Timestamps.wallNanos()) / 1e6 }

    struct KillLoopResult: Sendable {
        var acked: Set<String>
        var killedAfterAck: Int
        var problems: [String]
    }

    /// Starts, and SIGKILLs at a random moment, `iterations` writer processes in turn.
    static func killLoop(binary: String, iterations: Int, data: String, stderrPath: String) throws -> KillLoopResult {
        var acked = Set<String>()
        var problems: [String] = []
        var killedAfterAck = 0
        var rng = SystemRandomNumberGenerator()
        for iteration in 0..<iterations {
            // Small segments, so that kills also land in rotations (a new segment every ~100 episodes).
            let child = try Child(path: binary, arguments: ["--data", data, "--count", "1000000", "--segment-bytes", "65536"],
                                  stderrPath: stderrPath)
            // Odd iterations: kill while writing (0–30 ms after READY). Even ones: kill 0–30 ms
            // after spawning, which lands in start-up, recovery or the first writes.
            if iteration % 2 == 1 {
                let deadline = Self.nowMs() + 20_000
                while !child.hasLine("READY") && !child.eof && Self.nowMs() < deadline { child.pump(timeoutMs: 20) }
                if !child.hasLine("READY") {
                    child.kill()
                    child.wait()
                    let log = String(decoding: F.read(stderrPath), as: UTF8.self)
                    problems.append("child never became ready (does episode-kill-worker start?): \(child.lines.suffix(5)) \(log.suffix(2000))")
                    return KillLoopResult(acked: acked, killedAfterAck: killedAfterAck, problems: problems)
                }
            }
            let until = Self.nowMs() + Double(Int.random(in: 0...30, using: &rng))
            while Self.nowMs() < until && !child.eof { child.pump(timeoutMs: Int32(max(1, until - Self.nowMs()))) }
            child.kill()
            let status = child.wait()
            let lines = child.completeLines
            let acks = lines.filter { $0.hasPrefix("ACK ") }.map { String($0.dropFirst(4)) }
            acked.formUnion(acks)
            if !acks.isEmpty { killedAfterAck += 1 }
            for line in lines where line.hasPrefix("ERR ") { problems.append("child reported a failed write: \(line)") }
            // Killed (status & 0x7f == SIGKILL) is expected; an own exit before the kill is not.
            if status & 0x7f != SIGKILL {
                let log = String(decoding: F.read(stderrPath), as: UTF8.self)
                problems.append("child exited by itself (status \(status)) in iteration \(iteration): \(log.suffix(2000))")
                return KillLoopResult(acked: acked, killedAfterAck: killedAfterAck, problems: problems)
            }
        }
        return KillLoopResult(acked: acked, killedAfterAck: killedAfterAck, problems: problems)
    }

    @Test func sigkillDuringWritesLosesNoAcknowledgedEpisode() async throws {
        let binary = try #require(Self.workerBinary(), "episode-kill-worker not found (swift build builds it)")
        let iterations = Int(ProcessInfo.processInfo.environment["NOVA_KILL_ITERATIONS"] ?? "") ?? 200
        let data = F.tempDir("kill")
        let stderrPath = data + ".stderr.log"
        defer { F.remove(data); F.remove(stderrPath) }

        let started = Self.nowMs()
        // The loop blocks (poll, waitpid) for half a minute: on a thread of its own, not on one
        // of the cooperative pool's two threads that every other test needs.
        let loop = try await OffPool.run { try Self.killLoop(binary: binary, iterations: iterations, data: data, stderrPath: stderrPath) }
        for problem in loop.problems { Issue.record(Comment(rawValue: problem)) }
        if !loop.problems.isEmpty { return }
        let (acked, killedAfterAck) = (loop.acked, loop.killedAfterAck)
        let elapsed = (Self.nowMs() - started) / 1000

        // The normal start-up recovery, then the checks.
        let log = try await EpisodeLog.open(dataDirectory: data)
        let report = try await log.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.backupProblems.isEmpty, "\(report.backupProblems)")
        #expect(report.staleTempFiles.isEmpty)
        var missing: [String] = []
        for id in acked {
            guard let e = try? await log.show(runId: id), e.problem == nil else { missing.append(id); continue }
        }
        #expect(missing.isEmpty, "acknowledged but missing: \(missing.prefix(10))")
        #expect(report.checked >= acked.count)
        #expect(try await log.store.indexedRunIds().count == report.checked)
        // Writes really were under way when the kills came.
        #expect(acked.count >= iterations / 10, "only \(acked.count) writes acknowledged")
        print("kill test: \(iterations) kills in \(Int(elapsed)) s; \(acked.count) acknowledged, \(report.checked) episodes on disk, "
              + "chain intact; \(killedAfterAck) kills came after at least one acknowledgement in that process")
    }
}
