import Foundation
import Testing
import JSON

@Suite("Parsing")
struct ParsingTests {
    @Test func scalars() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse(" false ") == .bool(false))
        #expect(try JSONValue.parse("0") == .int(0))
        #expect(try JSONValue.parse("-0") == .int(0))
        #expect(try JSONValue.parse("42") == .int(42))
        #expect(try JSONValue.parse("\"hi\"") == .string("hi"))
    }

    @Test func integersVersusDoubles() throws {
        guard case .int(let i) = try JSONValue.parse("9223372036854775807") else { Issue.record("not int"); return }
        #expect(i == Int.max)
        guard case .int(let m) = try JSONValue.parse("-9223372036854775808") else { Issue.record("not int"); return }
        #expect(m == Int.min)
        // Integers beyond Int stay exact (issue 10 item 20) and still equal the same double.
        guard case .bigInt(let d) = try JSONValue.parse("9223372036854775808") else { Issue.record("not bigInt"); return }
        #expect(JSONValue.bigInt(d) == .double(9223372036854775808.0))
        guard case .double(let e) = try JSONValue.parse("1.0") else { Issue.record("not double"); return }
        #expect(e == 1.0)
        guard case .double(let f) = try JSONValue.parse("1e2") else { Issue.record("not double"); return }
        #expect(f == 100)
        guard case .bigInt(let g) = try JSONValue.parse("123456789012345678901234567890") else { Issue.record("not bigInt"); return }
        #expect(g.doubleValue == 1.2345678901234568e29 && g.description == "123456789012345678901234567890")
        guard case .bigInt(let n) = try JSONValue.parse("-9223372036854775809") else { Issue.record("not bigInt"); return }
        #expect(JSONBigInt("-00009223372036854775809") == n && JSONBigInt("-0009223372036854775808") == nil)
        #expect(n.isNegative && n.magnitude == "9223372036854775809" && n.description == "-9223372036854775809")
        #expect(n.compare(g) < 0 && g.compare(n) > 0 && n.compare(Int.min) < 0)
    }

    /// Every array and object element is a `JSONValue`: a wider value makes every document
    /// bigger to walk (a big integer's separate sign `Bool` once made it 32 bytes a value).
    @Test func aValueIsTwentyFourBytes() {
        #expect(MemoryLayout<JSONValue>.stride == 24)
    }

    @Test func doublesAreCorrectlyRounded() throws {
        let cases = ["0.1", "3.141592653589793", "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308",
                     "0.30000000000000004", "123456.789e-3", "-0.0", "1E+2", "9007199254740993.0", "5e-1"]
        for c in cases {
            #expect(try JSONValue.parse(c).doubleValue == Double(c)!, "\(c)")
        }
    }

    @Test func stringsAndEscapes() throws {
        #expect(try JSONValue.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{C}\n\r\t"))
        #expect(try JSONValue.parse(#""\u00e9\u20AC""#) == .string("é€"))
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSONValue.parse("\"héllo 😀\"") == .string("héllo 😀"))
        // Lone surrogates become U+FFFD.
        #expect(try JSONValue.parse(#""\ud800""#) == .string("\u{FFFD}"))
        #expect(try JSONValue.parse(#""\udc00x""#) == .string("\u{FFFD}x"))
        #expect(try JSONValue.parse(#""\ud800\u0041""#) == .string("\u{FFFD}A"))
    }

    @Test func longStringsExerciseWordScan() throws {
        let long = String(repeating: "abcdefgh", count: 5)
        #expect(try JSONValue.parse("\"\(long)\"") == .string(long))
        #expect(try JSONValue.parse("\"\(long)é\(long)\"") == .string(long + "é" + long))
        #expect(try JSONValue.parse("\"\(long)\\n\(long)\"") == .string(long + "\n" + long))
        #expect(try JSONValue.parse("\"\(long)\\u00e9x\"") == .string(long + "éx"))
        #expect(throws: JSONParseError.self) { try JSONValue.parse("\"\(long)\u{01}\(long)\"") }
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array("\"\(long)".utf8) + [0xFF] + Array("\"".utf8)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("\"\(long)") }
        let e = try #require(parseError("\"\(long)\u{1F}\""))
        #expect(e.offset == 41)
    }

    @Test func containers() throws {
        let v = try JSONValue.parse(#"{"a": [1, 2.5, {"b": null}], "c": {}, "d": []}"#)
        #expect(v["a"]?[0] == 1)
        #expect(v["a"]?[1]?.doubleValue == 2.5)
        #expect(v["a"]?[2]?["b"]?.isNull == true)
        #expect(v["c"] == .object([:]))
        #expect(v["d"] == .array([]))
        #expect(v["zzz"] == nil)
        #expect(v["a"]?[9] == nil)
    }

    @Test func byteEntryPoints() throws {
        let bytes = Array(#"{"k":"v"}"#.utf8)
        #expect(try JSONValue.parse(bytes) == ["k": "v"])
        let v = try bytes.withUnsafeBytes { try JSONValue.parse($0) }
        #expect(v == ["k": "v"])
        // BOM is skipped.
        #expect(try JSONValue.parse([0xEF, 0xBB, 0xBF] + Array("1".utf8)) == 1)
    }

    func parseError(_ text: String) -> JSONParseError? {
        do { _ = try JSONValue.parse(text); return nil } catch { return error }
    }

    @Test func rejectsInvalidInput() {
        let bad = ["", " ", "[1,]", "{\"a\":1,}", "[1 2]", "01", "1.", ".5", "-", "1e", "+1", "NaN", "Infinity",
                   "-Infinity", "tru", "nulls", "\"abc", "\"\\x\"", "\"\\u12\"", "{a:1}", "{\"a\" 1}", "[1]]",
                   "\"a\u{01}b\"", "'a'", "[", "{", "// c\n1"]
        for b in bad {
            #expect(parseError(b) != nil, "should reject \(b.debugDescription)")
        }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }  // UTF-8 surrogate
    }

    @Test func errorPositions() throws {
        let e1 = try #require(parseError("[1, 2,]"))
        #expect(e1.offset == 6 && e1.line == 1 && e1.column == 7)
        #expect(e1.message.contains("trailing comma"))
        let e2 = try #require(parseError("{\n  \"a\": 1,\n  \"b\": tru\n}"))
        #expect(e2.line == 3 && e2.column == 8)
        #expect(e2.description.contains("line 3, column 8"))
        let e3 = try #require(parseError("\"é\" x"))
        #expect(e3.offset == 5 && e3.column == 5)
        let e4 = try #require(parseError("[1] 2"))
        #expect(e4.message.contains("after the end"))
    }

    @Test func depthLimit() throws {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(try JSONValue.parse(ok).arrayValue != nil)
        let deep = String(repeating: "[", count: 513) + String(repeating: "]", count: 513)
        let e = try #require(parseError(deep))
        #expect(e.message.contains("nesting too deep"))
        #expect(e.offset == 512)
    }

    @Test func duplicateKeysLastWins() throws {
        #expect(try JSONValue.parse(#"{"a":1,"a":2}"#) == ["a": 2])
    }
}

@Suite("Serialization")
struct SerializationTests {
    @Test func compactSorted() {
        let v: JSONValue = ["b": [1, 2.5, nil, true], "a": "x\"y\n", "c": [:]]
        #expect(v.serialized(sortedKeys: true) == #"{"a":"x\"y\n","b":[1,2.5,null,true],"c":{}}"#)
    }

    @Test func pretty() {
        let v: JSONValue = ["a": [1, ["b": false]], "e": []]
        let expected = """
        {
          "a": [
            1,
            {
              "b": false
            }
          ],
          "e": []
        }
        """
        #expect(v.serialized(pretty: true, sortedKeys: true) == expected)
    }

    @Test func roundTrips() throws {
        let texts = [#"{"a":[1,-2,3.25,1e-07,1.0,"\u0001\u001f",{"":null}],"b\u00e9":"€😀"}"#,
                     #"[0.1,1.7976931348623157e+308,5e-324,-0.0,123456789012345680000.0]"#]
        for t in texts {
            let v = try JSONValue.parse(t)
            let again = try JSONValue.parse(v.serialized())
            #expect(v == again)
            let pretty = try JSONValue.parse(v.serialized(pretty: true))
            #expect(v == pretty)
            // Types survive: doubles stay doubles.
            #expect(again.serialized(sortedKeys: true) == v.serialized(sortedKeys: true))
        }
        #expect(JSONValue.double(1).serialized() == "1.0")
        #expect(JSONValue.double(.nan).serialized() == "null")
        #expect(JSONValue.string("\u{7F}é").serializedBytes() == Array("\"\u{7F}é\"".utf8))
    }
}

@Suite("Member order of the canonical encoding")
struct CanonicalMemberOrderTests {
    /// The byte-wise comparison agrees with UTF-16 code-unit order on every pair, including
    /// the one place they differ (U+E000–U+FFFF against supplementary characters).
    @Test func utf16LessAgreesWithUTF16CodeUnitOrder() {
        let strings = ["", "a", "ab", "b", "A", "hash", "hash0", "é", "e\u{301}", "\u{7f}", "\u{80}", "\u{7FF}", "\u{800}",
                       "\u{D7FF}", "\u{E000}", "\u{E000}a", "\u{FFFD}", "\u{FFFF}", "😀", "😀a", "𝄞", "\u{10000}", "\u{10FFFF}",
                       "a\u{E000}", "a😀", "ß", "中文", "日本"]
        for a in strings {
            for b in strings {
                #expect(utf16Less(a, b) == a.utf16.lexicographicallyPrecedes(b.utf16), "\(a.debugDescription) < \(b.debugDescription)")
            }
        }
        // The canonical encoding orders members that way.
        let o: JSONValue = ["\u{E000}": 1, "😀": 2, "a": 3]
        #expect(String(decoding: o.canonicalBytes(), as: UTF8.self) == "{\"a\":3,\"😀\":2,\"\u{E000}\":1}")
    }

    /// The writer sorts members by their first 8 bytes first and falls back to the full names:
    /// names sharing 8 bytes, shorter than 8, with NUL bytes, and with bytes ≥ 0xEE inside
    /// the first 8 all come out in UTF-16 order.
    @Test func membersSortedByPrefixThenName() throws {
        let names = ["", "\u{0}", "a", "a\u{0}", "a\u{0}b", "a\u{0}\u{0}", "ab", "abcdefg", "abcdefgh", "abcdefgh\u{0}",
                     "abcdefghi", "abcdefgha", "abcdefgh\u{E000}", "abcdefgh😀", "abcdefg\u{E000}", "abcdefg😀", "abc\u{E000}x",
                     "abc😀x", "\u{E000}", "\u{E000}\u{E000}\u{E000}", "😀😀", "😀\u{E000}", "\u{FFFF}", "\u{10FFFF}",
                     "é", "e\u{301}", "zzzzzzzzzzzzzzzzzzzz", "zzzzzzzz", "zzzzzzz", "hash", "prev_hash", "run_id", "seq"]
        var members: JSONObject = [:]
        for (i, n) in names.enumerated() { members[JSONKey(n)] = .int(i) }
        // By position: `String ==` would take "é" and "e\u{301}" for one name.
        let expected = names.indices.sorted { names[$0].utf16.lexicographicallyPrecedes(names[$1].utf16) }
        let text = expected.map { "\(JSONValue.string(names[$0]).serialized()):\($0)" }.joined(separator: ",")
        #expect(String(decoding: JSONValue.object(members).canonicalBytes(), as: UTF8.self) == "{" + text + "}")
        // And the same through `writeCanonical(into:)`, appended after existing bytes.
        var out: [UInt8] = Array("x".utf8)
        JSONValue.object(members).writeCanonical(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "x{" + text + "}")
    }
}

@Suite("Canonical encoding")
struct CanonicalTests {
    /// Every character that needs an escape, at every position of strings long enough for the
    /// writer's 8-byte scan, next to non-ASCII bytes: the text is what escaping one character
    /// at a time gives.
    @Test func escapesFoundAtEveryPosition() throws {
        func reference(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{8}": out += "\\b"
                case "\u{C}": out += "\\f"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        for special in ["\u{0}", "\u{1}", "\u{1F}", "\"", "\\", "\n", "\t", "\u{8}", "\u{C}"] {
            for filler in ["a", "é", "\u{7F}", " ", "!", "#", "[", "]", "~"] {
                for length in [1, 7, 8, 9, 15, 16, 17, 24] {
                    for at in 0..<length {
                        var chars = Array(repeating: filler, count: length)
                        chars[at] = special
                        let s = chars.joined()
                        let text = String(decoding: JSONValue.string(s).canonicalBytes(), as: UTF8.self)
                        #expect(text == reference(s), "\(s.debugDescription)")
                        #expect(try JSONValue.parse(text) == .string(s))
                    }
                }
            }
        }
    }

    @Test func rfc8785Numbers() {
        let cases: [(String, String)] = [
            ("0", "0"), ("-0.0", "0"), ("1", "1"), ("-1", "-1"), ("1.5", "1.5"), ("100", "100"),
            ("1e21", "1e+21"), ("1e20", "100000000000000000000"),
            // Deliberate difference from RFC 8785 (issue 10 item 20): doubles from 2^63 to 10^21
            // are written with their exact digits, because ECMAScript's rounded digits
            // ("123456789012345680000") would parse back as a different, exact big integer.
            ("123456789012345680000", "123456789012345683968"),
            ("0.000001", "0.000001"), ("1e-7", "1e-7"), ("1.2345e-7", "1.2345e-7"), ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"), ("0.1", "0.1"), ("0.30000000000000004", "0.30000000000000004"),
            ("4.5", "4.5"), ("333333333.33333329", "333333333.3333333"), ("1e23", "1e+23"), ("9007199254740994", "9007199254740994"),
            ("-5e-7", "-5e-7"), ("295147905179352830000", "295147905179352825856"),
        ]
        for (text, s) in cases {
            let d = Double(text)!
            #expect(String(decoding: JSONValue.double(d).canonicalBytes(), as: UTF8.self) == s, "\(text)")
        }
    }

    /// The canonical number text, built on the stack, against the plain string-building
    /// version it replaced (kept here as the oracle) over random doubles of every magnitude.
    @Test func canonicalNumbersMatchTheReferenceLayout() {
        var rng = SystemRandomNumberGenerator()
        var samples: [Double] = [0.5, 1e-6, 1e-7, 9.999999e-7, 1e21, 9.99999999999999e20, 123.456, 1e-300, 2.5e-5, 1.0e15, 1e16, 1e17]
        for _ in 0..<20_000 {
            let d = Double(bitPattern: rng.next())
            if d.isFinite { samples.append(d) }
            samples.append(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)) / 1000)  // durations in ms
            samples.append(Double.random(in: 0..<1, using: &rng) * pow(10, Double(Int.random(in: -9...24, using: &rng))))
        }
        for d in samples where !(d.magnitude >= 9223372036854775808.0 && d.magnitude < 1e21) {
            let text = String(decoding: JSONValue.double(d).canonicalBytes(), as: UTF8.self)
            #expect(text == Self.referenceECMAScript(d), "\(d)")
        }
    }

    static func referenceECMAScript(_ d: Double) -> String {
        if d == 0 { return "0" }
        // Swift's description gives the shortest round-trip (and closest) digits, as ECMAScript
        // requires; only the layout differs.
        let text = d.magnitude.description
        var mantissa = Substring(text)
        var exp10 = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exp10 = Int(text[text.index(after: e)...]) ?? 0
        }
        var digits: [UInt8] = []
        var pointPos = 0
        var seenPoint = false
        for c in mantissa.utf8 {
            if c == UInt8(ascii: ".") { seenPoint = true; continue }
            digits.append(c)
            if !seenPoint { pointPos += 1 }
        }
        pointPos += exp10
        while let f = digits.first, f == UInt8(ascii: "0") { digits.removeFirst(); pointPos -= 1 }
        while let l = digits.last, l == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        let n = pointPos
        var out: [UInt8] = d < 0 ? [UInt8(ascii: "-")] : []
        if k <= n && n <= 21 {
            out += digits
            out += [UInt8](repeating: UInt8(ascii: "0"), count: n - k)
        } else if n > 0 && n <= 21 {
            out += digits[0..<n]
            out.append(UInt8(ascii: "."))
            out += digits[n...]
        } else if n > -6 && n <= 0 {
            out += [UInt8(ascii: "0"), UInt8(ascii: ".")]
            out += [UInt8](repeating: UInt8(ascii: "0"), count: -n)
            out += digits
        } else {
            let e = n - 1
            out.append(digits[0])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out += digits[1...]
            }
            out.append(UInt8(ascii: "e"))
            out.append(e < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            out += Array(String(e.magnitude).utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func keyOrderByUTF16() throws {
        // RFC 8785 §3.2.3 example keys: sorted by UTF-16 code units.
        let v: JSONValue = ["\u{20AC}": "Euro Sign", "\r": "Carriage Return", "\u{FB33}": "Hebrew Letter Dalet With Dagesh",
                            "1": "One", "\u{1F600}": "Emoji: Grinning Face", "\u{0080}": "Control", "\u{00F6}": "Latin Small Letter O With Diaeresis"]
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{0080}\":\"Control\",\"\u{00F6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20AC}\":\"Euro Sign\",\"\u{1F600}\":\"Emoji: Grinning Face\",\"\u{FB33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        #expect(v.canonicalString() == expected)
    }

    @Test func deterministicAndTypeInsensitive() throws {
        let a = try JSONValue.parse(#"{"z": 1.0, "a": [true, {"y": 2, "x": "\u000b"}], "m": 1e2}"#)
        let b = try JSONValue.parse(#"{"m":100,"a":[true,{"x":"\u000B","y":2.0}],"z":1}"#)
        #expect(a.canonicalBytes() == b.canonicalBytes())
        #expect(a.canonicalString() == #"{"a":[true,{"x":"\u000b","y":2}],"m":100,"z":1}"#)
    }
}

@Suite("Equality, accessors, literals, Codable")
struct ValueTests {
    @Test func numericEquality() {
        #expect(JSONValue.int(1) == JSONValue.double(1.0))
        #expect(JSONValue.double(-0.0) == JSONValue.int(0))
        #expect(JSONValue.int(1) != JSONValue.double(1.5))
        #expect(JSONValue.int(9007199254740993) != JSONValue.double(9007199254740992))
        #expect(JSONValue.bool(true) != JSONValue.int(1))
        var set: Set<JSONValue> = [.int(1), .double(2.5), ["a": 1]]
        #expect(set.contains(.double(1)))
        #expect(set.contains(["a": 1.0]))
        set.insert(.double(1.0))
        #expect(set.count == 3)
        #expect(JSONValue.array([1, 2]) != JSONValue.array([2, 1]))
        #expect(JSONValue.object(["a": 1, "b": 2]) == JSONValue.object(["b": 2.0, "a": 1]))
    }

    @Test func stringEqualityIsByScalars() {
        // Canonically equivalent but different code points are different JSON strings.
        #expect(JSONValue.string("\u{E9}") != JSONValue.string("e\u{301}"))
        #expect(JSONValue.string("abc") == JSONValue.string("abc"))
    }

    @Test func accessors() {
        let v: JSONValue = ["s": "x", "i": 3, "d": 2.0, "f": 2.5, "b": false, "a": [1], "n": nil, "o": ["k": 1]]
        #expect(v["s"]?.stringValue == "x")
        #expect(v["i"]?.intValue == 3)
        #expect(v["d"]?.intValue == 2)
        #expect(v["f"]?.intValue == nil)
        #expect(v["i"]?.doubleValue == 3.0)
        #expect(v["b"]?.boolValue == false)
        #expect(v["a"]?.arrayValue == [1])
        #expect(v["o"]?.objectValue?["k"] == 1)
        #expect(v["n"]?.isNull == true)
        #expect(v["s"]?.intValue == nil)
        #expect(v[0] == nil)
        #expect(v["i"]?.typeName == "integer")
    }

    struct Sample: Codable, Equatable {
        var name: String
        var count: Int
        var ratio: Double
        var tags: [String]
        var nested: [String: Bool]?
    }

    @Test func codable() throws {
        let s = Sample(name: "n", count: 3, ratio: 0.5, tags: ["a"], nested: ["x": true])
        let v = try JSONValue(encoding: s)
        #expect(v["name"] == "n")
        #expect(v["count"] == 3)
        #expect(v["nested"]?["x"] == true)
        #expect(try v.decode(Sample.self) == s)
        // JSONValue itself round-trips through Codable.
        let value: JSONValue = ["a": [1, 2.5, "x", nil, false, ["b": [:]]]]
        let again = try JSONValue(encoding: value)
        #expect(again == value)
        #expect(try value.decode(JSONValue.self) == value)
        #expect(throws: (any Error).self) { try JSONValue.string("x").decode(Int.self) }
    }
}

@Suite("JSON Pointer")
struct PointerTests {
    @Test func escaping() throws {
        #expect(JSONPointer.escape("a/b~c") == "a~1b~0c")
        #expect(JSONPointer.unescape("a~1b~0c") == "a/b~c")
        #expect(JSONPointer.unescape("~01") == "~1")
        #expect(JSONPointer.unescape("a~2") == nil)
        let p = try JSONPointer(parsing: "/a~1b/~0/0")
        #expect(p.tokens == ["a/b", "~", "0"])
        #expect(p.description == "/a~1b/~0/0")
        #expect(JSONPointer(tokens: ["", "x/y"]).description == "//x~1y")
        #expect(throws: JSONPointerError.self) { try JSONPointer(parsing: "a") }
        #expect(throws: JSONPointerError.self) { try JSONPointer(parsing: "/~") }
    }

    @Test func rfc6901Examples() throws {
        let doc = try JSONValue.parse(#"""
        {"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3, "g|h": 4, "i\\j": 5,
         "k\"l": 6, " ": 7, "m~n": 8}
        """#)
        let cases: [(String, JSONValue)] = [
            ("", doc), ("/foo", ["bar", "baz"]), ("/foo/0", "bar"), ("/", 0), ("/a~1b", 1), ("/c%d", 2),
            ("/e^f", 3), ("/g|h", 4), ("/i\\j", 5), ("/k\"l", 6), ("/ ", 7), ("/m~0n", 8),
        ]
        for (ptr, expected) in cases {
            #expect(JSONPointer.value(at: ptr, in: doc) == expected, "\(ptr)")
        }
        #expect(JSONPointer.value(at: "/foo/2", in: doc) == nil)
        #expect(JSONPointer.value(at: "/foo/01", in: doc) == nil)
        #expect(JSONPointer.value(at: "/foo/-", in: doc) == nil)
        #expect(JSONPointer.value(at: "/nope", in: doc) == nil)
        #expect(doc.value(at: "/foo/1") == "baz")
        // URI fragment form.
        let f = try JSONPointer(uriFragment: "#/c%25d")
        #expect(f.value(in: doc) == 2)
        #expect(try JSONPointer(uriFragment: "#/%20").value(in: doc) == 7)
    }
}

@Suite("Robustness")
struct RobustnessTests {
    /// A small deterministic generator (tests must be reproducible).
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func randomValue(_ rng: inout SplitMix, depth: Int = 0) -> JSONValue {
        let pick = depth > 3 ? Int.random(in: 0..<5, using: &rng) : Int.random(in: 0..<7, using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int.random(in: Int.min...Int.max, using: &rng) >> Int.random(in: 0..<63, using: &rng))
        case 3:
            let d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &rng))
            return .double(d.isFinite ? d : 0.5)
        case 4:
            let pool: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{01}", "\u{1F}", "é", "€", "😀", "\u{7F}", "~"]
            return .string(String((0..<Int.random(in: 0..<12, using: &rng)).map { _ in pool.randomElement(using: &rng)! }))
        case 5:
            return .array((0..<Int.random(in: 0..<5, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var o: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0..<5, using: &rng) {
                if case .string(let k) = randomValue(&rng, depth: 9) { o[k] = randomValue(&rng, depth: depth + 1) }
            }
            return .object(o)
        }
    }

    @Test func randomValuesRoundTrip() throws {
        var rng = SplitMix(state: 42)
        for _ in 0..<2000 {
            let v = RobustnessTests.randomValue(&rng)
            let compact = try JSONValue.parse(v.serialized())
            #expect(compact == v)
            #expect(try JSONValue.parse(v.serializedBytes(pretty: true, sortedKeys: true)) == v)
            let canonical = try JSONValue.parse(v.canonicalBytes())
            #expect(canonical == v)
            #expect(canonical.canonicalBytes() == v.canonicalBytes())
        }
    }

    @Test func mutatedInputNeverCrashes() {
        var rng = SplitMix(state: 7)
        let seed = Array(#"{"a":[1,-2.5e3,true,null,"x\u00e9\n"],"b":{"c":"😀","d":[{},[]]}}"#.utf8)
        var accepted = 0
        for _ in 0..<5000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: i)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: i)
                }
                if bytes.isEmpty { bytes = [0x30] }
            }
            do {
                let v = try JSONValue.parse(bytes)
                accepted += 1
                // Whatever parsed must serialize and parse back to the same value.
                #expect(try JSONValue.parse(v.serialized()) == v)
            } catch {
                #expect(error.offset >= 0 && error.offset <= bytes.count)
                #expect(error.line >= 1 && error.column >= 1)
            }
        }
        #expect(accepted > 0)
    }
}

@Suite("Object member names compare by Unicode scalars (issue 10 item 19)")
struct MemberNameScalarTests {
    @Test func parserKeepsCanonicallyEquivalentKeys() throws {
        let v = try JSONValue.parse("{\"\u{E9}\": 1, \"e\u{301}\": 2, \"K\": 3, \"\u{212A}\": 4}")
        guard case .object(let o) = v else { Issue.record("not an object"); return }
        #expect(o.count == 4)
        #expect(v["\u{E9}"] == .int(1))
        #expect(v["e\u{301}"] == .int(2))
        #expect(v["K"] == .int(3))
        #expect(v["\u{212A}"] == .int(4))
    }

    @Test func serializerRoundTripEmitsBothKeys() throws {
        let text = "{\"\u{E9}\":1,\"e\u{301}\":2}"
        let v = try JSONValue.parse(text)
        let out = v.serialized(sortedKeys: true)
        #expect(Array(out.utf8).count == Array(text.utf8).count)
        #expect(out.unicodeScalars.contains("\u{301}"))
        #expect(out.unicodeScalars.contains("\u{E9}"))
        #expect(try JSONValue.parse(out) == v)
    }

    @Test func objectsWithEquivalentKeysAreNotEqual() throws {
        #expect(try JSONValue.parse("{\"\u{E9}\":1}") != JSONValue.parse("{\"e\u{301}\":1}"))
        #expect(try JSONValue.parse("{\"K\":1}") != JSONValue.parse("{\"\u{212A}\":1}"))
    }
}

@Suite("Numbers beyond Int64 and Double (issue 10 item 20)")
struct BigNumberTests {
    @Test func hugeExponentParsesAsInfinity() throws {
        #expect(try JSONValue.parse("1e400") == .double(.infinity))
        #expect(try JSONValue.parse("-1e400") == .double(-.infinity))
        #expect(try JSONValue.parse("[1E+99999999999]") == [.double(.infinity)])
        #expect(try JSONValue.parse("1e-400") == .double(0))
    }

    @Test func bigIntegersRoundTripDigitForDigit() throws {
        for text in ["18446744073709551617", "-100000000000000000001", "123456789012345678901234567890", "9223372036854775808", "-9223372036854775809"] {
            let v = try JSONValue.parse(text)
            guard case .bigInt = v else { Issue.record("\(text) parsed as \(v)"); continue }
            #expect(v.serialized() == text && v.canonicalString() == text && v.typeName == "integer")
        }
        // The edges of Int stay Int.
        #expect(try JSONValue.parse("9223372036854775807") == .int(.max))
        #expect(try JSONValue.parse("-9223372036854775808") == .int(.min))
        #expect(try JSONValue.parse("100000000000000000001") != JSONValue.parse("100000000000000000000"))
        #expect(try JSONValue.parse("[18446744073709551616, 18446744073709551617]").arrayValue.map { Set($0).count } == 2)
    }

    /// A big integer equals the double with the same value (and hashes like it); every other
    /// double compares by value, exactly.
    @Test func bigIntegersCompareExactlyWithDoubles() throws {
        let big = try JSONValue.parse("100000000000000000000")
        #expect(big == .double(1e20) && big.hashValue == JSONValue.double(1e20).hashValue)
        #expect(try JSONValue.parse("100000000000000000001") != .double(1e20))
        let two64 = try JSONValue.parse("18446744073709551616")
        #expect(JSONValue.compareNumbers(two64, .double(18446744073709551616.0)) == 0)
        #expect(JSONValue.compareNumbers(try JSONValue.parse("18446744073709551617"), .double(18446744073709551616.0)) == 1)
        #expect(JSONValue.compareNumbers(try JSONValue.parse("-18446744073709551617"), .int(.min)) == -1)
        #expect(JSONValue.compareNumbers(two64, .double(.infinity)) == -1)
        #expect(JSONValue.compareNumbers(two64, .double(1.5)) == 1)
        #expect(JSONBigInt.exactIntegerText(1e300).count == 301)
        #expect(JSONBigInt.exactIntegerText(-18446744073709551616.0) == "-18446744073709551616")
    }
}

@Suite("Infinity round trip (issue 10 item 20)")
struct InfinityRoundTripTests {
    @Test func infinityIsWrittenSoThatItParsesBack() throws {
        let v = try JSONValue.parse("[1e400,-1e400]")
        #expect(v.serialized() == "[1e400,-1e400]")
        #expect(try JSONValue.parse(v.serialized(pretty: true)) == v)
    }
}

@Suite("Canonical object writer")
struct CanonicalObjectWriterTests {
    /// Writes `object` into `sink` member by member in the order given by `shuffle`, nested
    /// objects and arrays of objects through the sink's own object members.
    static func write<Sink: JSONObjectSink & ~Copyable>(_ object: JSONObject, into sink: inout Sink,
                                                        _ rng: inout RobustnessTests.SplitMix) {
        for (k, v) in object.shuffled(using: &rng) {
            switch v {
            case .object(let o) where Bool.random(using: &rng):
                var child = rng
                sink.member(k.string) { write(o, into: &$0, &child) }
                rng = child
            case .array(let a) where !a.isEmpty && a.allSatisfy({ $0.objectValue != nil }):
                var child = rng
                sink.member(k.string, objects: a.count) { s, i in
                    if case .object(let e) = a[i] { write(e, into: &s, &child) }
                }
                rng = child
            default:
                sink.member(k.string, v)
            }
        }
    }

    /// Random objects (unicode names among them, nested objects and arrays of objects) written
    /// in random member order: the same bytes as `canonicalBytes()`, and the same value through
    /// `JSONObjectBuilder`.
    @Test func agreesWithCanonicalBytes() {
        var rng = RobustnessTests.SplitMix(state: 11)
        var checked = 0
        for _ in 0..<3000 {
            var o: JSONObject = [:]
            for name in ["a", "b", "\u{E000}", "😀", "é", "steps", ""].shuffled(using: &rng).prefix(Int.random(in: 0...7, using: &rng)) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: o[JSONKey(name)] = .array((0..<Int.random(in: 1..<4, using: &rng)).map { _ in
                    .object(["id": .int(Int.random(in: 0..<9, using: &rng)), "\u{E000}x": RobustnessTests.randomValue(&rng, depth: 2), "😀": .null]) })
                case 1: o[JSONKey(name)] = .object(["z": RobustnessTests.randomValue(&rng, depth: 2), "y": ["b": 1, "a": 2]])
                default: o[JSONKey(name)] = RobustnessTests.randomValue(&rng, depth: 1)
                }
            }
            var w = CanonicalObjectWriter()
            var r1 = rng
            Self.write(o, into: &w, &r1)
            #expect(w.finishMembers().objectBytes == JSONValue.object(o).canonicalBytes())
            var b = JSONObjectBuilder()
            var r2 = rng
            Self.write(o, into: &b, &r2)
            #expect(b.value == .object(o))
            _ = rng.next()
            checked += 1
        }
        #expect(checked == 3000)
    }

    /// A name written twice keeps its last value, as in a dictionary (also inside objects).
    @Test func aNameWrittenTwiceKeepsTheLastValue() {
        var w = CanonicalObjectWriter()
        w.member("b", 1)
        w.member("a", 1)
        w.member("inner") { o in
            o.member("x", 1)
            o.member("x", 2)
        }
        w.member("b", 2)
        let members = w.finishMembers()
        #expect(String(decoding: members.objectBytes, as: UTF8.self) == #"{"a":1,"b":2,"inner":{"x":2}}"#)
        #expect(members.members.map(\.name) == ["a", "b", "inner"])
        #expect(members.encoding(of: "b").map { String(decoding: $0, as: UTF8.self) } == #""b":2"#)
        #expect(members.removing("b").members.map(\.name) == ["a", "inner"])
    }

    /// Merging two member lists interleaves them in canonical order and marks where a name
    /// would go.
    @Test func mergingMarksThePlaceOfAName() {
        let a = CanonicalMembers(["a": 1, "m": 2] as JSONObject)
        let b = CanonicalMembers(["k": 3, "z": 4] as JSONObject)
        let merged = CanonicalMembers.object(merging: a, b, mark: "l")
        #expect(String(decoding: merged.bytes, as: UTF8.self) == #"{"a":1,"k":3,"m":2,"z":4}"#)
        #expect(String(decoding: merged.bytes[..<merged.markAt], as: UTF8.self) == #"{"a":1,"k":3"#)
        #expect(CanonicalMembers.object(merging: .empty, .empty, mark: "x").markAt == 1)
    }
}
