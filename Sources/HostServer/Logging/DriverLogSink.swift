import Host
import Logging

/// Where driver log records go in `serve` and `mcp`: a JSON log line on the host's log (level
/// mapped from the ABI's, the driver's channel kept) with `driver`, `generation`, `call_id` and
/// `run_id` when known, and (for `serve`) a count in `nova_driver_log_records_total`.
public enum DriverLogSink {
    /// Installs the process-wide driver log sink.
    public static func install(logger: Logger, metrics: ServerMetrics? = nil) {
        var log = logger
        log[metadataKey: "label"] = "driver"
        let base = log
        DriverLogging.setSink { record in
            metrics?.driverLogged(record)
            var metadata: Logger.Metadata = ["driver": .string(record.driver), "channel": .string(record.channel)]
            if let g = record.generation { metadata["generation"] = .stringConvertible(g) }
            if let c = record.callId { metadata["call_id"] = .stringConvertible(c) }
            if let r = record.runId { metadata["run_id"] = .string(r) }
            base.log(level: level(record.level), "\(record.message)", metadata: metadata)
        }
    }

    static func level(_ abi: Int32) -> Logger.Level {
        switch abi {
        case ..<1: return .trace
        case 1: return .debug
        case 2: return .info
        case 3: return .warning
        default: return .error
        }
    }
}
