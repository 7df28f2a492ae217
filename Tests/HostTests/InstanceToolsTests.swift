import Foundation
import Testing
import Host
import JSON

/// ABI 1.1 instance tool lists, through a driver in plain C (Tests/fixtures/instance_tools_driver.c):
/// the list read after `create` and again after `tools_changed` (from the driver's own thread,
/// under its own lock), a refused list that keeps the previous one, `refresh` on a reload that
/// leaves the driver unchanged, and a 1.0 host that sees the manifest's tools.
@Suite("Instance tools (ABI 1.1)", .serialized)
struct InstanceToolsTests {
    func install() throws -> String {
        let dir = Fixtures.tempDir("dyn")
        try Fixtures.buildC(source: Fixtures.root + "/Tests/fixtures/instance_tools_driver.c", into: dir, file: "libnova_dyn.so")
        return dir
    }

    func names(_ d: any ToolDriver) -> [String] { d.manifest.tools.map(\.name) }

    /// Polls (a bounded number of times) until `condition` holds; the host reads new lists on
    /// a thread of its own, so they arrive shortly after the call that caused them.
    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func theInstanceListIsReadAfterCreateAndAfterToolsChanged() async throws {
        let registry = DriverRegistry(driversDirectory: try install())
        let driver = try await registry.driver(named: "dyn")
        #expect(names(driver) == ["status", "grow", "break", "ns.first"])
        // A dotted tool resolves (the first dot of the id separates the driver).
        let (_, tool) = try await registry.resolve(toolId: "dyn.ns.first")
        #expect(tool.name == "ns.first")
        await #expect(throws: ToolCallError.self) { try await registry.resolve(toolId: "dyn.ns.second") }

        _ = try await driver.call(ToolCallRequest(tool: "grow", input: Array("{}".utf8)))
        #expect(await eventually { names(driver).contains("ns.second") })
        let (_, second) = try await registry.resolve(toolId: "dyn.ns.second")
        #expect(second.name == "ns.second")
        // Listed tools are what the host's surfaces see.
        #expect(registry.statuses().first { $0.name == "dyn" }?.manifest?.tools.map(\.name).contains("ns.second") == true)
    }

    @Test func aListThatFailsItsChecksIsRefusedAndThePreviousStays() async throws {
        let registry = DriverRegistry(driversDirectory: try install())
        let driver = try await registry.driver(named: "dyn")
        let instance = try #require(try await registry.activeGeneration("dyn").driver as? NativeDriverInstance)
        _ = try await driver.call(ToolCallRequest(tool: "break", input: Array("{}".utf8)))
        #expect(await eventually { instance.instanceToolsProblem != nil })
        #expect(instance.instanceToolsProblem?.contains("not a name!") == true)
        #expect(names(driver) == ["status", "grow", "break", "ns.first"])
    }

    @Test func aReloadRefreshesAnUnchangedDriver() async throws {
        let registry = DriverRegistry(driversDirectory: try install())
        let driver = try await registry.driver(named: "dyn")
        let report = await registry.reload()
        #expect(report.unchanged == ["dyn"] && report.refreshed == ["dyn"])
        #expect(await eventually { names(driver).contains("ns.refreshed") })
    }

    @Test func aHostOfferingOnly1_0SeesTheManifestTools() async throws {
        let registry = DriverRegistry(driversDirectory: try install(), hostVersion: ABIVersion(major: 1, minor: 0))
        let driver = try await registry.driver(named: "dyn")
        #expect(names(driver) == ["status"])
        #expect(await registry.reload().refreshed.isEmpty)
    }

    @Test func driversWithoutInstanceListsAreNotRefreshed() async throws {
        let dir = try install()
        try Fixtures.buildEcho(into: dir)
        let registry = DriverRegistry(driversDirectory: dir)
        _ = try await registry.driver(named: "echo")
        _ = try await registry.driver(named: "dyn")
        let report = await registry.reload()
        #expect(report.unchanged.sorted() == ["dyn", "echo"] && report.refreshed == ["dyn"])
    }
}
