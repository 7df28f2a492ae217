import JSON

/// A physical location in a loaded document: document index + JSON Pointer tokens from its root.
struct Location: Hashable {
    let doc: Int
    let pointer: [String]

    func appending(_ t: String) -> Location { Location(doc: doc, pointer: pointer + [t]) }
    func appending(_ t: String, _ u: String) -> Location { Location(doc: doc, pointer: pointer + [t, u]) }
}

/// Which vocabularies a document's dialect turns on.
struct Vocabularies {
    var applicator = true
    var unevaluated = true
    var validation = true
    var formatAssertion = false
    /// Older drafts (04–07, 2019-09) declared by `$schema`: evaluated with 2020-12 semantics
    /// plus their array-form `items`, `additionalItems` and `dependencies`.
    var legacy = false

    static let all = Vocabularies()
}

/// Turns schema documents into a graph of `Node`s: indexes `$id`, `$anchor` and
/// `$dynamicAnchor` in every document it loads, resolves references, compiles keywords.
final class Compiler {
    let registry: SchemaRegistry
    var docs: [JSONValue] = []
    var docURIs: [String] = []
    var docVocab: [Vocabularies] = []
    var docByURI: [String: Int] = [:]
    /// Absolute URI (no fragment) of every schema resource → its location.
    var resources: [String: Location] = [:]
    /// "uri#name" for `$anchor` and `$dynamicAnchor` → location.
    var anchors: [String: Location] = [:]
    /// Resource URI → its `$dynamicAnchor`s.
    var dynamicAnchorsByResource: [String: [(String, Location)]] = [:]
    /// Base URI of every indexed schema location.
    var baseOf: [Location: String] = [:]
    var nodes: [Location: Node] = [:]
    var arena: [Node] = []
    var resourceObjects: [String: Resource] = [:]
    var resourceArena: [Resource] = []
    var usesDynamicRef = false
    /// Keyword payload objects, kept alive for the compiled schema's lifetime.
    var payloads: [AnyObject] = []
    /// Nodes created but not compiled yet (see `compilePending`).
    var pending: [(Location, Node, JSONValue)] = []

    init(registry: SchemaRegistry) {
        self.registry = registry
    }

    func error(_ loc: Location, _ message: String) -> SchemaCompileError {
        SchemaCompileError(location: absoluteLocation(loc), message: message)
    }

    // MARK: documents and indexing

    /// Adds a document under its retrieval URI and indexes it.
    @discardableResult
    func addDocument(_ value: JSONValue, uri: String) throws -> Int {
        let uri = splitFragment(uri).0
        if let d = docByURI[uri] { return d }
        let d = docs.count
        docs.append(value)
        docURIs.append(uri)
        docByURI[uri] = d
        docVocab.append(try vocabularies(for: value, uri: uri))
        let root = Location(doc: d, pointer: [])
        resources[uri] = root
        index(value, at: root, base: uri)
        return d
    }

    /// Older dialects accepted (with 2020-12 semantics plus their legacy keywords) because
    /// tool schemas in the wild still declare them; `http`/`https` spellings both occur.
    static let legacyDrafts: Set<String> = [
        "http://json-schema.org/draft-07/schema", "https://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema", "https://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema", "https://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-03/schema", "http://json-schema.org/schema",
        "https://json-schema.org/draft/2019-09/schema",
    ]

    func vocabularies(for doc: JSONValue, uri: String) throws -> Vocabularies {
        guard case .string(let s)? = doc["$schema"] else { return .all }
        let metaURI = splitFragment(resolveURI(s, against: uri)).0
        if metaURI == Schema.draft202012 { return .all }
        if Compiler.legacyDrafts.contains(metaURI) {
            var v = Vocabularies.all
            v.legacy = true
            return v
        }
        guard let meta = registry.document(at: metaURI) ?? findByID(metaURI).map({ docs[$0] }) else {
            throw SchemaCompileError(location: uri, message: "unknown $schema \"\(s)\": it is neither draft 2020-12 nor a document in the registry")
        }
        guard case .object(let vocab)? = meta["$vocabulary"] else { return .all }
        let base = "https://json-schema.org/draft/2020-12/vocab/"
        var v = Vocabularies(applicator: false, unevaluated: false, validation: false, formatAssertion: false, legacy: false)
        for (key, required) in vocab {
            switch key.string {
            case base + "core", base + "meta-data", base + "content", base + "format-annotation": break
            case base + "applicator": v.applicator = true
            case base + "unevaluated": v.unevaluated = true
            case base + "validation": v.validation = true
            case base + "format-assertion": v.formatAssertion = true
            default:
                if required == .bool(true) {
                    throw SchemaCompileError(location: uri, message: "meta-schema \(metaURI) requires the unknown vocabulary \(key.string)")
                }
            }
        }
        return v
    }

    /// Keywords whose value is one subschema.
    static let singleSchemaKeywords: Set<String> = [
        "additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties", "contentSchema", "additionalItems",
    ]
    /// Keywords whose value is an object of subschemas.
    static let mapSchemaKeywords: Set<String> = [
        "$defs", "properties", "patternProperties", "dependentSchemas", "definitions", "dependencies",
    ]
    /// Keywords whose value is an array of subschemas.
    static let arraySchemaKeywords: Set<String> = ["allOf", "anyOf", "oneOf", "prefixItems", "items"]

    func index(_ value: JSONValue, at loc: Location, base: String) {
        guard case .object(let o) = value else {
            baseOf[loc] = base
            return
        }
        var b = base
        if case .string(let id)? = o["$id"] {
            b = splitFragment(resolveURI(id, against: base)).0
            if resources[b] == nil { resources[b] = loc }
        }
        baseOf[loc] = b
        if case .string(let a)? = o["$anchor"] {
            anchors[b + "#" + a] = loc
        }
        if case .string(let a)? = o["$dynamicAnchor"] {
            if anchors[b + "#" + a] == nil { anchors[b + "#" + a] = loc }
            dynamicAnchorsByResource[b, default: []].append((a, loc))
        }
        for (key, v) in o {
            let k = key.string
            if Compiler.singleSchemaKeywords.contains(k) {
                if case .array = v, k == "items" { } else { index(v, at: loc.appending(k), base: b); continue }
            }
            if Compiler.arraySchemaKeywords.contains(k), case .array(let a) = v {
                for (i, s) in a.enumerated() { index(s, at: loc.appending(k, String(i)), base: b) }
            } else if Compiler.mapSchemaKeywords.contains(k), case .object(let m) = v {
                for (name, s) in m { index(s, at: loc.appending(k, name.string), base: b) }
            }
        }
    }

    /// Index of an unloaded registry document whose root `$id` is `uri`, after loading it.
    func findByID(_ uri: String) -> Int? {
        for (docURI, doc) in registry.documents where docByURI[docURI] == nil {
            if case .string(let id)? = doc["$id"], splitFragment(resolveURI(id, against: docURI)).0 == uri {
                return try? addDocument(doc, uri: docURI)
            }
        }
        return nil
    }

    /// The location of the resource at `uri` (no fragment), loading it from the registry.
    func locateResource(_ uri: String) throws -> Location? {
        if let l = resources[uri] { return l }
        if let doc = registry.document(at: uri) {
            let d = try addDocument(doc, uri: uri)
            return resources[uri] ?? Location(doc: d, pointer: [])
        }
        if findByID(uri) != nil { return resources[uri] }
        return nil
    }

    func value(at loc: Location) -> JSONValue? {
        var cur = docs[loc.doc]
        for t in loc.pointer {
            switch cur {
            case .object(let o):
                guard let n = o[t] else { return nil }
                cur = n
            case .array(let a):
                guard let i = JSONPointer.arrayIndex(t), i < a.count else { return nil }
                cur = a[i]
            default: return nil
            }
        }
        return cur
    }

    /// Base URI in effect at `loc` (after applying its own `$id`).
    func baseURI(_ loc: Location) -> String {
        if let b = baseOf[loc] { return b }
        if loc.pointer.isEmpty { return docURIs[loc.doc] }
        let parent = Location(doc: loc.doc, pointer: Array(loc.pointer.dropLast()))
        let pb = baseURI(parent)
        if case .string(let id)? = value(at: loc)?["$id"] {
            return splitFragment(resolveURI(id, against: pb)).0
        }
        return pb
    }

    func absoluteLocation(_ loc: Location) -> String {
        let base = baseURI(loc)
        var suffix = loc.pointer
        if let root = resources[base], root.doc == loc.doc, root.pointer.count <= loc.pointer.count,
           Array(loc.pointer.prefix(root.pointer.count)) == root.pointer {
            suffix = Array(loc.pointer.dropFirst(root.pointer.count))
        }
        return base + "#" + JSONPointer(tokens: suffix).description
    }

    /// Resolves a reference string found at `loc` to a location.
    func resolve(_ ref: String, from loc: Location) throws -> (Location, fragment: String?) {
        let abs = resolveURI(ref, against: baseURI(loc))
        let (uri, frag) = splitFragment(abs)
        guard let root = try locateResource(uri) else {
            throw error(loc, "cannot resolve reference \"\(ref)\": no schema is known at \(uri) (nothing is fetched from the network; add it to the SchemaRegistry)")
        }
        guard let frag, !frag.isEmpty else { return (root, nil) }
        if frag.hasPrefix("/") || frag.hasPrefix("%2F") || frag.hasPrefix("%2f") {
            guard let p = try? JSONPointer(uriFragment: frag) else {
                throw error(loc, "invalid JSON Pointer fragment in reference \"\(ref)\"")
            }
            let target = Location(doc: root.doc, pointer: root.pointer + p.tokens)
            guard value(at: target) != nil else {
                throw error(loc, "cannot resolve reference \"\(ref)\": \(uri)#\(frag) does not exist")
            }
            return (target, nil)
        }
        let name = JSONPointer.percentDecode(frag) ?? frag
        guard let target = anchors[uri + "#" + name] else {
            throw error(loc, "cannot resolve reference \"\(ref)\": no $anchor or $dynamicAnchor \"\(name)\" in \(uri)")
        }
        return (target, name)
    }

    // MARK: nodes

    func resource(for base: String) -> Resource {
        if let r = resourceObjects[base] { return r }
        let r = Resource(uri: base)
        resourceObjects[base] = r
        resourceArena.append(r)
        return r
    }

    func populateDynamicAnchors(_ r: Resource) throws {
        guard let list = dynamicAnchorsByResource[r.uri], r.dynamicAnchors.isEmpty else { return }
        // Mark first so that recursion through the anchors' own subschemas does not re-enter.
        for (name, loc) in list where r.dynamicAnchors[name] == nil {
            r.dynamicAnchors[name] = NodeRef(try node(loc))
        }
    }

    /// The node for the subschema at `loc`, created on first use and compiled later by
    /// `compilePending`.
    func node(_ loc: Location) throws -> Node {
        if let n = nodes[loc] { return n }
        guard let value = value(at: loc) else { throw error(loc, "no schema at this location") }
        let n = Node(resource: resource(for: baseURI(loc)), absoluteLocation: absoluteLocation(loc))
        nodes[loc] = n
        arena.append(n)
        pending.append((loc, n, value))
        return n
    }

    /// Compiles every node created so far and every node they reach. A work list rather than
    /// recursion: a schema with a thousand-link `$ref` chain or deeply nested subschemas must
    /// not exhaust the stack.
    func compilePending() throws {
        while let (loc, n, value) = pending.popLast() {
            switch value {
            case .bool(let b): n.kind = b ? .alwaysTrue : .alwaysFalse
            case .object(let o): try compileObject(n, o, loc)
            default: throw error(loc, "a schema must be an object or a boolean, not \(value.typeName)")
            }
            if n.resource.dynamicAnchors.isEmpty, dynamicAnchorsByResource[n.resource.uri] != nil {
                try populateDynamicAnchors(n.resource)
            }
        }
    }

    func ref(_ loc: Location) throws -> NodeRef { NodeRef(try node(loc)) }

    /// A count limit (`minLength`, `maxItems`, `minContains`…). Integral values beyond `Int`
    /// (`1e300`, `2^63`) saturate to `Int.max`: no string, array or object can reach that
    /// size, so the answer is the same as with the exact value.
    func nonNegativeInt(_ v: JSONValue, _ loc: Location, _ kw: String) throws -> Int {
        if let i = v.intValue, i >= 0 { return i }
        if case .double(let d) = v, d >= 9223372036854775808.0, d.isFinite, d.rounded(.towardZero) == d {
            return Int.max
        }
        if case .bigInt(let b) = v, !b.isNegative { return Int.max }
        throw error(loc, "\"\(kw)\" must be a non-negative integer")
    }

    func stringArray(_ v: JSONValue, _ loc: Location, _ kw: String) throws -> [String] {
        guard case .array(let a) = v else { throw error(loc, "\"\(kw)\" must be an array of strings") }
        return try a.map { e in
            guard case .string(let s) = e else { throw error(loc, "\"\(kw)\" must be an array of strings") }
            return s
        }
    }

    func compileObject(_ n: Node, _ o: JSONObject, _ loc: Location) throws {
        let vocab = docVocab[loc.doc]
        var kws: [Keyword] = []
        var foldableRequired: [String]? = nil

        // Validation vocabulary (cheap checks first, for early exits and readable errors).
        if vocab.validation {
            if let t = o["type"] {
                var mask = TypeMask()
                switch t {
                case .string(let s):
                    guard let m = TypeMask(name: s) else { throw error(loc, "unknown type \"\(s)\"") }
                    mask = m
                case .array(let a):
                    for e in a {
                        guard case .string(let s) = e, let m = TypeMask(name: s) else { throw error(loc, "\"type\" must name JSON types") }
                        mask.insert(m)
                    }
                default: throw error(loc, "\"type\" must be a string or an array of strings")
                }
                kws.append(.type(mask))
            }
            if let c = o["const"] { kws.append(.const(c)) }
            if let e = o["enum"] {
                guard case .array(let a) = e else { throw error(loc, "\"enum\" must be an array") }
                kws.append(.enumeration(a))
            }
            for (kw, make) in [("minimum", Keyword.minimum), ("maximum", Keyword.maximum),
                               ("exclusiveMinimum", Keyword.exclusiveMinimum), ("exclusiveMaximum", Keyword.exclusiveMaximum)] {
                if let v = o[kw] {
                    if vocab.legacy, case .bool = v { continue }  // draft-04 boolean form, below
                    guard let lim = NumberLimit(v) else { throw error(loc, "\"\(kw)\" must be a number") }
                    var make = make
                    // Draft 04: `"exclusiveMaximum": true` turns `maximum` exclusive.
                    if vocab.legacy, kw == "minimum", o["exclusiveMinimum"] == .bool(true) { make = Keyword.exclusiveMinimum }
                    if vocab.legacy, kw == "maximum", o["exclusiveMaximum"] == .bool(true) { make = Keyword.exclusiveMaximum }
                    kws.append(make(lim))
                }
            }
            if let v = o["multipleOf"] {
                guard let d = v.doubleValue, d > 0, let div = DecimalDivisor(v) else {
                    throw error(loc, "\"multipleOf\" must be a number greater than 0")
                }
                _ = d
                kws.append(.multipleOf(div))
            }
            if let v = o["minLength"] { kws.append(.minLength(try nonNegativeInt(v, loc, "minLength"))) }
            if let v = o["maxLength"] { kws.append(.maxLength(try nonNegativeInt(v, loc, "maxLength"))) }
            if let v = o["pattern"] {
                guard case .string(let p) = v else { throw error(loc, "\"pattern\" must be a string") }
                kws.append(.pattern(try pattern(p, loc)))
            }
            if let v = o["minItems"] { kws.append(.minItems(try nonNegativeInt(v, loc, "minItems"))) }
            if let v = o["maxItems"] { kws.append(.maxItems(try nonNegativeInt(v, loc, "maxItems"))) }
            if o["uniqueItems"] == .bool(true) { kws.append(.uniqueItems) }
            if let v = o["minProperties"] { kws.append(.minProperties(try nonNegativeInt(v, loc, "minProperties"))) }
            if let v = o["maxProperties"] { kws.append(.maxProperties(try nonNegativeInt(v, loc, "maxProperties"))) }
            if let v = o["required"] {
                let names = try stringArray(v, loc, "required")
                if !names.isEmpty {
                    kws.append(.required(names))
                    // Unique names, in order, for folding into the properties pass.
                    var seen = Set<String>()
                    foldableRequired = names.filter { seen.insert($0).inserted }
                }
            }
            if let v = o["dependentRequired"] {
                guard case .object(let m) = v else { throw error(loc, "\"dependentRequired\" must be an object") }
                let deps = try m.sorted { $0.key < $1.key }.map { ($0.key.string, try stringArray($0.value, loc, "dependentRequired")) }
                kws.append(.dependentRequired(deps))
            }
            if vocab.legacy, case .object(let m)? = o["dependencies"] {
                var req: [(String, [String])] = []
                for (k, v) in m.sorted(by: { $0.key < $1.key }) {
                    if case .array = v { req.append((k.string, try stringArray(v, loc, "dependencies"))) }
                }
                if !req.isEmpty { kws.append(.dependentRequired(req)) }
            }
        }
        if let f = o["format"], case .string(let name) = f, let format = Format(name: name) {
            kws.append(.format(format, assert: vocab.formatAssertion))
        }

        // Core: references.
        if let v = o["$ref"] {
            guard case .string(let r) = v else { throw error(loc, "\"$ref\" must be a string") }
            let (target, _) = try resolve(r, from: loc)
            kws.append(.ref(try self.ref(target)))
        }
        if let v = o["$dynamicRef"] {
            guard case .string(let r) = v else { throw error(loc, "\"$dynamicRef\" must be a string") }
            let (target, name) = try resolve(r, from: loc)
            var dynamicName: String? = nil
            if let name, case .string(let declared)? = value(at: target)?["$dynamicAnchor"], declared == name {
                dynamicName = name
                usesDynamicRef = true
            }
            kws.append(.dynamicRef(DynamicRef(initial: try self.ref(target), anchor: dynamicName)))
        }

        // Applicator vocabulary.
        if vocab.applicator {
            let app = ObjectApplicator()
            var anyObject = false
            if let v = o["properties"] {
                guard case .object(let m) = v else { throw error(loc, "\"properties\" must be an object") }
                let names = m.keys.sorted().map(\.string)
                app.names = NameIndex(names)
                let nodes = try names.map { try ref(loc.appending("properties", $0)) }
                var requiredBits = [UInt64](repeating: 0, count: names.count)
                app.hasProperties = true
                anyObject = true
                // Fold `required` into this pass when every required name is a property.
                if let fold = foldableRequired, fold.count <= 64, fold.allSatisfy({ app.names.find($0) != nil }) {
                    for (k, name) in fold.enumerated() {
                        let idx = app.names.find(name)!
                        if requiredBits[idx] == 0 {
                            requiredBits[idx] = 1 << UInt64(k)
                            app.requiredAll |= 1 << UInt64(k)
                        }
                    }
                    app.requiredNames = fold
                    kws.removeAll { if case .required = $0 { return true } else { return false } }
                }
                app.setProperties(nodes: nodes, requiredBits: requiredBits)
            }
            if let v = o["patternProperties"] {
                guard case .object(let m) = v else { throw error(loc, "\"patternProperties\" must be an object") }
                for (p, _) in m.sorted(by: { $0.key < $1.key }) {
                    app.patterns.append((try pattern(p.string, loc), try ref(loc.appending("patternProperties", p.string))))
                }
                app.hasPatterns = true
                anyObject = true
            }
            if o["additionalProperties"] != nil {
                app.additional = try ref(loc.appending("additionalProperties"))
                anyObject = true
            }
            if anyObject { kws.append(.object(app)) }

            let items = ItemsApplicator()
            var anyItems = false
            if case .array(let a)? = o["prefixItems"] {
                items.prefix = try a.indices.map { try ref(loc.appending("prefixItems", String($0))) }
                anyItems = true
            }
            if let v = o["items"] {
                if case .array(let a) = v {
                    guard vocab.legacy else { throw error(loc, "\"items\" must be a schema (use \"prefixItems\" for tuples in draft 2020-12)") }
                    items.prefix = try a.indices.map { try ref(loc.appending("items", String($0))) }
                    if o["additionalItems"] != nil { items.items = try ref(loc.appending("additionalItems")) }
                } else {
                    items.items = try ref(loc.appending("items"))
                }
                anyItems = true
            }
            if anyItems { kws.append(.items(items)) }
            if o["contains"] != nil {
                var minC = 1
                var maxC: Int? = nil
                if vocab.validation {
                    if let v = o["minContains"] { minC = try nonNegativeInt(v, loc, "minContains") }
                    if let v = o["maxContains"] { maxC = try nonNegativeInt(v, loc, "maxContains") }
                }
                kws.append(.contains(try ref(loc.appending("contains")), min: minC, max: maxC))
            }
            if o["propertyNames"] != nil { kws.append(.propertyNames(try ref(loc.appending("propertyNames")))) }
            if case .object(let m)? = o["dependentSchemas"] {
                kws.append(.dependentSchemas(try m.keys.sorted().map { ($0.string, try ref(loc.appending("dependentSchemas", $0.string))) }))
            }
            if vocab.legacy, case .object(let m)? = o["dependencies"] {
                var deps: [(String, NodeRef)] = []
                for (k, v) in m.sorted(by: { $0.key < $1.key }) {
                    if case .array = v { continue }
                    deps.append((k.string, try ref(loc.appending("dependencies", k.string))))
                }
                if !deps.isEmpty { kws.append(.dependentSchemas(deps)) }
            }
            for kw in ["allOf", "anyOf", "oneOf"] {
                guard let v = o[kw] else { continue }
                guard case .array(let a) = v, !a.isEmpty else { throw error(loc, "\"\(kw)\" must be a non-empty array of schemas") }
                let refs = try a.indices.map { try ref(loc.appending(kw, String($0))) }
                switch kw {
                case "allOf": kws.append(.allOf(refs))
                case "anyOf": kws.append(.anyOf(refs))
                default: kws.append(.oneOf(refs))
                }
            }
            if o["not"] != nil { kws.append(.not(try ref(loc.appending("not")))) }
            if o["if"] != nil {
                let c = Conditional(ifNode: try ref(loc.appending("if")))
                if o["then"] != nil { c.thenNode = try ref(loc.appending("then")) }
                if o["else"] != nil { c.elseNode = try ref(loc.appending("else")) }
                kws.append(.conditional(c))  // even alone: `if` still yields annotations
            }
        }
        if vocab.unevaluated {
            if o["unevaluatedProperties"] != nil { n.unevaluatedProperties = try node(loc.appending("unevaluatedProperties")) }
            if o["unevaluatedItems"] != nil { n.unevaluatedItems = try node(loc.appending("unevaluatedItems")) }
        }
        n.setSteps(kws.map { Step($0, arena: &payloads) })
    }

    // MARK: alternative filters

    /// Gives every `anyOf` / `oneOf` its `AlternativeFilter`s, once all nodes are compiled
    /// (a filter reads the nodes an alternative's `$ref`s lead to).
    func addAlternativeFilters() {
        for node in arena where node.kind == .keywords {
            for step in node.steps where step.op == .anyOf || step.op == .oneOf {
                let box = step.payload(NodeListBox.self)
                box.setFilters(box.nodes.map { alternativeFilter($0.node) })
            }
        }
    }

    /// The necessary conditions of `alternative` that are cheap to check: its `type`s and one
    /// property with a leaf subschema, gathered from the node and the chain of nodes its
    /// `$ref`s lead to (every keyword along it must hold for the alternative to hold).
    func alternativeFilter(_ alternative: Node) -> AlternativeFilter {
        // "number" admits every integer: spelled out, so that intersecting masks is exact
        // ({number} ∩ {integer} is {integer}, not nothing).
        func widened(_ m: TypeMask) -> TypeMask { m.contains(.number) ? m.union(.integer) : m }
        var types = TypeMask(rawValue: 0x7F)
        var candidates: [(name: String, schema: Node, rank: Int)] = []
        var required = Set<JSONKey>()  // exact names, as `properties` matches them
        var seen = Set<ObjectIdentifier>()
        var next: Node? = alternative
        while let node = next, seen.count < 64, seen.insert(ObjectIdentifier(node)).inserted {
            next = nil
            if node.kind == .alwaysFalse { types = TypeMask(rawValue: 0) }
            guard node.kind == .keywords else { break }
            for step in node.steps {
                switch step.op {
                case .type: types = types.intersection(widened(TypeMask(rawValue: UInt8(truncatingIfNeeded: step.a))))
                case .required: required.formUnion(step.payload(NamesBox.self).names.map { JSONKey($0) })
                case .ref: if next == nil { next = step.nodePayload.node }
                case .object:
                    let app = step.payload(ObjectApplicator.self)
                    guard app.hasProperties else { break }
                    required.formUnion(app.requiredNames.map { JSONKey($0) })
                    for (name, index) in app.names.all {
                        let schema = app.propertyNodes[index].node
                        guard schema.isLeaf, !schema.steps.isEmpty else { continue }
                        // The most selective assertions first: a tag (`const`), a set, a pattern.
                        let rank = schema.steps.contains { $0.op == .const } ? 3
                            : schema.steps.contains { $0.op == .enumeration } ? 2
                            : schema.steps.contains { $0.op == .pattern } ? 1 : 0
                        candidates.append((name, schema, rank))
                    }
                default: break
                }
            }
        }
        // A required property rules out objects without it too: it goes first.
        let best = candidates.max { a, b in
            let ra = a.rank + (required.contains(JSONKey(a.name)) ? 4 : 0), rb = b.rank + (required.contains(JSONKey(b.name)) ? 4 : 0)
            return ra != rb ? ra < rb : a.name > b.name
        }
        return AlternativeFilter(types: types, property: best?.name, propertySchema: best.map { NodeRef($0.schema) },
                                 propertyRequired: best.map { required.contains(JSONKey($0.name)) } ?? false)
    }

    func pattern(_ source: String, _ loc: Location) throws -> Pattern {
        do {
            return try Pattern(source)
        } catch {
            throw self.error(loc, "invalid regular expression \"\(source)\": \(error)")
        }
    }
}

extension DecimalDivisor {
    /// Splits a positive number into decimal digits × 10^exponent using its shortest
    /// round-trip text, so `0.01` is exactly 1 × 10^-2; big integers keep every digit.
    init?(_ v: JSONValue) {
        switch v {
        case .int(let i):
            guard i > 0 else { return nil }
            self.init(value: Double(i), intValue: i, digits: UInt64(i), exponent: 0, bigDigits: nil)
        case .double(let d):
            guard d > 0, d.isFinite else { return nil }
            if let (dg, e) = decimalDigits(d) {
                self.init(value: d, intValue: nil, digits: dg, exponent: e, bigDigits: nil)
            } else if let b = JSONBigInt(JSONBigInt.exactIntegerText(d)) {
                self.init(big: b, value: d)
            } else {
                return nil
            }
        case .bigInt(let b):
            guard !b.isNegative else { return nil }
            self.init(big: b, value: b.doubleValue)
        default: return nil
        }
    }

    /// A positive big integer: trailing zeros go to the exponent; the rest stays digits.
    init(big b: JSONBigInt, value: Double) {
        let zeros = b.trailingDecimalZeros
        let significant = b.magnitude.dropLast(zeros)
        if let small = UInt64(significant) {
            self.init(value: value, intValue: nil, digits: small, exponent: zeros, bigDigits: nil)
        } else {
            self.init(value: value, intValue: nil, digits: 0, exponent: zeros,
                      bigDigits: significant.utf8.map { $0 - UInt8(ascii: "0") })
        }
    }
}

