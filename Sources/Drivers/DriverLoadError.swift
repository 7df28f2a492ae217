/// An ABI version as `major.minor`.
public struct ABIVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16
    public init(major: UInt16, minor: UInt16) {
        self.major = major
        self.minor = minor
    }
    /// The version this host speaks (from nova_driver.h).
    public static let host = ABIVersion(major: 1, minor: 1)
    public var description: String { "\(major).\(minor)" }
}

/// Why a driver could not be loaded. Every message names the file, and version errors name
/// both versions: version confusion is the top complaint in plugin ecosystems.
public enum DriverLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownDriver(name: String, driversDirectory: String)
    case unsafeFile(path: String, reason: String)
    case dlopenFailed(path: String, reason: String)
    case missingEntrySymbol(path: String)
    case majorMismatch(path: String, driver: ABIVersion, host: ABIVersion)
    case minorTooNew(path: String, driver: ABIVersion, host: ABIVersion)
    case structTooSmall(path: String, size: Int, required: Int)
    case missingFunction(path: String, function: String)
    case initFailed(path: String, status: Int32)
    case invalidManifest(path: String, reason: String)
    case nameMismatch(path: String, fileName: String, manifestName: String)
    case createFailed(driver: String, reason: String)
    case factoryFailed(driver: String, reason: String)
    case runnerFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownDriver(let name, let dir):
            return "no driver provides '\(name)': no \(name).so, nova_\(name).so or libnova_\(name).so in \(dir), and none is built in"
        case .unsafeFile(let path, let reason):
            return "refusing to load \(path): \(reason)"
        case .dlopenFailed(let path, let reason):
            return "cannot load \(path): \(reason)"
        case .missingEntrySymbol(let path):
            return "\(path) does not export nova_driver_init: not a nova driver (or the symbol is hidden; mark it NOVA_EXPORT)"
        case .majorMismatch(let path, let driver, let host):
            return "\(path) speaks ABI \(driver), this host speaks \(host): major versions differ; rebuild the driver against this host's nova_driver.h"
        case .minorTooNew(let path, let driver, let host):
            return "\(path) speaks ABI \(driver), this host speaks \(host): the driver needs a newer host"
        case .structTooSmall(let path, let size, let required):
            return "\(path) filled a driver table of \(size) bytes; ABI 1.0 needs at least \(required) (struct_size too small)"
        case .missingFunction(let path, let function):
            return "\(path) left the required function '\(function)' NULL"
        case .initFailed(let path, let status):
            return "\(path): nova_driver_init failed with status \(status)"
        case .invalidManifest(let path, let reason):
            return "\(path) has an invalid manifest: \(reason)"
        case .nameMismatch(let path, let fileName, let manifestName):
            return "\(path) provides driver '\(fileName)' by its file name but its manifest names '\(manifestName)'"
        case .createFailed(let driver, let reason):
            return "driver '\(driver)' refused its configuration: \(reason)"
        case .factoryFailed(let driver, let reason):
            return "built-in driver '\(driver)' failed to start: \(reason)"
        case .runnerFailed(let path, let reason):
            return "\(path) (process isolation): \(reason)"
        }
    }
}
