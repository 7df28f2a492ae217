import Foundation
import Host
import JSON
import Logging
import Synchronization

/// Who a log line is for. Every line carries one, in its `channel` field.
public enum LogChannel: String, Sendable, CaseIterable {
    /// Meant for the person running the server (listening address, shutdown progress).
    case humanUI = "human_ui"
    /// Text handed to a model (MCP tool results and errors, denial reasons a model reads).
    case modelInstruction = "model_instruction"
    /// Operational records (requests, runs, errors) for machines and operators.
    case systemLog = "system_log"

    /// The metadata value to put under `channel`.
    public var metadata: Logger.MetadataValue { .string(rawValue) }
}

extension Logger {
    /// A copy whose lines go to `channel`.
    public func channel(_ channel: LogChannel) -> Logger {
        var l = self
        l[metadataKey: "channel"] = channel.metadata
        return l
    }
}

/// A swift-log handler writing one JSON object per line:
/// `{"ts","level","label","channel","message","request_id",…metadata}`. Lines without a
/// `channel` are `system_log`. A line written while a request is handled carries its
/// `request_id` and `principal` (`RequestLogContext`) unless its metadata names them. Writes are whole lines (one `write(2)` each), so concurrent
/// loggers never interleave.
public struct JSONLogHandler: LogHandler {
    /// Where lines go.
    public enum Destination: Sendable {
        case standardError
        case standardOutput
        /// Collected in memory (tests).
        case memory(LogCapture)
    }

    /// The logger's label.
    public let label: String
    private let destination: Destination
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for `label` writing to `destination` at `level` and above.
    public init(label: String, destination: Destination = .standardError, level: Logger.Level = .info) {
        self.label = label
        self.destination = destination
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var o: [String: JSONValue] = [
            "ts": .string(Timestamps.now()), "level": .string(event.level.rawValue), "label": .string(label),
            "message": .string(event.message.description),
        ]
        o["channel"] = .string(merged.removeValue(forKey: "channel").map(Self.text) ?? LogChannel.systemLog.rawValue)
        if let rid = merged.removeValue(forKey: "request_id") { o["request_id"] = .string(Self.text(rid)) }
        // Hummingbird's own request id: the line carries nova-host's (X-Request-ID) instead.
        merged.removeValue(forKey: "hb.request.id")
        if let request = RequestLogContext.current {
            if o["request_id"] == nil { o["request_id"] = .string(request.requestId) }
            if merged["principal"] == nil, let principal = request.principal { o["principal"] = .string(principal) }
        }
        for (k, v) in merged where o[k] == nil { o[k] = Self.json(v) }
        var line = JSONValue.object(o).serializedBytes(sortedKeys: true)
        line.append(0x0A)
        switch destination {
        case .standardError: Self.write(line, fd: 2)
        case .standardOutput: Self.write(line, fd: 1)
        case .memory(let capture): capture.append(line)
        }
    }

    static func text(_ v: Logger.MetadataValue) -> String {
        if case .string(let s) = v { return s }
        return v.description
    }

    static func json(_ v: Logger.MetadataValue) -> JSONValue {
        switch v {
        case .string(let s): return .string(s)
        case .stringConvertible(let c): return .string(c.description)
        case .array(let a): return .array(a.map(json))
        case .dictionary(let d): return .object(d.mapValues(json))
        }
    }

    private static func write(_ bytes: [UInt8], fd: Int32) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}

/// Log lines kept in memory (tests read them back as JSON).
public final class LogCapture: Sendable {
    private let lines = Mutex<[[UInt8]]>([])
    /// An empty capture.
    public init() {}
    func append(_ line: [UInt8]) { lines.withLock { $0.append(line) } }
    /// Every line so far, parsed.
    public var entries: [JSONValue] { lines.withLock { $0 }.compactMap { try? JSONValue.parse(Array($0.dropLast())) } }
}
