/// The `format` values this validator can check (assertion mode only; by default `format` is
/// an annotation). Checks follow the RFCs the 2020-12 specification cites.
enum Format: Int {
    case dateTime, date, time, duration
    case email, idnEmail, hostname, idnHostname
    case ipv4, ipv6
    case uri, uriReference, iri, iriReference, uriTemplate
    case uuid, jsonPointer, relativeJSONPointer, regex

    init?(name: String) {
        switch name {
        case "date-time": self = .dateTime
        case "date": self = .date
        case "time": self = .time
        case "duration": self = .duration
        case "email": self = .email
        case "idn-email": self = .idnEmail
        case "hostname": self = .hostname
        case "idn-hostname": self = .idnHostname
        case "ipv4": self = .ipv4
        case "ipv6": self = .ipv6
        case "uri": self = .uri
        case "uri-reference": self = .uriReference
        case "iri": self = .iri
        case "iri-reference": self = .iriReference
        case "uri-template": self = .uriTemplate
        case "uuid": self = .uuid
        case "json-pointer": self = .jsonPointer
        case "relative-json-pointer": self = .relativeJSONPointer
        case "regex": self = .regex
        default: return nil
        }
    }

    var name: String {
        switch self {
        case .dateTime: return "date-time"
        case .date: return "date"
        case .time: return "time"
        case .duration: return "duration"
        case .email: return "email"
        case .idnEmail: return "idn-email"
        case .hostname: return "hostname"
        case .idnHostname: return "idn-hostname"
        case .ipv4: return "ipv4"
        case .ipv6: return "ipv6"
        case .uri: return "uri"
        case .uriReference: return "uri-reference"
        case .iri: return "iri"
        case .iriReference: return "iri-reference"
        case .uriTemplate: return "uri-template"
        case .uuid: return "uuid"
        case .jsonPointer: return "json-pointer"
        case .relativeJSONPointer: return "relative-json-pointer"
        case .regex: return "regex"
        }
    }

    func check(_ s: String) -> Bool {
        let b = Array(s.utf8)
        switch self {
        case .dateTime: return FormatCheck.dateTime(b)
        case .date: return FormatCheck.fullDate(b[...])
        case .time: return FormatCheck.fullTime(b[...])
        case .duration: return FormatCheck.duration(b)
        case .email: return FormatCheck.email(s, international: false)
        case .idnEmail: return FormatCheck.email(s, international: true)
        case .hostname: return FormatCheck.hostname(s, international: false)
        case .idnHostname: return FormatCheck.hostname(s, international: true)
        case .ipv4: return FormatCheck.ipv4(b[...])
        case .ipv6: return FormatCheck.ipv6(s)
        case .uri: return FormatCheck.uri(s, requireScheme: true, international: false)
        case .uriReference: return FormatCheck.uri(s, requireScheme: false, international: false)
        case .iri: return FormatCheck.uri(s, requireScheme: true, international: true)
        case .iriReference: return FormatCheck.uri(s, requireScheme: false, international: true)
        case .uriTemplate: return FormatCheck.uriTemplate(s)
        case .uuid: return FormatCheck.uuid(b)
        case .jsonPointer: return (try? JSONPointerSyntax.check(s)) == true
        case .relativeJSONPointer: return FormatCheck.relativeJSONPointer(s)
        case .regex: return (try? Pattern(s)) != nil
        }
    }
}

enum JSONPointerSyntax {
    static func check(_ s: String) throws -> Bool {
        if s.isEmpty { return true }
        guard s.utf8.first == UInt8(ascii: "/") else { return false }
        var it = s.utf8.makeIterator()
        while let c = it.next() {
            if c == UInt8(ascii: "~") {
                guard let n = it.next(), n == UInt8(ascii: "0") || n == UInt8(ascii: "1") else { return false }
            }
        }
        return true
    }
}

enum FormatCheck {
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    static func isHex(_ c: UInt8) -> Bool { isDigit(c) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) }
    static func isAlpha(_ c: UInt8) -> Bool { c | 0x20 >= 0x61 && c | 0x20 <= 0x7A }

    static func number(_ b: ArraySlice<UInt8>, _ from: Int, _ count: Int) -> Int? {
        guard from + count <= b.endIndex else { return nil }
        var v = 0
        for i in from..<(from + count) {
            guard isDigit(b[i]) else { return nil }
            v = v * 10 + Int(b[i] - 0x30)
        }
        return v
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// RFC 3339 full-date: YYYY-MM-DD.
    static func fullDate(_ b: ArraySlice<UInt8>) -> Bool {
        let s = b.startIndex
        guard b.count == 10, b[s + 4] == UInt8(ascii: "-"), b[s + 7] == UInt8(ascii: "-"),
              let y = number(b, s, 4), let m = number(b, s + 5, 2), let d = number(b, s + 8, 2) else { return false }
        return m >= 1 && m <= 12 && d >= 1 && d <= daysIn(month: m, year: y)
    }

    /// RFC 3339 full-time: HH:MM:SS[.frac](Z|±HH:MM), with leap seconds only at 23:59:60 UTC.
    static func fullTime(_ b: ArraySlice<UInt8>) -> Bool {
        let s = b.startIndex
        guard b.count >= 9, b[s + 2] == UInt8(ascii: ":"), b[s + 5] == UInt8(ascii: ":"),
              let h = number(b, s, 2), let m = number(b, s + 3, 2), let sec = number(b, s + 6, 2) else { return false }
        var i = s + 8
        if i < b.endIndex, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.endIndex, isDigit(b[i]) { i += 1 }
            if i == start { return false }
        }
        guard i < b.endIndex else { return false }
        var offsetMinutes = 0
        if b[i] | 0x20 == UInt8(ascii: "z") {
            guard i + 1 == b.endIndex else { return false }
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard b.endIndex - i == 6, b[i + 3] == UInt8(ascii: ":"), let oh = number(b, i + 1, 2), let om = number(b, i + 4, 2),
                  oh <= 23, om <= 59 else { return false }
            offsetMinutes = (oh * 60 + om) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return false
        }
        guard h <= 23, m <= 59, sec <= 60 else { return false }
        if sec == 60 {
            // The leap second must fall on 23:59:60 in UTC.
            var utc = (h * 60 + m - offsetMinutes) % 1440
            if utc < 0 { utc += 1440 }
            return utc == 23 * 60 + 59
        }
        return true
    }

    static func dateTime(_ b: [UInt8]) -> Bool {
        guard b.count >= 20, b[10] | 0x20 == UInt8(ascii: "t") else { return false }
        return fullDate(b[0..<10]) && fullTime(b[11...])
    }

    /// RFC 3339 appendix A (ISO 8601) duration.
    static func duration(_ b: [UInt8]) -> Bool {
        guard b.first == UInt8(ascii: "P"), b.count > 1 else { return false }
        var i = 1
        func component() -> (Int, UInt8)? {
            let start = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            guard i > start, i < b.count else { return nil }
            let unit = b[i]
            i += 1
            return (i - start, unit)
        }
        var dateUnits: [UInt8] = []
        while i < b.count, b[i] != UInt8(ascii: "T") {
            guard let (_, u) = component() else { return false }
            dateUnits.append(u)
        }
        if dateUnits == [UInt8(ascii: "W")] { return i == b.count }
        let dateOrder: [UInt8] = [UInt8(ascii: "Y"), UInt8(ascii: "M"), UInt8(ascii: "D")]
        guard isOrderedSubsequence(dateUnits, of: dateOrder) else { return false }
        if i < b.count {
            i += 1  // T
            var timeUnits: [UInt8] = []
            while i < b.count {
                guard let (_, u) = component() else { return false }
                timeUnits.append(u)
            }
            guard !timeUnits.isEmpty,
                  isOrderedSubsequence(timeUnits, of: [UInt8(ascii: "H"), UInt8(ascii: "M"), UInt8(ascii: "S")]) else { return false }
            return true
        }
        return !dateUnits.isEmpty
    }

    static func isOrderedSubsequence(_ units: [UInt8], of order: [UInt8]) -> Bool {
        var k = 0
        for u in units {
            guard let idx = order[k...].firstIndex(of: u) else { return false }
            k = idx + 1
        }
        return true
    }

    static func ipv4(_ b: ArraySlice<UInt8>) -> Bool {
        let parts = b.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(isDigit) else { return false }
            if p.count > 1 && p.first == UInt8(ascii: "0") { return false }
            guard let v = Int(String(decoding: p, as: UTF8.self)), v <= 255 else { return false }
        }
        return true
    }

    static func ipv6(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.allSatisfy({ isHex($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) else { return false }
        var groups = 0
        var sawDoubleColon = false
        var parts = b.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        // "::" handling: leading or trailing "::" produce two empty parts.
        if b.starts(with: [0x3A, 0x3A]) { parts.removeFirst() }
        if b.count >= 2 && b[b.count - 1] == 0x3A && b[b.count - 2] == 0x3A { parts.removeLast() }
        for (idx, p) in parts.enumerated() {
            if p.isEmpty {
                if sawDoubleColon { return false }
                if idx == 0 && !b.starts(with: [0x3A, 0x3A]) { return false }
                if idx == parts.count - 1 && !(b.count >= 2 && b[b.count - 1] == 0x3A && b[b.count - 2] == 0x3A) { return false }
                sawDoubleColon = true
                continue
            }
            if p.contains(UInt8(ascii: ".")) {
                guard idx == parts.count - 1, ipv4(p) else { return false }
                groups += 2
                continue
            }
            guard p.count <= 4, p.allSatisfy(isHex) else { return false }
            groups += 1
        }
        return sawDoubleColon ? groups < 8 : groups == 8
    }

    static func hostname(_ s: String, international: Bool) -> Bool {
        IDNA.hostname(s, international: international)
    }

    static func email(_ s: String, international: Bool) -> Bool {
        guard let at = s.lastIndex(of: "@") else { return false }
        let local = s[..<at]
        let domain = String(s[s.index(after: at)...])
        guard !local.isEmpty, local.utf8.count <= 64, !domain.isEmpty else { return false }
        if local.hasPrefix("\"") {
            guard local.count >= 2, local.hasSuffix("\"") else { return false }
        } else {
            guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else { return false }
            let allowed = Set("!#$%&'*+-/=?^_`{|}~.".utf8)
            for c in local.unicodeScalars {
                if c.isASCII {
                    let v = UInt8(c.value)
                    guard isAlpha(v) || isDigit(v) || allowed.contains(v) else { return false }
                } else if !international { return false }
            }
        }
        if domain.hasPrefix("[") && domain.hasSuffix("]") {
            let inner = domain.dropFirst().dropLast()
            if inner.lowercased().hasPrefix("ipv6:") { return ipv6(String(inner.dropFirst(5))) }
            return ipv4(Array(inner.utf8)[...])
        }
        return hostname(domain, international: international)
    }

    /// RFC 3986 URI (`requireScheme`) or URI-reference; with `international`, RFC 3987 IRI or
    /// IRI-reference.
    static func uri(_ s: String, requireScheme: Bool, international: Bool) -> Bool {
        URIGrammar(Array(s.unicodeScalars), international: international).check(requireScheme: requireScheme)
    }

    static func uriTemplate(_ s: String) -> Bool {
        var depth = 0
        for c in s {
            if c == "{" { depth += 1; if depth > 1 { return false } }
            if c == "}" { depth -= 1; if depth < 0 { return false } }
        }
        return depth == 0
    }

    static func uuid(_ b: [UInt8]) -> Bool {
        guard b.count == 36 else { return false }
        for (i, c) in b.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !isHex(c) {
                return false
            }
        }
        return true
    }

    static func relativeJSONPointer(_ s: String) -> Bool {
        let b = Array(s.utf8)
        var i = 0
        while i < b.count, isDigit(b[i]) { i += 1 }
        guard i > 0 else { return false }
        if i > 1 && b[0] == UInt8(ascii: "0") { return false }
        let rest = String(decoding: b[i...], as: UTF8.self)
        if rest == "#" { return true }
        return (try? JSONPointerSyntax.check(rest)) == true
    }
}

/// The RFC 3986 grammar of URIs and URI references (RFC 3987 for IRIs: `ucschar` allowed
/// wherever unreserved characters are, `iprivate` in the query), checked character by
/// character. Reference resolution is `URIReference`'s job; this only says yes or no.
struct URIGrammar {
    let c: [Unicode.Scalar]
    let international: Bool

    init(_ c: [Unicode.Scalar], international: Bool) {
        self.c = c
        self.international = international
    }

    func check(requireScheme: Bool) -> Bool {
        // Fragment after the first "#", query after the first "?" before it.
        let hash = c.firstIndex(of: "#") ?? c.count
        let question = c[..<hash].firstIndex(of: "?") ?? hash
        guard all(min(question + 1, hash)..<hash, query: true), all(min(hash + 1, c.count)..<c.count, query: false) else { return false }
        var start = 0
        if let colon = c[..<question].firstIndex(of: ":"), colon > 0, isScheme(0..<colon) {
            start = colon + 1
        } else if requireScheme {
            return false
        }
        let part = start..<question
        if part.count >= 2, c[start] == "/", c[start + 1] == "/" {
            let end = c[(start + 2)..<question].firstIndex(of: "/") ?? question
            return authority(start + 2..<end) && path(end..<question)
        }
        if start == 0, let colon = c[part].firstIndex(of: ":"), !c[..<colon].contains("/") {
            return false  // path-noscheme: no ":" in the first segment of a relative reference
        }
        return path(part)
    }

    /// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    func isScheme(_ r: Range<Int>) -> Bool {
        guard let f = c[r].first, f.isASCII, FormatCheck.isAlpha(UInt8(f.value)) else { return false }
        return c[r].allSatisfy { x in
            x.isASCII && (FormatCheck.isAlpha(UInt8(x.value)) || FormatCheck.isDigit(UInt8(x.value)) || x == "+" || x == "-" || x == ".")
        }
    }

    /// authority = [ userinfo "@" ] host [ ":" port ]
    func authority(_ r: Range<Int>) -> Bool {
        var hostStart = r.lowerBound
        if let at = c[r].firstIndex(of: "@") {
            guard units(r.lowerBound..<at, extra: ":") else { return false }  // no second "@"
            hostStart = at + 1
        }
        var portStart: Int? = nil
        if hostStart < r.upperBound, c[hostStart] == "[" {
            guard let close = c[hostStart..<r.upperBound].firstIndex(of: "]"), ipLiteral(hostStart + 1..<close) else { return false }
            if close + 1 < r.upperBound {
                guard c[close + 1] == ":" else { return false }
                portStart = close + 2
            }
        } else {
            let colon = c[hostStart..<r.upperBound].firstIndex(of: ":")
            guard units(hostStart..<(colon ?? r.upperBound), extra: "") else { return false }  // reg-name
            portStart = colon.map { $0 + 1 }
        }
        if let p = portStart {
            return c[p..<r.upperBound].allSatisfy { $0.isASCII && FormatCheck.isDigit(UInt8($0.value)) }
        }
        return true
    }

    /// IPv6address / IPvFuture (IRIs allow nothing more here).
    func ipLiteral(_ r: Range<Int>) -> Bool {
        guard let f = c[r].first else { return false }
        if f == "v" || f == "V" {
            guard let dot = c[r].firstIndex(of: "."), dot > r.lowerBound + 1, dot + 1 < r.upperBound else { return false }
            let version = c[(r.lowerBound + 1)..<dot].allSatisfy { $0.isASCII && FormatCheck.isHex(UInt8($0.value)) }
            return version && c[(dot + 1)..<r.upperBound].allSatisfy { x in
                x.isASCII && (unreserved(x) || subDelim(x) || x == ":")
            }
        }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: c[r])
        return FormatCheck.ipv6(String(s))
    }

    /// path segments of pchar separated by "/".
    func path(_ r: Range<Int>) -> Bool {
        var i = r.lowerBound
        while i < r.upperBound {
            if c[i] == "/" { i += 1; continue }
            guard let n = unit(at: i, extra: ":@", query: false) else { return false }
            i = n
        }
        return true
    }

    /// query or fragment: *( pchar / "/" / "?" ).
    func all(_ r: Range<Int>, query: Bool) -> Bool {
        var i = r.lowerBound
        while i < r.upperBound {
            guard let n = unit(at: i, extra: ":@/?", query: query) else { return false }
            i = n
        }
        return true
    }

    /// unreserved / pct-encoded / sub-delims / `extra` throughout `r`.
    func units(_ r: Range<Int>, extra: String) -> Bool {
        var i = r.lowerBound
        while i < r.upperBound {
            guard let n = unit(at: i, extra: extra, query: false) else { return false }
            i = n
        }
        return true
    }

    /// The index after one allowed unit at `i` (a character or a percent-encoded octet).
    func unit(at i: Int, extra: String, query: Bool) -> Int? {
        let x = c[i]
        if x == "%" {
            guard i + 2 < c.count, c[i + 1].isASCII, c[i + 2].isASCII,
                  FormatCheck.isHex(UInt8(c[i + 1].value)), FormatCheck.isHex(UInt8(c[i + 2].value)) else { return nil }
            return i + 3
        }
        if x.isASCII {
            return unreserved(x) || subDelim(x) || extra.unicodeScalars.contains(x) ? i + 1 : nil
        }
        guard international else { return nil }
        return URIGrammar.isUCSChar(x.value) || (query && URIGrammar.isPrivate(x.value)) ? i + 1 : nil
    }

    func unreserved(_ x: Unicode.Scalar) -> Bool {
        let b = UInt8(x.value)
        return FormatCheck.isAlpha(b) || FormatCheck.isDigit(b) || x == "-" || x == "." || x == "_" || x == "~"
    }

    func subDelim(_ x: Unicode.Scalar) -> Bool {
        "!$&'()*+,;=".unicodeScalars.contains(x)
    }

    /// RFC 3987 ucschar.
    static func isUCSChar(_ v: UInt32) -> Bool {
        switch v {
        case 0xA0...0xD7FF, 0xF900...0xFDCF, 0xFDF0...0xFFEF: return true
        case 0x10000...0xDFFFD: return v & 0xFFFF <= 0xFFFD
        case 0xE1000...0xEFFFD: return true
        default: return false
        }
    }

    /// RFC 3987 iprivate.
    static func isPrivate(_ v: UInt32) -> Bool {
        switch v {
        case 0xE000...0xF8FF, 0xF0000...0xFFFFD, 0x100000...0x10FFFD: return true
        default: return false
        }
    }
}
