import Foundation
import Testing
import Host
import JSON

/// Issue 10.10: `destroy` and `shutdown` run on orderly exit (here: `nova-host run` ending),
/// in process and process-isolated.
@Suite("Driver lifecycle at exit")
struct LifecycleTests {
    /// `nova-host run` of a one-step plan, on a thread of its own: compiling the driver and
    /// waiting for the process block, and a test must not hold one of the cooperative pool's
    /// few threads for that long (the other tests' tasks would stall behind it — a shell test's
    /// 8 s deadline passed before its sandbox could start).
    func runOnce(isolation: String, extraArguments: [String] = []) async throws -> (status: Int32, markers: String, stderr: String) {
        try await OffPool.run { try runOnceBlocking(isolation: isolation, extraArguments: extraArguments) }
    }

    func runOnceBlocking(isolation: String, extraArguments: [String]) throws -> (status: Int32, markers: String, stderr: String) {
        let dir = Fixtures.tempDir("lifecycle")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        let markers = dir + "/markers"
        try Fixtures.buildVariant(into: dir + "/drivers", defines: ["-DMARKER_FILE=\"\(markers)\"", "-DLOG_ON_CALL"])
        Fixtures.write(#"{"rules": [{"id": "all", "effect": "allow", "tools": ["*"]}], "default_role": "user"}"#, to: dir + "/policy.json")
        Fixtures.write(#"{"drivers": {"variant": {"isolation": "\#(isolation)"}}}"#, to: dir + "/drivers.json")
        Fixtures.write(#"{"steps": [{"id": "a", "call": "variant.ping", "input": {}}]}"#, to: dir + "/plan.json")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixtures.binDir + "/nova-host")
        p.arguments = ["run", dir + "/plan.json", "--drivers", dir + "/drivers", "--data", dir + "/data",
                       "--policy", dir + "/policy.json", "--driver-config", dir + "/drivers.json"] + extraArguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: markers, encoding: .utf8)) ?? ""
        return (p.terminationStatus, text, String(decoding: e, as: UTF8.self))
    }

    @Test(arguments: ["inprocess", "process"])
    func runEndsWithDestroyThenShutdown(isolation: String) async throws {
        let r = try await runOnce(isolation: isolation)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.markers == "destroy\nshutdown\n", "\(isolation): markers were \(r.markers.debugDescription)")
    }

    /// Issue 10.9: what a driver logs through host->log reaches `run`'s stderr, with the
    /// driver, generation, call and run, filtered by --log-level.
    @Test(arguments: ["inprocess", "process"])
    func driverLogsReachRunsStderr(isolation: String) async throws {
        let shown = try await runOnce(isolation: isolation, extraArguments: ["--log-level", "info"])
        #expect(shown.status == 0)
        let line = shown.stderr.split(separator: "\n").first { $0.contains("variant says hello") }.map(String.init) ?? ""
        #expect(line.hasPrefix("[driver variant gen ") && line.contains(" call ") && line.contains(" run r") && line.hasSuffix("] warning: variant says hello"),
                "\(isolation): \(shown.stderr)")
        let hidden = try await runOnce(isolation: isolation, extraArguments: ["--log-level", "error"])
        #expect(hidden.status == 0 && !hidden.stderr.contains("variant says hello"), "\(hidden.stderr)")
        #expect(try await runOnce(isolation: isolation, extraArguments: ["-v"]).stderr.contains("variant says hello"))
    }
}
