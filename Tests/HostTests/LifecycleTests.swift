import Foundation
import Testing
@testable import Host
import JSON

/// Issue 10.10: `destroy` and `shutdown` run on orderly exit (here: `nova-host run` ending),
/// in process and process-isolated.
@Suite("Driver lifecycle at exit")
struct LifecycleTests {
    func runOnce(isolation: String) throws -> (status: Int32, markers: String, stderr: String) {
        let dir = Fixtures.tempDir("lifecycle")
        try FileManager.default.createDirectory(atPath: dir + "/drivers", withIntermediateDirectories: true)
        let markers = dir + "/markers"
        try Fixtures.buildVariant(into: dir + "/drivers", defines: ["-DMARKER_FILE=\"\(markers)\""])
        Fixtures.write(#"{"rules": [{"id": "all", "effect": "allow", "tools": ["*"]}], "default_role": "user"}"#, to: dir + "/policy.json")
        Fixtures.write(#"{"drivers": {"variant": {"isolation": "\#(isolation)"}}}"#, to: dir + "/drivers.json")
        Fixtures.write(#"{"steps": [{"id": "a", "call": "variant.ping", "input": {}}]}"#, to: dir + "/plan.json")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Fixtures.binDir + "/nova-host")
        p.arguments = ["run", dir + "/plan.json", "--drivers", dir + "/drivers", "--data", dir + "/data",
                       "--policy", dir + "/policy.json", "--driver-config", dir + "/drivers.json"]
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
    func runEndsWithDestroyThenShutdown(isolation: String) throws {
        let r = try runOnce(isolation: isolation)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.markers == "destroy\nshutdown\n", "\(isolation): markers were \(r.markers.debugDescription)")
    }
}
