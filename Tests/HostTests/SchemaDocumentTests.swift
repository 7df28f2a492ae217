import Foundation
import Testing
import Host
@testable import Drivers
import JSON

@Suite("Document schemas")
struct SchemaDocumentTests {
    @Test func embeddedSchemasMatchTheFiles() throws {
        for (name, text) in [("plan", BundledSchemas.plan), ("policy", BundledSchemas.policy), ("manifest", BundledSchemas.manifest), ("drivers", BundledSchemas.drivers),
                             ("template", BundledSchemas.template), ("blueprint", BundledSchemas.blueprint)] {
            let file = try String(contentsOfFile: Fixtures.root + "/schemas/\(name).schema.json", encoding: .utf8)
            #expect(try JSONValue.parse(file) == JSONValue.parse(text), "run scripts/embed-schemas.py after editing schemas/\(name).schema.json")
        }
        #expect(DocumentSchemas.plan != nil && DocumentSchemas.policy != nil && DocumentSchemas.manifest != nil && DocumentSchemas.drivers != nil)
    }

    @Test func shippedDocumentsAreValid() throws {
        let policy = try JSONValue.parse(String(contentsOfFile: Fixtures.root + "/configs/policy.default.json", encoding: .utf8))
        #expect(DocumentSchemas.check(policy, against: DocumentSchemas.policy).isEmpty)
        _ = try PolicyProfile.load(Fixtures.root + "/configs/policy.default.json")
        let (settings, retained) = try NovaHost.loadDriverSettings(Fixtures.root + "/configs/drivers.json")
        #expect(settings["shell"]?.isolation == .process && retained == 16)
        let dir = Fixtures.tempDir("dcfg")
        Fixtures.write(#"{"drivers": {"x": {"isolation": "sandboxed"}}}"#, to: dir + "/d.json")
        #expect { _ = try NovaHost.loadDriverSettings(dir + "/d.json") } throws: { e in
            (e as? PolicyError)?.message.contains("drivers.x.isolation") == true
        }
        for file in try FileManager.default.contentsOfDirectory(atPath: Fixtures.root + "/examples") where file.hasSuffix(".plan.json") {
            _ = try PlanLoader.load(path: Fixtures.root + "/examples/" + file)
        }
    }

    @Test func policySchemaViolationsNameTheField() throws {
        let dir = Fixtures.tempDir("pol")
        Fixtures.write(#"{"rules": [{"id": "x", "effect": "allow", "tools": []}]}"#, to: dir + "/p.json")
        #expect { _ = try PolicyProfile.load(dir + "/p.json") } throws: { e in
            (e as? PolicyError)?.message.contains("rules[0].tools") == true
        }
    }

    @Test func planSchemaIsAppliedAfterTheParser() throws {
        // The parser accepts a string `version`; the schema also checks types the parser ignores.
        #expect { _ = try Plan.parse(JSONValue.parse(#"{"name": "", "steps": [{"id": "a", "call": "echo.echo"}]}"#)) } throws: { e in
            (e as? PlanErrors)?.errors.first?.field == "name"
        }
    }

    @Test func manifestToolSchemasMustCompile() {
        let tools = [ToolDescriptor(name: "t", description: "d", inputSchema: ["type": 12], outputSchema: nil,
                                    annotations: ToolAnnotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false),
                                    secretInputFields: [])]
        let json: JSONValue = ["name": "x", "version": "1", "tools": [["name": "t", "description": "d", "inputSchema": ["type": 12]]]]
        #expect(DriverManifest.schemaProblem(json: json, tools: tools)?.contains("inputSchema is not a valid JSON Schema") == true)
    }
}
