import Hummingbird
import NIOCore

/// An `application/x-www-form-urlencoded` body (what the dashboard's forms post), parsed into
/// fields; a name given more than once keeps its first value.
struct UIForm: Sendable {
    /// The fields by name.
    var fields: [String: String]

    /// Parses `text` (`a=1&b=two+words&c=%C3%A9`).
    init(_ text: String) {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.decode(parts[0]), value = parts.count > 1 ? Self.decode(parts[1]) : ""
            if fields[name] == nil { fields[name] = value }
        }
        self.fields = fields
    }

    /// The request's body as a form (at most `limit` bytes; 413 beyond; 415 for another type).
    static func read(_ request: Request, limit: Int) async throws -> UIForm {
        if let ct = request.headers[.contentType]?.lowercased(), !ct.hasPrefix("application/x-www-form-urlencoded") {
            throw APIError(.unsupportedMediaType, "unsupported_media_type", "dashboard forms are sent as application/x-www-form-urlencoded")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch {
            throw APIError(.contentTooLarge, "payload_too_large", "the form is larger than \(limit) bytes")
        }
        return UIForm(String(buffer: buffer))
    }

    subscript(_ name: String) -> String? { fields[name] }

    /// Percent-decoding with `+` as a space; malformed escapes are kept literally, invalid
    /// UTF-8 is repaired.
    static func decode(_ s: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%"), it.count >= 2, let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) {
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
            } else {
                bytes.append(c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
