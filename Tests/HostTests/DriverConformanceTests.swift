import Foundation
import Host
import JSON
import Testing

/// `nova-host drivers test` through the real CLI, on drivers that conform and on one that
/// breaks one ABI rule at a time (Tests/fixtures/nonconforming_driver.c).
@Suite struct DriverConformanceTests {
    struct Finding {
        let check: String, outcome: String, detail: String
    }

    /// Runs `drivers test --json` on `library`; the exit status and the findings (plus the crash
    /// line, if any).
    static func check(_ library: String, _ extra: [String] = []) async throws -> (Int32, [Finding], String?) {
        let result = try await ProcessRunner.run(TestPaths.novaHost, ["drivers", "test", "--json", "--call-timeout", "2"] + extra + [library])
        let reports = try #require(try JSONValue.parse(result.stdout).arrayValue, "\(result)")
        let report = try #require(reports.first, "\(result)")
        let findings = (report["findings"]?.arrayValue ?? []).map {
            Finding(check: $0["check"]?.stringValue ?? "", outcome: $0["outcome"]?.stringValue ?? "", detail: $0["detail"]?.stringValue ?? "")
        }
        return (result.status, findings, report["crash"]?.stringValue)
    }

    static func nonconforming(_ fault: String) throws -> String {
        let dir = Fixtures.tempDir("conformance")
        return try Fixtures.buildC(source: Fixtures.root + "/Tests/fixtures/nonconforming_driver.c", into: dir,
                                   file: "libnova_nonconforming.so", defines: ["-DFAULT_\(fault)"])
    }

    @Test func theExampleDriversConform() async throws {
        let dir = Fixtures.tempDir("conformance")
        for library in [try Fixtures.buildEcho(into: dir), TestPaths.binDir + "/libnova_text.so"] {
            let (status, findings, crash) = try await Self.check(library)
            #expect(status == 0 && crash == nil, "\(library): \(findings.map { "\($0.check) \($0.outcome) \($0.detail)" })")
            #expect(findings.allSatisfy { $0.outcome != "failed" })
            // Every check ran, and the examples were called.
            for check in ["load", "manifest", "create", "example", "async", "concurrency", "deadline", "cancel", "destroy"] {
                #expect(findings.contains { $0.check == check && $0.outcome == "passed" }, "\(library): no passed \(check)")
            }
        }
    }

    @Test func theControlConforms() async throws {
        let (status, findings, _) = try await Self.check(try Self.nonconforming("NONE"))
        #expect(status == 0)
        #expect(findings.filter { $0.outcome == "failed" }.isEmpty)
    }

    @Test func aSecondCompleteIsReported() async throws {
        let (status, findings, _) = try await Self.check(try Self.nonconforming("DOUBLE_COMPLETE"))
        #expect(status == 1)
        #expect(findings.contains { $0.check == "async" && $0.outcome == "failed" && $0.detail.contains("already completed") })
    }

    @Test func okWithoutCompleteIsReported() async throws {
        let (status, findings, _) = try await Self.check(try Self.nonconforming("OK_WITHOUT_COMPLETE"))
        #expect(status == 1)
        #expect(findings.contains { $0.check == "async" && $0.outcome == "failed" && $0.detail.contains("NOVA_OK without having called complete") })
        #expect(findings.contains { $0.check == "destroy" && $0.outcome == "failed" })
    }

    @Test func aCallDroppedAfterItsDeadlineOrCancelIsReported() async throws {
        let (status, findings, _) = try await Self.check(try Self.nonconforming("DROPS_ENDED_CALLS"))
        #expect(status == 1)
        #expect(findings.contains { $0.check == "example" && $0.outcome == "passed" })
        #expect(findings.contains { $0.check == "deadline" && $0.outcome == "failed" && $0.detail.contains("still holds the call") })
        #expect(findings.contains { $0.check == "cancel" && $0.outcome == "failed" })
    }

    @Test func anOutputOutsideTheOutputSchemaIsReported() async throws {
        let (status, findings, _) = try await Self.check(try Self.nonconforming("BAD_OUTPUT"))
        #expect(status == 1)
        #expect(findings.contains { $0.check == "example" && $0.outcome == "failed" && $0.detail.contains("outputSchema") })
    }

    @Test func aCrashIsReportedWithTheCheckThatRan() async throws {
        let (status, _, crash) = try await Self.check(try Self.nonconforming("CRASH"))
        #expect(status == 1)
        #expect(crash?.contains("crashed during 'example nonconforming.work[0]'") == true, "\(crash ?? "no crash line")")
    }

    @Test func anExampleThatFailsItsInputSchemaIsReported() async throws {
        let dir = Fixtures.tempDir("conformance")
        let manifest = #"{"name":"variant","version":"0.1.0","description":"t","tools":[{"name":"ping","description":"p","# +
            #""inputSchema":{"type":"object","required":["x"]},"examples":[{"input":{}}]}]}"#
        let library = try Fixtures.buildVariant(into: dir, defines: ["-DMANIFEST_JSON=\(Self.cString(manifest))"])
        let (status, findings, _) = try await Self.check(library)
        #expect(status == 1)
        #expect(findings.contains { $0.check == "manifest" && $0.outcome == "failed" && $0.detail.contains("does not pass the tool's inputSchema") })
    }

    @Test func badArgumentsAreRefused() async throws {
        let r = try await ProcessRunner.run(TestPaths.novaHost, ["drivers", "test", "--config", "[1]", "x.so"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("must be a JSON object"))
    }

    static func cString(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
