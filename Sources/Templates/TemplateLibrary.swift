import Foundation
import HostSupport
import JSON
import Plans
import Store
import Synchronization

/// Why a template reference does not resolve.
public enum TemplateLookupError: Error, Sendable, CustomStringConvertible {
    case unknown(String)
    case noMatchingVersion(TemplateRef, available: [String])
    /// A stored version no longer parses (a newer host wrote a field this one does not know).
    case invalidStored(String, TemplateErrors)
    case store(String)

    public var description: String {
        switch self {
        case .unknown(let name): return "no template named '\(name)' (nova-host templates list shows them)"
        case .noMatchingVersion(let ref, let available):
            return "template \(ref.name) has no version matching \(ref.version) (it has: \(available.joined(separator: ", ")))"
        case .invalidStored(let id, let e): return "stored template \(id) is invalid: \(e)"
        case .store(let m): return "the template store cannot be read: \(m)"
        }
    }
}

/// What syncing the templates directory did.
public struct TemplateSyncReport: Sendable {
    /// `name@version` of each version stored by this sync.
    public var created: [String] = []
    /// Files whose version was already stored with the same content.
    public var unchanged = 0
    /// Files refused, with why (invalid, or a stored version whose content changed).
    public var errors: [(file: String, message: String)] = []

    public var json: JSONValue {
        ["created": .array(created.map(JSONValue.string)), "unchanged": .int(unchanged),
         "errors": .array(errors.map { ["file": .string($0.file), "message": .string($0.message)] })]
    }
}

/// The templates a host can run: every version in the store (from the API, or imported from
/// the templates directory by `sync`). Versions are immutable; a reference (`restock@1`)
/// resolves to the best stored version each time, so a version created on another host is
/// seen at once. Parsed versions are cached by hash.
public final class TemplateLibrary: Sendable {
    public let store: any TemplateStore
    /// The templates directory (`templates/`), nil when there is none.
    public let directory: String?
    private let parsed = Mutex<[String: PlanTemplate]>([:])

    public init(store: any TemplateStore, directory: String?) {
        self.store = store
        self.directory = directory
    }

    /// The files of the templates directory that hold templates.
    public static func templateFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") || PlanLoader.isYAML($0) }.sorted().map { directory + "/" + $0 }
    }

    /// Parses a template file.
    public static func load(path: String) throws(TemplateErrors) -> PlanTemplate {
        let doc: JSONValue
        do { doc = try PlanLoader.document(path: path) } catch { throw TemplateErrors(error.errors.map { TemplateError($0.message) }) }
        return try PlanTemplate(document: doc)
    }

    /// Imports every template file of the directory into the store: a new version is stored,
    /// the same version with the same content is left alone, and the same version with other
    /// content is refused (bump the version: records name versions, so a version never changes).
    public func sync() async -> TemplateSyncReport {
        var report = TemplateSyncReport()
        guard let directory else { return report }
        for path in Self.templateFiles(in: directory) {
            let template: PlanTemplate
            do { template = try Self.load(path: path) } catch {
                report.errors.append((path, error.description))
                continue
            }
            do {
                switch try await put(template, source: "file:" + (path as NSString).lastPathComponent, by: nil) {
                case .created: report.created.append(template.id)
                case .unchanged: report.unchanged += 1
                case .conflict(let existing):
                    report.errors.append((path, "\(template.id) is already stored with other content (\(existing)); give the changed file a new version"))
                }
            } catch { report.errors.append((path, "\(error)")) }
        }
        return report
    }

    /// Stores a version (from the API: `source` "api", `by` the principal).
    public func put(_ template: PlanTemplate, source: String, by: String?) async throws -> TemplatePutOutcome {
        try await store.putTemplate(StoredTemplate(name: template.name, version: template.version.description, hash: template.hash,
                                                   document: template.document, source: source, createdBy: by, createdAt: Timestamps.now()))
    }

    /// The parsed template of a stored version.
    func template(_ stored: StoredTemplate) throws(TemplateLookupError) -> PlanTemplate {
        if let t = parsed.withLock({ $0[stored.hash] }) { return t }
        let t: PlanTemplate
        do { t = try PlanTemplate(document: stored.document) } catch { throw .invalidStored("\(stored.name)@\(stored.version)", error) }
        parsed.withLock { $0[stored.hash] = t }
        return t
    }

    /// Every stored version, newest first within a name, names in order.
    public func list(name: String? = nil) async throws(TemplateLookupError) -> [(template: PlanTemplate, stored: StoredTemplate)] {
        let rows: [StoredTemplate]
        do {
            if let name { rows = try await store.templateVersions(name: name) } else { rows = try await store.allTemplates() }
        } catch { throw .store("\(error)") }
        var out: [(PlanTemplate, StoredTemplate)] = []
        for row in rows { out.append((try template(row), row)) }
        return out.sorted { a, b in a.0.name != b.0.name ? a.0.name < b.0.name : b.0.version < a.0.version }
    }

    /// The stored version `ref` selects.
    public func resolve(_ ref: TemplateRef) async throws(TemplateLookupError) -> PlanTemplate {
        let versions = try await list(name: ref.name)
        guard !versions.isEmpty else { throw .unknown(ref.name) }
        guard let v = ref.version.select(from: versions.map(\.template.version)), let hit = versions.first(where: { $0.template.version == v }) else {
            throw .noMatchingVersion(ref, available: versions.map(\.template.version.description))
        }
        return hit.template
    }
}
