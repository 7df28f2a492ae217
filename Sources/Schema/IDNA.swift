/// The `hostname` and `idn-hostname` formats.
///
/// `hostname` is RFC 1123 (letters, digits and hyphens, labels of at most 63 octets, at most
/// 253 in all); a label starting `xn--` must be a valid A-label. `idn-hostname` adds IDNA2008:
/// U-labels checked as RFC 5891 §5.4 asks (NFC, hyphen rules, no leading combining mark,
/// every code point PVALID or allowed by its RFC 5892 contextual rule) and, in a domain name
/// with right-to-left characters, the RFC 5893 Bidi rule. Lengths count A-labels. Unicode
/// properties come from the standard library; the Bidi classes, joining types and scripts
/// that the rules need and Swift does not expose are approximated by code point ranges.
enum IDNA {
    static func hostname(_ s: String, international: Bool) -> Bool {
        var labels: [[Unicode.Scalar]] = [[]]
        for c in s.unicodeScalars {
            if c == "." || (international && (c == "\u{3002}" || c == "\u{FF0E}" || c == "\u{FF61}")) {
                labels.append([])
            } else {
                labels[labels.count - 1].append(c)
            }
        }
        var total = labels.count - 1  // the dots
        var uLabels: [[Unicode.Scalar]] = []
        for label in labels {
            guard !label.isEmpty, let (length, u) = checkLabel(label, international: international) else { return false }
            total += length
            uLabels.append(u)
        }
        guard total <= 253 else { return false }
        // RFC 5893 §2: once any label is right-to-left, every label obeys the Bidi rule.
        if uLabels.contains(where: { $0.contains { [.r, .al, .an].contains(bidiClass($0)) } }) {
            return uLabels.allSatisfy(bidiRule)
        }
        return true
    }

    /// The label's length as an A-label and its Unicode form, or nil if it is not valid.
    static func checkLabel(_ label: [Unicode.Scalar], international: Bool) -> (Int, [Unicode.Scalar])? {
        if label.allSatisfy(\.isASCII) {
            guard label.count <= 63, label.allSatisfy(isLDH), label.first != "-", label.last != "-" else { return nil }
            guard label.count >= 4, label[2] == "-", label[3] == "-" else { return (label.count, label) }
            // "??--" is reserved; "xn--" is an A-label, valid only as the encoding of a valid U-label.
            guard label[0].value | 0x20 == 0x78, label[1].value | 0x20 == 0x6E,
                  let u = Punycode.decode(label.dropFirst(4).map { UInt8($0.value) | (isAlpha($0) ? 0x20 : 0) }),
                  !u.allSatisfy(\.isASCII), uLabel(u),
                  Punycode.encode(u.map(\.value)) == label.dropFirst(4).map({ UInt8($0.value) | (isAlpha($0) ? 0x20 : 0) })
            else { return nil }
            return (label.count, u)
        }
        // Every code point takes at least one character of the A-label.
        guard international, label.count <= 59, uLabel(label), let encoded = Punycode.encode(label.map(\.value)), encoded.count + 4 <= 63 else { return nil }
        return (encoded.count + 4, label)
    }

    static func isAlpha(_ c: Unicode.Scalar) -> Bool { c.isASCII && FormatCheck.isAlpha(UInt8(c.value)) }
    static func isLDH(_ c: Unicode.Scalar) -> Bool { isAlpha(c) || (c.isASCII && FormatCheck.isDigit(UInt8(c.value))) || c == "-" }

    /// RFC 5891 §5.4 (with §4.2.3): a valid U-label.
    static func uLabel(_ u: [Unicode.Scalar]) -> Bool {
        guard let first = u.first, u.first != "-", u.last != "-" else { return false }
        if u.count >= 4, u[2] == "-", u[3] == "-" { return false }
        switch first.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return false
        default: break
        }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: u)
        guard String(text)._nfcCodeUnits.elementsEqual(String(text).utf8) else { return false }
        for i in u.indices {
            switch property(u[i]) {
            case .pvalid: continue
            case .disallowed: return false
            case .contextJ, .contextO: if !contextRule(u, i) { return false }
            }
        }
        return true
    }

    enum Property { case pvalid, contextJ, contextO, disallowed }

    /// The RFC 5892 §3 derived property (UNASSIGNED counts as DISALLOWED).
    static func property(_ c: Unicode.Scalar) -> Property {
        let v = c.value
        switch v {  // F: Exceptions
        case 0xDF, 0x3C2, 0x6FD, 0x6FE, 0xF0B, 0x3007: return .pvalid
        case 0xB7, 0x375, 0x5F3, 0x5F4, 0x30FB, 0x660...0x669, 0x6F0...0x6F9: return .contextO
        case 0x640, 0x7FA, 0x302E, 0x302F, 0x3031...0x3035, 0x303B: return .disallowed
        case 0x200C, 0x200D: return .contextJ  // H: JoinControl
        case 0x61...0x7A, 0x30...0x39, 0x2D: return .pvalid  // J: LDH (lower case)
        case 0x20D0...0x20FF, 0x1D100...0x1D24F: return .disallowed  // D: IgnorableBlocks
        case 0x1100...0x11FF, 0xA960...0xA97F, 0xD7B0...0xD7FF: return .disallowed  // I: OldHangulJamo
        default: break
        }
        let p = c.properties
        if p.generalCategory == .unassigned { return .disallowed }
        if p.changesWhenNFKCCaseFolded { return .disallowed }  // B: Unstable
        if p.isDefaultIgnorableCodePoint || p.isWhitespace || p.isNoncharacterCodePoint { return .disallowed }  // C
        switch p.generalCategory {  // A: LetterDigits
        case .lowercaseLetter, .uppercaseLetter, .otherLetter, .decimalNumber, .modifierLetter, .nonspacingMark, .spacingMark:
            return .pvalid
        default:
            return .disallowed
        }
    }

    /// RFC 5892 appendix A: the rule for the CONTEXTJ or CONTEXTO code point at `i`.
    static func contextRule(_ u: [Unicode.Scalar], _ i: Int) -> Bool {
        let before: Unicode.Scalar? = i > 0 ? u[i - 1] : nil
        let after: Unicode.Scalar? = i + 1 < u.count ? u[i + 1] : nil
        switch u[i].value {
        case 0x200C:  // ZERO WIDTH NON-JOINER
            if before?.properties.canonicalCombiningClass == .virama { return true }
            var j = i - 1
            while j >= 0, joiningType(u[j]) == .t { j -= 1 }
            guard j >= 0, [.l, .d].contains(joiningType(u[j])) else { return false }
            var k = i + 1
            while k < u.count, joiningType(u[k]) == .t { k += 1 }
            return k < u.count && [.r, .d].contains(joiningType(u[k]))
        case 0x200D:  // ZERO WIDTH JOINER
            return before?.properties.canonicalCombiningClass == .virama
        case 0xB7:  // MIDDLE DOT, only in "l·l"
            return before == "l" && after == "l"
        case 0x375:  // GREEK LOWER NUMERAL SIGN (KERAIA), before Greek
            return after.map(isGreek) ?? false
        case 0x5F3, 0x5F4:  // HEBREW PUNCTUATION GERESH / GERSHAYIM, after Hebrew
            return before.map(isHebrew) ?? false
        case 0x30FB:  // KATAKANA MIDDLE DOT, with Hiragana, Katakana or Han in the label
            return u.contains { $0.value != 0x30FB && isHiraganaKatakanaHan($0) }
        case 0x660...0x669:  // ARABIC-INDIC DIGITS, not mixed with the extended ones
            return !u.contains { (0x6F0...0x6F9).contains($0.value) }
        case 0x6F0...0x6F9:
            return !u.contains { (0x660...0x669).contains($0.value) }
        default:
            return false
        }
    }

    static func isGreek(_ c: Unicode.Scalar) -> Bool {
        (0x370...0x3FF).contains(c.value) || (0x1F00...0x1FFF).contains(c.value)
    }

    static func isHebrew(_ c: Unicode.Scalar) -> Bool {
        (0x591...0x5F4).contains(c.value) || (0xFB1D...0xFB4F).contains(c.value)
    }

    static func isHiraganaKatakanaHan(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x3040...0x309F, 0x30A0...0x30FF, 0x31F0...0x31FF, 0xFF66...0xFF9D, 0x1B000...0x1B16F: return true  // kana
        case 0x2E80...0x2FDF, 0x3005, 0x3007, 0x3021...0x3029, 0x3038...0x303B, 0x3400...0x4DBF, 0x4E00...0x9FFF,
             0xF900...0xFAFF, 0x20000...0x3FFFF: return true  // Han
        default: return false
        }
    }

    enum JoiningType { case u, l, r, d, t }

    /// Unicode Joining_Type for the ZERO WIDTH NON-JOINER rule: marks and format characters
    /// are transparent; Arabic, Syriac, NKo and Mandaic letters dual-joining except the
    /// right-joining ones listed in ArabicShaping.txt.
    static func joiningType(_ c: Unicode.Scalar) -> JoiningType {
        switch c.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return .t
        default: break
        }
        switch c.value {
        case 0x622...0x625, 0x627, 0x629, 0x62F...0x632, 0x648, 0x671...0x673, 0x675...0x677, 0x688...0x699, 0x6C0,
             0x6C3...0x6CB, 0x6CD, 0x6CF, 0x6D2, 0x6D3, 0x6D5, 0x6EE, 0x6EF, 0x710, 0x715...0x719, 0x71E, 0x728, 0x72A,
             0x72C, 0x72F, 0x74D, 0x759...0x75B, 0x76B, 0x76C, 0x771, 0x773, 0x774, 0x778, 0x779, 0x840, 0x846, 0x847,
             0x849, 0x854, 0x856...0x858, 0x8AA...0x8AC, 0x8AE, 0x8B1, 0x8B2, 0x8B9:
            return .r
        case 0x620...0x64A, 0x66E...0x6D3, 0x6FA...0x6FC, 0x6FF, 0x712...0x72F, 0x74E...0x77F, 0x7CA...0x7EA,
             0x841...0x858, 0x8A0...0x8C8:
            return c.properties.isAlphabetic ? .d : .u
        default:
            return .u
        }
    }

    enum BidiClass { case l, r, al, en, an, es, nsm, bn }

    /// Unicode Bidi_Class of the code points a valid label can hold (letters, digits, marks,
    /// hyphen): right-to-left letters by script block, Arabic-Indic digits AN, other digits
    /// EN, marks NSM, the joiners BN, everything else L.
    static func bidiClass(_ c: Unicode.Scalar) -> BidiClass {
        let v = c.value
        switch v {
        case 0x2D: return .es
        case 0x30...0x39, 0x6F0...0x6F9: return .en
        case 0x660...0x669, 0x66B, 0x66C: return .an
        default: break
        }
        switch c.properties.generalCategory {
        case .nonspacingMark, .enclosingMark: return .nsm
        case .format: return .bn  // the joiners
        default: break
        }
        switch v {
        case 0x590...0x5FF, 0x7C0...0x85F, 0xFB1D...0xFB4F, 0x10800...0x10FFF, 0x1E800...0x1EDFF: return .r
        case 0x600...0x7BF, 0x860...0x8FF, 0xFB50...0xFDFF, 0xFE70...0xFEFF, 0x1EE00...0x1EEFF: return .al
        default: return .l
        }
    }

    /// RFC 5893 §2, the Bidi rule, for one label.
    static func bidiRule(_ u: [Unicode.Scalar]) -> Bool {
        let classes = u.map(bidiClass)
        guard let first = classes.first, let last = classes.last(where: { $0 != .nsm && $0 != .bn }) else { return false }
        switch first {
        case .r, .al:
            guard classes.allSatisfy({ $0 != .l }), [.r, .al, .en, .an].contains(last) else { return false }
            return !(classes.contains(.en) && classes.contains(.an))
        case .l:
            return classes.allSatisfy { [.l, .en, .es, .nsm, .bn].contains($0) } && (last == .l || last == .en)
        default:
            return false
        }
    }
}

/// RFC 3492 Punycode with the IDNA parameters.
enum Punycode {
    static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700, initialBias = 72, initialN = 128
    static let limit = 0x10FFFF * 64  // far beyond any label, far below Int overflow

    static func adapt(_ delta: Int, _ count: Int, _ first: Bool) -> Int {
        var d = first ? delta / damp : delta / 2
        d += d / count
        var k = 0
        while d > ((base - tMin) * tMax) / 2 {
            d /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * d / (d + skew)
    }

    static func threshold(_ k: Int, _ bias: Int) -> Int {
        k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
    }

    /// The code points `input` (lower-case ASCII after "xn--") encodes, or nil.
    static func decode(_ input: [UInt8]) -> [Unicode.Scalar]? {
        var output: [UInt32] = []
        var rest = input[...]
        if let dash = input.lastIndex(of: UInt8(ascii: "-")) {
            output = input[..<dash].map(UInt32.init)
            rest = input[(dash + 1)...]
        }
        var n = initialN, i = 0, bias = initialBias
        var pos = rest.startIndex
        while pos < rest.endIndex {
            let old = i
            var w = 1, k = base
            while true {
                guard pos < rest.endIndex, let digit = digitValue(rest[pos]) else { return nil }
                pos += 1
                i += digit * w
                let t = threshold(k, bias)
                if digit < t { break }
                w *= base - t
                k += base
                guard i < limit, w < limit else { return nil }
            }
            guard i < limit else { return nil }
            bias = adapt(i - old, output.count + 1, old == 0)
            n += i / (output.count + 1)
            i %= output.count + 1
            guard n <= 0x10FFFF, !(0xD800...0xDFFF).contains(n) else { return nil }
            output.insert(UInt32(n), at: i)
            i += 1
        }
        return output.compactMap(Unicode.Scalar.init)
    }

    /// The Punycode of `input` (without "xn--"), or nil if it would not fit a label.
    static func encode(_ input: [UInt32]) -> [UInt8]? {
        var output: [UInt8] = input.filter { $0 < 0x80 }.map { UInt8($0) }
        let basic = output.count
        var handled = basic
        if basic > 0 { output.append(UInt8(ascii: "-")) }
        var n = initialN, delta = 0, bias = initialBias
        while handled < input.count {
            let m = Int(input.filter { Int($0) >= n }.min()!)
            delta += (m - n) * (handled + 1)
            n = m
            for c in input {
                if Int(c) < n { delta += 1 }
                guard delta < limit else { return nil }
                if Int(c) == n {
                    var q = delta, k = base
                    while true {
                        let t = threshold(k, bias)
                        if q < t { break }
                        output.append(digitCharacter(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digitCharacter(q))
                    bias = adapt(delta, handled + 1, handled == basic)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
            guard output.count <= 63 else { return nil }
        }
        return output
    }

    static func digitValue(_ c: UInt8) -> Int? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(c) - 22
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return Int(c) - 97
        default: return nil
        }
    }

    static func digitCharacter(_ d: Int) -> UInt8 {
        UInt8(d < 26 ? 97 + d : 22 + d)
    }
}
