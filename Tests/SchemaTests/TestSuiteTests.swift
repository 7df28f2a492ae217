import Foundation
import JSON
import Testing
@testable import Schema

/// Runs the official JSON-Schema-Test-Suite (draft 2020-12) from
/// `../shared/testdata/JSON-Schema-Test-Suite` (relative to the package root) or
/// `$NOVA_SCHEMA_SUITE`.
@Suite("JSON-Schema-Test-Suite")
struct TestSuiteTests {
    static func suiteRoot() -> URL? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["NOVA_SCHEMA_SUITE"], !env.isEmpty {
            return URL(fileURLWithPath: env)
        }
        // #filePath = <root>/Tests/SchemaTests/TestSuiteTests.swift
        let file = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        let root = file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.deletingLastPathComponent().appendingPathComponent("shared/testdata/JSON-Schema-Test-Suite")
        return fm.fileExists(atPath: candidate.path) ? candidate : nil
    }

    static func loadJSON(_ url: URL) throws -> JSONValue {
        try JSONValue.parse(Array(try Data(contentsOf: url)))
    }

    /// Every file under `remotes/`, registered as `http://localhost:1234/<relative path>`.
    static func registry(_ root: URL) throws -> SchemaRegistry {
        var reg = SchemaRegistry()
        let remotes = root.appendingPathComponent("remotes")
        let base = remotes.standardizedFileURL.path
        guard let e = FileManager.default.enumerator(at: remotes, includingPropertiesForKeys: nil) else { return reg }
        for case let url as URL in e where url.pathExtension == "json" {
            let path = url.standardizedFileURL.path
            let rel = String(path.dropFirst(base.count + 1))
            reg.add(try loadJSON(url), uri: "http://localhost:1234/" + rel)
        }
        return reg
    }

    struct Outcome {
        var passed = 0
        var total = 0
        var failures: [String] = []
    }

    static func run(files: [URL], registry: SchemaRegistry, formatAssertion: Bool = false) throws -> Outcome {
        var out = Outcome()
        for file in files {
            guard case .array(let groups) = try loadJSON(file) else { continue }
            for group in groups {
                let desc = group["description"]?.stringValue ?? "?"
                let tests = group["tests"]?.arrayValue ?? []
                let schema: CompiledSchema
                do {
                    schema = try Schema.compile(group["schema"] ?? .null, registry: registry,
                                                options: ValidationOptions(formatAssertion: formatAssertion))
                } catch {
                    out.total += tests.count
                    out.failures.append("\(file.lastPathComponent) | \(desc) | schema did not compile: \(error)")
                    continue
                }
                for t in tests {
                    out.total += 1
                    let data = t["data"] ?? .null
                    let expected = t["valid"]?.boolValue ?? false
                    let result = schema.validate(data)
                    let fast = schema.isValid(data)
                    if result.isValid == expected && fast == expected {
                        out.passed += 1
                    } else {
                        out.failures.append("\(file.lastPathComponent) | \(desc) | \(t["description"]?.stringValue ?? "?") | expected \(expected ? "valid" : "invalid"), validate() said \(result.isValid ? "valid" : "invalid"), isValid() said \(fast)")
                    }
                }
            }
        }
        return out
    }

    @Test func draft202012() throws {
        guard let root = TestSuiteTests.suiteRoot() else {
            Issue.record("JSON-Schema-Test-Suite not found: put it at ../shared/testdata/JSON-Schema-Test-Suite or set NOVA_SCHEMA_SUITE")
            return
        }
        let reg = try TestSuiteTests.registry(root)
        let dir = root.appendingPathComponent("tests/draft2020-12")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        #expect(!files.isEmpty)
        let out = try TestSuiteTests.run(files: files, registry: reg)
        print("JSON-Schema-Test-Suite draft2020-12: \(out.passed)/\(out.total) passed")
        for f in out.failures { print("  FAIL " + f) }
        #expect(out.failures.isEmpty, Comment(rawValue: "\(out.failures.count) JSON-Schema-Test-Suite cases failed:\n" + out.failures.joined(separator: "\n")))
        #expect(out.total > 1000)
    }
}

