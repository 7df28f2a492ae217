import Foundation
import Host
import JSON
import Testing

/// `nova-host run` and Ctrl-C: SIGINT cancels the run, the cancellation reaches the in-flight
/// call, and the run is still recorded (as cancelled) with exit status 1.
@Suite("CLI signals")
struct CLISignalTests {
    @Test func sigintCancelsTheRunAndItIsRecorded() async throws {
        let binary = Fixtures.binDir + "/nova-host"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: build the package first")
        let dir = Fixtures.tempDir("cli-sigint")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        try Fixtures.buildEcho(into: dir + "/drivers")
        Fixtures.write(#"{"name": "nap", "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": 600000}}]}"#, to: dir + "/plan.json")
        let result = try await OffPool.run { () throws -> (Bool, Int32, String, String) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.arguments = ["run", dir + "/plan.json", "--json", "--drivers", dir + "/drivers", "--data", dir + "/data",
                           "--policy", Fixtures.root + "/configs/policy.default.json"]
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            // Interrupt once the handler is installed: SIGINT's bit in /proc/PID/status SigCgt
            // (before that, SIGINT would simply kill the process).
            for _ in 0..<6000 where !Self.catches(pid: p.processIdentifier, signal: SIGINT) { usleep(10_000) }
            kill(p.processIdentifier, SIGINT)
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationReason == .exit, p.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
        }
        let (exited, status, stdout, stderr) = result
        #expect(exited, "nova-host was killed by the signal instead of handling it")
        #expect(status == 1, "stdout: \(stdout) stderr: \(stderr)")
        let json = try JSONValue.parse(Array(stdout.utf8))
        #expect(json["status"] == "cancelled")
        // The run became an episode that says so.
        #expect(json["episode"]?["seq"]?.intValue != nil)
        let runId = try #require(json["run_id"]?.stringValue)
        let document = try EpisodeSegmentLog(dataDirectory: dir + "/data", openMode: .noRecovery).show(runId: runId).document
        #expect(document["status"] == "cancelled")
    }

    /// Whether the process has a handler for `signal` (its bit in SigCgt).
    static func catches(pid: Int32, signal: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
              let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16) else { return false }
        return mask & (1 << UInt64(signal - 1)) != 0
    }
}
