import DriverKit
import JSON

/// `text`: small string tools, written with DriverKit. Used by the hello plan and as the Swift
/// example driver in the README.
public struct TextDriver: NovaDriver {
    public static let manifest: JSONValue = [
        "name": "text",
        "version": "1.0.0",
        "description": "String helpers: upper-case, join, length, and a delayed echo.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            [
                "name": "upper",
                "description": "Upper-case a string.",
                "inputSchema": ["type": "object", "properties": ["text": ["type": "string"]], "required": ["text"], "additionalProperties": false],
                "outputSchema": ["type": "object", "properties": ["text": ["type": "string"]], "required": ["text"]],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": ["text": "nova"]]],
            ],
            [
                "name": "join",
                "description": "Join strings with a separator (default a space).",
                "inputSchema": [
                    "type": "object",
                    "properties": ["parts": ["type": "array", "items": ["type": "string"]], "separator": ["type": "string"]],
                    "required": ["parts"], "additionalProperties": false,
                ],
                "outputSchema": ["type": "object", "properties": ["text": ["type": "string"]], "required": ["text"]],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": ["parts": ["plug", "in"], "separator": "-"]]],
            ],
            [
                "name": "length",
                "description": "Count the characters (grapheme clusters) and UTF-8 bytes of a string.",
                "inputSchema": ["type": "object", "properties": ["text": ["type": "string"]], "required": ["text"], "additionalProperties": false],
                "outputSchema": ["type": "object", "properties": ["characters": ["type": "integer"], "bytes": ["type": "integer"]]],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": ["text": "héllo"]]],
            ],
            [
                "name": "delay",
                "description": "Return the text after ms milliseconds, answering asynchronously; honours cancel and deadline.",
                "inputSchema": [
                    "type": "object",
                    "properties": ["text": ["type": "string"], "ms": ["type": "integer", "minimum": 0, "maximum": 600000]],
                    "required": ["text", "ms"], "additionalProperties": false,
                ],
                "outputSchema": ["type": "object", "properties": ["text": ["type": "string"]], "required": ["text"]],
                "annotations": ["readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
                "examples": [["input": ["text": "later", "ms": 200]]],
            ],
        ],
    ]

    public init(configuration: JSONValue) throws {}

    public func callNow(_ call: ToolCall) throws -> ToolOutput? {
        switch call.tool {
        case "upper":
            let text = try Self.string(call.input(), "text")
            return .json(["text": .string(text.uppercased())])
        case "join":
            let input = try call.input()
            guard let parts = input["parts"]?.arrayValue?.compactMap(\.stringValue) else {
                throw DriverError.invalidArgument("parts must be an array of strings")
            }
            let separator = input["separator"]?.stringValue ?? " "
            return .json(["text": .string(parts.joined(separator: separator))])
        case "length":
            let text = try Self.string(call.input(), "text")
            return .json(["characters": .int(text.count), "bytes": .int(text.utf8.count)])
        case "delay":
            return nil
        default:
            throw DriverError.unknownTool(call.tool)
        }
    }

    public func call(_ call: ToolCall) async throws -> ToolOutput {
        guard call.tool == "delay" else { throw DriverError.unknownTool(call.tool) }
        let input = try call.input()
        let text = try Self.string(input, "text")
        let ms = input["ms"]?.intValue ?? 0
        let end = monotonicNanos() + Int64(ms) * 1_000_000
        while monotonicNanos() < end {
            if let left = call.remainingNanos, left <= 0 {
                throw DriverError(.deadline, code: "deadline", message: "text.delay: deadline passed")
            }
            try Task.checkCancellation()
            try await Task.sleep(nanoseconds: 1_000_000)
        }
        return .json(["text": .string(text)])
    }

    static func string(_ input: JSONValue, _ key: String) throws -> String {
        guard let s = input[key]?.stringValue else { throw DriverError.invalidArgument("\(key) must be a string") }
        return s
    }
}

@_cdecl("nova_driver_init")
public func novaDriverInit(_ host: UnsafeRawPointer?, _ table: UnsafeMutableRawPointer?) -> Int32 {
    DriverExport.initialize(TextDriver.self, host: host, table: table)
}
