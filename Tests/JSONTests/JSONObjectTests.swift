import JSON
import Testing

/// `JSONObject`: members in one array, scanned while small and indexed once large; both ways
/// must answer as a dictionary would.
@Suite("JSON objects")
struct JSONObjectTests {
    /// Sizes on both sides of the index threshold (12 members).
    static let sizes = [0, 1, 5, 12, 13, 40, 300]

    static func names(_ n: Int) -> [String] { (0..<n).map { "k\($0)" } }

    @Test(arguments: sizes)
    func behavesLikeADictionary(_ n: Int) {
        var o = JSONObject()
        var d: [String: JSONValue] = [:]
        for (i, k) in Self.names(n).enumerated() {
            o[k] = .int(i)
            d[k] = .int(i)
        }
        #expect(o.count == n && o.isEmpty == (n == 0))
        for (k, v) in d { #expect(o[k] == v, "member \(k)") }
        #expect(o["absent"] == nil)
        // Replacing keeps the position; removing every other member keeps the rest findable.
        for (i, k) in Self.names(n).enumerated() where i % 3 == 0 {
            o[k] = .string("r\(i)")
            d[k] = .string("r\(i)")
        }
        #expect(o.count == n)
        for (i, k) in Self.names(n).enumerated() where i % 2 == 1 {
            #expect(o.removeValue(forKey: JSONKey(k)) == d.removeValue(forKey: k))
        }
        #expect(o.count == d.count)
        for (k, v) in d { #expect(o[k] == v, "member \(k) after removals") }
        for (i, k) in Self.names(n).enumerated() where i % 2 == 1 { #expect(o[k] == nil) }
        // Iteration yields every member once.
        #expect(Set(o.keys.map(\.string)) == Set(d.keys))
        #expect(JSONValue.object(o) == JSONValue.object(d))
    }

    @Test(arguments: [3, 12, 13, 50])
    func aRepeatedNameKeepsItsLastValue(_ n: Int) throws {
        let members = Self.names(n).enumerated().map { "\"\($1)\":\($0)" }
        let text = "{" + (members + ["\"k1\":\"last\"", "\"k0\":\"end\""]).joined(separator: ",") + "}"
        let value = try JSONValue.parse(text)
        guard case .object(let o) = value else { Issue.record("not an object"); return }
        #expect(o.count == n)
        #expect(o["k1"] == "last" && o["k0"] == "end")
        if n > 2 { #expect(o["k2"] == 2) }
        #expect(o.keys.count == Set(o.keys).count, "a name appears twice")
    }

    @Test func equalityAndHashIgnoreMemberOrder() throws {
        for n in [2, 12, 20] {
            let forward = try JSONValue.parse("{" + Self.names(n).enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",") + "}")
            let backward = try JSONValue.parse("{" + Self.names(n).enumerated().reversed().map { "\"\($1)\":\($0)" }.joined(separator: ",") + "}")
            #expect(forward == backward)
            #expect(forward.hashValue == backward.hashValue)
            #expect(forward.canonicalBytes() == backward.canonicalBytes())
            guard case .object(var changed) = backward else { return }
            changed["k0"] = 99
            #expect(JSONValue.object(changed) != forward)
        }
    }

    /// Names equal by Unicode scalars only: canonically equivalent names stay two members, in a
    /// small and in an indexed object.
    @Test func namesCompareByScalars() throws {
        for filler in [0, 20] {
            var o = JSONObject()
            for k in Self.names(filler) { o[k] = 0 }
            o["\u{E9}"] = 1
            o["e\u{301}"] = 2
            o["K"] = 3
            o["\u{212A}"] = 4
            #expect(o.count == filler + 4)
            #expect(o["\u{E9}"] == 1 && o["e\u{301}"] == 2 && o["K"] == 3 && o["\u{212A}"] == 4)
        }
    }

    @Test func dictionaryOperations() {
        var o: JSONObject = ["a": 1, "b": 2, "c": 3]
        #expect(o.mapValues { v in .int((v.intValue ?? 0) * 10) } == ["a": 10, "b": 20, "c": 30])
        #expect(o.removeValue(forKey: "b") == 2 && o == ["a": 1, "c": 3])
        o["d"] = 4
        o["a"] = 5
        #expect(o.keys.map(\.string) == ["a", "c", "d"], "insertion order is kept")
        #expect(JSONObject(["p": 1] as [String: JSONValue]) == ["p": 1])
        let lent = o.withMembers { members in members.map(\.key.string) }
        #expect(lent == o.names)
    }
}
