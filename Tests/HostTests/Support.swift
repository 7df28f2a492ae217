import Foundation
@_exported import TestSupport
import Host
import Synchronization
import JSON

/// Paths and builders the host tests share.
enum Fixtures {
    /// The package root, found from this file's path.
    static let root = TestPaths.root

    static let abiInclude = root + "/Sources/DriverABI/include"

    /// Where `swift build` put the Swift drivers (`NOVA_BIN_DIR`, set by `make test`).
    static let binDir = TestPaths.binDir

    /// A fresh temporary directory.
    static func tempDir(_ label: String = "nova") -> String { TestPaths.tempDir(label) }

    /// Compiled drivers by source and defines: each variant is compiled once per test process
    /// and copied from then on (a compiler run blocks the calling thread; dozens of them starve
    /// the cooperative pool the other tests run on).
    private static let compiled = Mutex<[String: String]>([:])
    private static let cacheDir = tempDir("cc-cache")

    /// Compiles a C driver into `dir/file` with `cc -shared -fPIC` and the given defines.
    @discardableResult
    static func buildC(source: String, into dir: String, file: String, defines: [String] = []) throws -> String {
        let out = dir + "/" + file
        let key = ([source] + defines).joined(separator: "\u{0}")
        let built = try compiled.withLock { cache -> String in
            if let path = cache[key] { return path }
            let path = cacheDir + "/\(cache.count).so"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["cc", "-std=c11", "-shared", "-fPIC", "-fvisibility=hidden", "-I", abiInclude, "-o", path, source, "-lpthread"] + defines
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw NSError(domain: "cc", code: Int(p.terminationStatus)) }
            cache[key] = path
            return path
        }
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: built, toPath: out)
        chmod(out, 0o644)
        return out
    }

    @discardableResult
    static func buildEcho(into dir: String, file: String = "libnova_echo.so", version: String? = nil) throws -> String {
        try buildC(source: root + "/examples/drivers/c-echo/echo.c", into: dir, file: file,
                   defines: version.map { ["-DECHO_VERSION=\"\($0)\""] } ?? [])
    }

    @discardableResult
    static func buildVariant(into dir: String, file: String = "libnova_variant.so", defines: [String] = []) throws -> String {
        try buildC(source: root + "/Tests/fixtures/variant_driver.c", into: dir, file: file, defines: defines)
    }

    /// Copies the built Swift `text` driver into `dir`.
    static func installText(into dir: String) throws {
        let dest = dir + "/libnova_text.so"
        try? FileManager.default.removeItem(atPath: dest)
        try FileManager.default.copyItem(atPath: binDir + "/libnova_text.so", toPath: dest)
        chmod(dest, 0o644)
    }

    static func write(_ text: String, to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}

/// A gate that allows everything: for tests of the loader and interpreter that are not about policy.

extension ToolCallResult {
    var json: JSONValue { (try? JSONValue.parse(output)) ?? .null }
}
