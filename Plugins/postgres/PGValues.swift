import Foundation
import JSON
import PostgresNIO

/// A query parameter sent the way libpq's PQexecParams (and node-postgres) send untyped
/// parameters: text format with type OID 0, so the server infers each parameter's type from
/// the statement (`WHERE id = $1` makes $1 an integer, `$1::jsonb` a jsonb…).
///
/// JSON → text: strings as they are, numbers in their JSON spelling, booleans as `true`/`false`,
/// arrays as PostgreSQL array literals (`{"a","b"}`, nested arrays nest), objects as JSON text,
/// null as SQL NULL.
struct UntypedParameter: PostgresDynamicTypeEncodable {
    let text: String
    var psqlType: PostgresDataType { .null }  // OID 0: "unspecified", inferred by the server
    var psqlFormat: PostgresFormat { .text }
    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeString(text)
    }

    /// The bindings for `params` (never string-concatenated into the SQL).
    static func bindings(_ params: [JSONValue]) -> PostgresBindings {
        var b = PostgresBindings(capacity: params.count)
        for p in params {
            if p.isNull { b.appendNull() } else { b.append(UntypedParameter(text: text(p, inArray: false))) }
        }
        return b
    }

    static func text(_ v: JSONValue, inArray: Bool) -> String {
        switch v {
        case .null: return "NULL"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double, .bigInt: return v.serialized()
        case .string(let s): return inArray ? quote(s) : s
        case .object: return inArray ? quote(v.serialized()) : v.serialized()
        case .array(let items): return "{" + items.map { text($0, inArray: true) }.joined(separator: ",") + "}"
        }
    }

    /// An element of an array literal: double-quoted, `"` and `\` escaped.
    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            if ch == "\"" || ch == "\\" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(ch)
        }
        return out + "\""
    }
}

/// Turns result cells (binary format, as PostgresNIO requests them) into JSON.
///
/// bool → boolean; int2/int4/int8/oid → integer; float4/float8 → number (NaN and ±Infinity
/// as strings); numeric → string (exact); text types, enums, xml → string; json/jsonb → the
/// JSON value; uuid → string; date/time/timestamp/timestamptz → ISO 8601 strings (timestamptz
/// in UTC with `Z`); interval → ISO 8601 duration; bytea → base64 string; inet/cidr → string;
/// arrays → JSON arrays (nested for several dimensions); records → arrays; anything else → its
/// bytes as text when they are UTF-8, otherwise base64.
enum PGDecode {
    static let typeNames: [UInt32: String] = [
        16: "bool", 17: "bytea", 18: "char", 19: "name", 20: "int8", 21: "int2", 23: "int4", 24: "regproc", 25: "text",
        26: "oid", 114: "json", 142: "xml", 600: "point", 650: "cidr", 700: "float4", 701: "float8", 705: "unknown",
        790: "money", 829: "macaddr", 869: "inet", 1042: "bpchar", 1043: "varchar", 1082: "date", 1083: "time",
        1114: "timestamp", 1184: "timestamptz", 1186: "interval", 1266: "timetz", 1560: "bit", 1562: "varbit",
        1700: "numeric", 2249: "record", 2278: "void", 2950: "uuid", 3802: "jsonb", 3614: "tsvector",
        1000: "bool[]", 1001: "bytea[]", 1002: "char[]", 1003: "name[]", 1005: "int2[]", 1007: "int4[]", 1009: "text[]",
        1014: "bpchar[]", 1015: "varchar[]", 1016: "int8[]", 1021: "float4[]", 1022: "float8[]", 1028: "oid[]",
        1115: "timestamp[]", 1182: "date[]", 1183: "time[]", 1185: "timestamptz[]", 1187: "interval[]", 1231: "numeric[]",
        199: "json[]", 2951: "uuid[]", 3807: "jsonb[]", 1041: "inet[]", 651: "cidr[]",
    ]

    static func typeName(_ oid: UInt32) -> String { typeNames[oid] ?? "oid:\(oid)" }

    /// One cell as JSON.
    static func value(_ cell: PostgresCell) -> JSONValue {
        guard var bytes = cell.bytes else { return .null }
        if cell.format == .text { return .string(bytes.readString(length: bytes.readableBytes) ?? "") }
        return decode(oid: cell.dataType.rawValue, &bytes)
    }

    static func decode(oid: UInt32, _ buf: inout ByteBuffer) -> JSONValue {
        let fallback = buf
        func raw() -> JSONValue {
            var b = fallback
            let data = b.readBytes(length: b.readableBytes) ?? []
            if !data.contains(0), let s = String(bytes: data, encoding: .utf8) { return .string(s) }
            return .string(Data(data).base64EncodedString())
        }
        switch oid {
        case 16: return buf.readInteger(as: UInt8.self).map { .bool($0 != 0) } ?? raw()
        case 21: return buf.readInteger(as: Int16.self).map { .int(Int($0)) } ?? raw()
        case 23: return buf.readInteger(as: Int32.self).map { .int(Int($0)) } ?? raw()
        case 20: return buf.readInteger(as: Int64.self).map { .int(Int($0)) } ?? raw()
        case 26: return buf.readInteger(as: UInt32.self).map { .int(Int($0)) } ?? raw()
        case 700: return buf.readInteger(as: UInt32.self).map { float(Double(Float(bitPattern: $0))) } ?? raw()
        case 701: return buf.readInteger(as: UInt64.self).map { float(Double(bitPattern: $0)) } ?? raw()
        case 1700: return numeric(&buf).map { .string($0) } ?? raw()
        case 25, 1043, 1042, 19, 18, 142, 705:
            return .string(buf.readString(length: buf.readableBytes) ?? "")
        case 114:
            let text = buf.readString(length: buf.readableBytes) ?? ""
            return (try? JSONValue.parse(text)) ?? .string(text)
        case 3802:
            guard buf.readInteger(as: UInt8.self) == 1 else { return raw() }
            let text = buf.readString(length: buf.readableBytes) ?? ""
            return (try? JSONValue.parse(text)) ?? .string(text)
        case 2950:
            guard let b = buf.readBytes(length: 16) else { return raw() }
            let hex = b.map { String(format: "%02x", $0) }.joined()
            let s = Array(hex)
            return .string(String(s[0..<8]) + "-" + String(s[8..<12]) + "-" + String(s[12..<16]) + "-" + String(s[16..<20]) + "-" + String(s[20..<32]))
        case 17: return .string(Data(buf.readBytes(length: buf.readableBytes) ?? []).base64EncodedString())
        case 1082:
            guard let d = buf.readInteger(as: Int32.self) else { return raw() }
            if d == Int32.max { return "infinity" }
            if d == Int32.min { return "-infinity" }
            return .string(date(days: Int(d)))
        case 1114, 1184:
            guard let us = buf.readInteger(as: Int64.self) else { return raw() }
            if us == Int64.max { return "infinity" }
            if us == Int64.min { return "-infinity" }
            return .string(timestamp(us) + (oid == 1184 ? "Z" : ""))
        case 1083:
            guard let us = buf.readInteger(as: Int64.self) else { return raw() }
            return .string(time(us))
        case 1266:
            guard let us = buf.readInteger(as: Int64.self), let zone = buf.readInteger(as: Int32.self) else { return raw() }
            let east = -Int(zone)
            let sign = east < 0 ? "-" : "+"
            return .string(time(us) + sign + pad(abs(east) / 3600, 2) + ":" + pad(abs(east) % 3600 / 60, 2))
        case 1186:
            guard let us = buf.readInteger(as: Int64.self), let days = buf.readInteger(as: Int32.self),
                  let months = buf.readInteger(as: Int32.self) else { return raw() }
            return .string(interval(microseconds: us, days: Int(days), months: Int(months)))
        case 869, 650:
            guard let family = buf.readInteger(as: UInt8.self), let bits = buf.readInteger(as: UInt8.self),
                  let isCIDR = buf.readInteger(as: UInt8.self), let n = buf.readInteger(as: UInt8.self),
                  let addr = buf.readBytes(length: Int(n)) else { return raw() }
            let text: String
            if family == 2, addr.count == 4 {
                text = addr.map(String.init).joined(separator: ".")
            } else if addr.count == 16 {
                var groups: [String] = []
                for i in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(addr[i]) << 8 | UInt16(addr[i + 1]), radix: 16)) }
                text = compressIPv6(groups)
            } else { return raw() }
            let full = (family == 2 ? 32 : 128)
            return .string(isCIDR != 0 || Int(bits) != full ? "\(text)/\(bits)" : text)
        case 2249:
            guard let n = buf.readInteger(as: Int32.self), n >= 0 else { return raw() }
            var fields: [JSONValue] = []
            for _ in 0..<n {
                guard let elemOID = buf.readInteger(as: UInt32.self), let len = buf.readInteger(as: Int32.self) else { return raw() }
                if len < 0 { fields.append(.null); continue }
                guard var sub = buf.readSlice(length: Int(len)) else { return raw() }
                fields.append(decode(oid: elemOID, &sub))
            }
            return .array(fields)
        default:
            if typeNames[oid]?.hasSuffix("[]") == true || looksLikeArray(buf) {
                if let a = array(&buf) { return a }
            }
            return raw()
        }
    }

    /// Arrays of unknown element types are recognised by their header (ndim, flags, elemtype).
    static func looksLikeArray(_ buf: ByteBuffer) -> Bool {
        guard let ndim = buf.getInteger(at: buf.readerIndex, as: Int32.self), (0...6).contains(ndim),
              let flags = buf.getInteger(at: buf.readerIndex + 4, as: Int32.self), flags == 0 || flags == 1 else { return false }
        return buf.readableBytes >= 12 + Int(ndim) * 8 && (ndim > 0 || buf.readableBytes == 12)
    }

    static func array(_ buf: inout ByteBuffer) -> JSONValue? {
        guard let ndim = buf.readInteger(as: Int32.self), ndim >= 0, ndim <= 6,
              buf.readInteger(as: Int32.self) != nil, let elemOID = buf.readInteger(as: UInt32.self) else { return nil }
        if ndim == 0 { return .array([]) }
        var dims: [Int] = []
        for _ in 0..<ndim {
            guard let size = buf.readInteger(as: Int32.self), size >= 0, buf.readInteger(as: Int32.self) != nil else { return nil }
            dims.append(Int(size))
        }
        func level(_ d: Int) -> JSONValue? {
            var items: [JSONValue] = []
            items.reserveCapacity(dims[d])
            for _ in 0..<dims[d] {
                if d + 1 < dims.count {
                    guard let sub = level(d + 1) else { return nil }
                    items.append(sub)
                } else {
                    guard let len = buf.readInteger(as: Int32.self) else { return nil }
                    if len < 0 { items.append(.null); continue }
                    guard var slice = buf.readSlice(length: Int(len)) else { return nil }
                    items.append(decode(oid: elemOID, &slice))
                }
            }
            return .array(items)
        }
        return level(0)
    }

    static func float(_ d: Double) -> JSONValue {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
        return .double(d)
    }

    /// The binary numeric format: ndigits, weight, sign, dscale, then base-10000 digits.
    static func numeric(_ buf: inout ByteBuffer) -> String? {
        guard let ndigits = buf.readInteger(as: Int16.self), let weight = buf.readInteger(as: Int16.self),
              let sign = buf.readInteger(as: UInt16.self), let dscale = buf.readInteger(as: Int16.self), ndigits >= 0 else { return nil }
        switch sign {
        case 0xC000: return "NaN"
        case 0xD000: return "Infinity"
        case 0xF000: return "-Infinity"
        default: break
        }
        var digits: [Int] = []
        for _ in 0..<ndigits {
            guard let d = buf.readInteger(as: Int16.self) else { return nil }
            digits.append(Int(d))
        }
        var intPart = ""
        if weight < 0 { intPart = "0" } else {
            for i in 0...Int(weight) {
                let d = i < digits.count ? digits[i] : 0
                intPart += i == 0 ? String(d) : pad(d, 4)
            }
        }
        var frac = ""
        if dscale > 0 {
            var i = Int(weight) + 1
            while frac.count < Int(dscale) {
                let d = (i >= 0 && i < digits.count) ? digits[i] : 0
                frac += pad(d, 4)
                i += 1
            }
            frac = String(frac.prefix(Int(dscale)))
        }
        let body = frac.isEmpty ? intPart : intPart + "." + frac
        return sign == 0x4000 && body.contains(where: { $0 != "0" && $0 != "." }) ? "-" + body : body
    }

    static func pad(_ n: Int, _ width: Int) -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// Days since 2000-01-01 → `YYYY-MM-DD` (proleptic Gregorian; H. Hinnant's civil_from_days).
    static func date(days: Int) -> String {
        let z = days + 10957 + 719468  // days since 1970-01-01, shifted to 0000-03-01
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let year = y < 0 ? "-" + pad(-y, 4) : pad(y, 4)
        return "\(year)-\(pad(m, 2))-\(pad(d, 2))"
    }

    static func time(_ us: Int64) -> String {
        let total = Int(us)
        let secs = total / 1_000_000, micros = total % 1_000_000
        var s = "\(pad(secs / 3600, 2)):\(pad(secs % 3600 / 60, 2)):\(pad(secs % 60, 2))"
        if micros != 0 {
            var f = pad(micros, 6)
            while f.hasSuffix("0") { f.removeLast() }
            s += "." + f
        }
        return s
    }

    /// Microseconds since 2000-01-01 00:00:00 → `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
    static func timestamp(_ us: Int64) -> String {
        var days = us / 86_400_000_000
        var rest = us % 86_400_000_000
        if rest < 0 { rest += 86_400_000_000; days -= 1 }
        return date(days: Int(days)) + "T" + time(rest)
    }

    static func interval(microseconds us: Int64, days: Int, months: Int) -> String {
        var out = "P"
        let years = months / 12, mons = months % 12
        if years != 0 { out += "\(years)Y" }
        if mons != 0 { out += "\(mons)M" }
        if days != 0 { out += "\(days)D" }
        if us != 0 {
            out += "T"
            let neg = us < 0
            let a = neg ? -us : us
            let h = a / 3_600_000_000, m = a % 3_600_000_000 / 60_000_000, s = a % 60_000_000
            let sign = neg ? "-" : ""
            if h != 0 { out += "\(sign)\(h)H" }
            if m != 0 { out += "\(sign)\(m)M" }
            if s != 0 {
                var text = String(s / 1_000_000)
                if s % 1_000_000 != 0 {
                    var f = pad(Int(s % 1_000_000), 6)
                    while f.hasSuffix("0") { f.removeLast() }
                    text += "." + f
                }
                out += "\(sign)\(text)S"
            }
        }
        return out == "P" ? "PT0S" : out
    }

    static func compressIPv6(_ groups: [String]) -> String {
        var bestStart = -1, bestLen = 0, i = 0
        while i < groups.count {
            if groups[i] == "0" {
                var j = i
                while j < groups.count && groups[j] == "0" { j += 1 }
                if j - i > bestLen && j - i > 1 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        if bestStart < 0 { return groups.joined(separator: ":") }
        let head = groups[..<bestStart].joined(separator: ":")
        let tail = groups[(bestStart + bestLen)...].joined(separator: ":")
        return head + "::" + tail
    }
}
