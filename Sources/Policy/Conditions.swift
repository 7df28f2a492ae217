import Drivers
import JSON

/// Evaluates a rule's input conditions over the attributes the tool declares
/// (`PolicyInputs`), never over field names of particular drivers. Each returns nil when it
/// holds, or why it does not.
enum Conditions {
    static func check(_ c: CompiledConditions, _ r: GateRequest) -> String? {
        let inputs = r.policyInputs
        if let missing = c.requiredInputs.first(where: { !inputs.declares($0) }) {
            return "\(r.tool) declares no policy input '\(missing.rawValue)' (needed by \(c.source.names(needing: missing).joined(separator: ", ")))"
        }
        if let hosts = c.httpHosts {
            guard let url = inputs.value(.url, in: r.input)?.stringValue, let host = host(ofURL: url) else { return "\(inputs.fieldName(.url)) has no host" }
            guard hosts.contains(where: { $0.matches(host) }) else { return "host '\(host)' is not in http_hosts" }
        }
        if let programs = c.shellPrograms {
            guard let program = inputs.value(.program, in: r.input)?.stringValue else { return "\(inputs.fieldName(.program)) is missing" }
            guard programs.contains(program) else { return "program '\(program)' is not in shell_programs" }
        }
        if let argRules = c.source.shellArgs, let program = inputs.value(.program, in: r.input)?.stringValue, let patterns = argRules[program] {
            let args = inputs.value(.args, in: r.input)?.arrayValue ?? []
            for (i, a) in args.enumerated() {
                guard let s = a.stringValue else { return "args[\(i)] is not a string" }
                let ok = patterns.contains { $0.matches(s) }
                if !ok { return "args[\(i)] '\(s)' matches no pattern of shell_args[\(program)]" }
            }
        }
        if c.source.postgresReadOnly == true {
            if r.annotations?.readOnlyHint != true { return "\(r.tool) is not read-only (postgres_read_only)" }
            if inputs.value(.allowWrite, in: r.input)?.boolValue == true { return "\(inputs.fieldName(.allowWrite)) is true (postgres_read_only)" }
        }
        if c.source.readOnly == true, r.annotations?.readOnlyHint != true { return "\(r.tool) is not annotated read-only" }
        if let ops = c.graphqlOperations {
            let kinds = operationKinds(inputs.value(.graphqlDocument, in: r.input)?.stringValue ?? "")
            for k in kinds where !ops.contains(k) { return "GraphQL \(k) is not in graphql_operations" }
        }
        if let namespaces = c.namespaces {
            guard let ns = inputs.value(.namespace, in: r.input)?.stringValue else { return "\(inputs.fieldName(.namespace)) is missing" }
            guard namespaces.contains(where: { $0.matches(ns) }) else { return "namespace '\(ns)' is not in namespaces" }
        }
        if let globs = c.topics, let failed = matchGlobs(globs, .topic, "topics", r, inputs) { return failed }
        if let globs = c.agents, let failed = matchGlobs(globs, .agent, "agents", r, inputs) { return failed }
        if let globs = c.subscriptions, let failed = matchGlobs(globs, .subscription, "subscriptions", r, inputs) { return failed }
        return nil
    }

    /// Why the string attribute does not match one of `globs`, if it does not.
    private static func matchGlobs(_ globs: [ToolPattern], _ attribute: PolicyInputs.Attribute, _ condition: String, _ r: GateRequest,
                                   _ inputs: PolicyInputs) -> String? {
        guard let v = inputs.value(attribute, in: r.input)?.stringValue else { return "\(inputs.fieldName(attribute)) is missing" }
        guard globs.contains(where: { $0.matches(v) }) else { return "\(attribute.rawValue) '\(v)' is not in \(condition)" }
        return nil
    }

    /// The host of an absolute URL, lower-cased, without port, userinfo or IPv6 brackets.
    /// Byte-wise over the string's own UTF-8 (no copies): this runs on the policy hot path.
    static func host(ofURL url: String) -> String? {
        var url = url
        return url.withUTF8 { b -> String? in
            var i = 0
            while i + 2 < b.count && !(b[i] == 0x3A && b[i + 1] == 0x2F && b[i + 2] == 0x2F) { i += 1 }  // "://"
            guard i + 2 < b.count else { return nil }
            var start = i + 3
            var end = start
            while end < b.count && b[end] != 0x2F && b[end] != 0x3F && b[end] != 0x23 { end += 1 }  // / ? #
            if let at = b[start..<end].lastIndex(of: 0x40) { start = at + 1 }  // userinfo@
            var hostStart: Int, hostEnd: Int
            if start < end && b[start] == 0x5B {  // [IPv6]
                guard let close = b[start..<end].firstIndex(of: 0x5D) else { return nil }
                hostStart = start + 1; hostEnd = close
            } else {
                hostStart = start; hostEnd = b[start..<end].firstIndex(of: 0x3A) ?? end
            }
            if hostEnd > hostStart && b[hostEnd - 1] == 0x2E { hostEnd -= 1 }  // trailing dot
            guard hostEnd > hostStart else { return nil }
            let host = UnsafeBufferPointer(rebasing: b[hostStart..<hostEnd])
            guard host.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return String(decoding: host, as: UTF8.self) }
            return String(decoding: host.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 32 : $0 }, as: UTF8.self)
        }
    }

    /// The kinds of operations a GraphQL document defines (`query`, `mutation`, `subscription`),
    /// read lexically: keywords at brace depth 0, skipping strings and comments.
    static func operationKinds(_ doc: String) -> Set<String> {
        var kinds = Set<String>()
        var depth = 0
        var word = ""
        var inString = false, inComment = false
        func endWord() {
            if depth == 0, ["query", "mutation", "subscription"].contains(word) { kinds.insert(word) }
            word = ""
        }
        var prev: Character = " "
        for ch in doc {
            if inComment { if ch == "\n" { inComment = false }; continue }
            if inString { if ch == "\"" && prev != "\\" { inString = false }; prev = ch; continue }
            switch ch {
            case "#": endWord(); inComment = true
            case "\"": endWord(); inString = true
            case "{":
                endWord()
                if depth == 0 && kinds.isEmpty && word.isEmpty && prev != ")" { }
                depth += 1
            case "}": endWord(); depth -= 1
            default:
                if ch.isLetter || ch.isNumber || ch == "_" { word.append(ch) } else { endWord() }
            }
            prev = ch
        }
        endWord()
        // A document that starts with `{` is an anonymous query.
        if kinds.isEmpty && doc.contains("{") { kinds.insert("query") }
        return kinds
    }
}
