/// A URI reference split into its RFC 3986 components, with reference resolution (§5.2).
/// Only what `$id` / `$ref` handling needs; no percent-encoding normalization.
struct URIReference: Equatable {
    var scheme: String?
    var authority: String?
    var path: String
    var query: String?
    var fragment: String?

    /// Splits `text` with the RFC 3986 appendix B algorithm (never fails).
    init(_ text: String) {
        var rest = Substring(text)
        // fragment
        if let h = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: h)...])
            rest = rest[..<h]
        }
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        // scheme: first ':' before any '/'
        if let c = rest.firstIndex(of: ":"), !rest[..<c].contains("/"), c != rest.startIndex,
           URIReference.isScheme(rest[..<c]) {
            scheme = rest[..<c].lowercased()
            rest = rest[rest.index(after: c)...]
        }
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            authority = String(rest[..<end])
            rest = rest[end...]
        }
        path = String(rest)
    }

    init(scheme: String?, authority: String?, path: String, query: String?, fragment: String?) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.query = query
        self.fragment = fragment
    }

    static func isScheme(_ s: Substring) -> Bool {
        func alpha(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
        guard let f = s.utf8.first, alpha(f) else { return false }
        return s.utf8.allSatisfy { b in
            alpha(b) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
        }
    }

    var isAbsolute: Bool { scheme != nil }

    var string: String {
        var s = ""
        if let scheme { s += scheme + ":" }
        if let authority { s += "//" + authority }
        s += path
        if let query { s += "?" + query }
        if let fragment { s += "#" + fragment }
        return s
    }

    /// This reference without its fragment.
    var withoutFragment: URIReference {
        var c = self
        c.fragment = nil
        return c
    }

    /// Resolves `reference` against this base (RFC 3986 §5.2.2).
    func resolve(_ reference: URIReference) -> URIReference {
        let r = reference
        var t = URIReference(scheme: nil, authority: nil, path: "", query: nil, fragment: r.fragment)
        if let rs = r.scheme {
            t.scheme = rs
            t.authority = r.authority
            t.path = URIReference.removeDotSegments(r.path)
            t.query = r.query
        } else {
            if r.authority != nil {
                t.authority = r.authority
                t.path = URIReference.removeDotSegments(r.path)
                t.query = r.query
            } else {
                if r.path.isEmpty {
                    t.path = path
                    t.query = r.query ?? query
                } else {
                    if r.path.hasPrefix("/") {
                        t.path = URIReference.removeDotSegments(r.path)
                    } else {
                        t.path = URIReference.removeDotSegments(merge(r.path))
                    }
                    t.query = r.query
                }
                t.authority = authority
            }
            t.scheme = scheme
        }
        return t
    }

    private func merge(_ refPath: String) -> String {
        if authority != nil && path.isEmpty { return "/" + refPath }
        if let slash = path.lastIndex(of: "/") {
            return String(path[...slash]) + refPath
        }
        return refPath
    }

    static func removeDotSegments(_ input: String) -> String {
        guard input.contains(".") else { return input }
        var inp = Substring(input)
        var outStr = ""
        while !inp.isEmpty {
            if inp.hasPrefix("../") { inp = inp.dropFirst(3) }
            else if inp.hasPrefix("./") { inp = inp.dropFirst(2) }
            else if inp.hasPrefix("/./") { inp = inp.dropFirst(2) }
            else if inp == "/." { inp = "/" }
            else if inp.hasPrefix("/../") {
                inp = inp.dropFirst(3)
                if let i = outStr.lastIndex(of: "/") { outStr = String(outStr[..<i]) } else { outStr = "" }
            } else if inp == "/.." {
                inp = "/"
                if let i = outStr.lastIndex(of: "/") { outStr = String(outStr[..<i]) } else { outStr = "" }
            } else if inp == "." || inp == ".." {
                inp = ""
            } else {
                var end = inp.index(after: inp.startIndex)
                if inp.first != "/" { end = inp.startIndex }
                let next = inp[end...].firstIndex(of: "/") ?? inp.endIndex
                outStr += inp[..<next]
                inp = inp[next...]
            }
        }
        return outStr
    }
}

/// Resolves `reference` against `base` and returns the string form.
func resolveURI(_ reference: String, against base: String) -> String {
    URIReference(base).resolve(URIReference(reference)).string
}

/// Splits an absolute URI into (URI without fragment, fragment or nil).
func splitFragment(_ uri: String) -> (String, String?) {
    if let h = uri.firstIndex(of: "#") {
        return (String(uri[..<h]), String(uri[uri.index(after: h)...]))
    }
    return (uri, nil)
}
