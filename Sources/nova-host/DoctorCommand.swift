import ArgumentParser
import Dispatch
import Foundation
import Host
import JSON

/// `nova-host doctor [--json]`: can this machine run the `shell` driver's sandbox?
///
/// Reports user namespaces, seccomp and the cgroup version (read from the kernel directly, so
/// they are shown even without the helper), which sandbox features work and the memory bound a
/// sandbox gets — a per-sandbox cgroup or rlimits only (from `nova-sandbox --probe`, which also
/// runs a full sandbox once), the drivers directory and the
/// shell driver's settings, and how to enable whatever is missing. Exit status 0 when the
/// sandbox is usable, 1 otherwise.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the sandbox of the shell driver on this machine (user namespaces, seccomp, cgroups, nova-sandbox, drivers).",
        discussion: """
            The helper is found like the shell driver finds it: --helper, the "helper" key of the \
            shell driver's configuration (configs/drivers.json), NOVA_SANDBOX, <drivers>/nova-sandbox, \
            Sources/Sandbox/build/nova-sandbox under the drivers directory's parent (and its next two \
            ancestors), then PATH.

            Exit codes: 0 the sandbox is usable · 1 it is not (see the hints).
            """)

    @Flag(help: "Print JSON.") var json = false
    @Option(help: ArgumentHelp("The nova-sandbox helper to probe.", valueName: "path")) var helper: String?
    @OptionGroup var host: HostOptions

    func run() async throws {
        let paths = host.paths
        var hints: [String] = []
        var report: [String: JSONValue] = [:]

        // Kernel facts, read directly.
        let kernel = KernelFacts.read()
        report["kernel"] = kernel.json

        // The shell driver's settings.
        var shellConfig: JSONValue = [:]
        var shellIsolation = "inprocess"
        var settingsError: String? = nil
        do {
            let (settings, _) = try NovaHost.loadDriverSettings(paths.driverConfigFile)
            if let s = settings["shell"] {
                shellConfig = s.config
                shellIsolation = s.isolation.rawValue
            }
        } catch {
            settingsError = error.message
            hints.append("fix the driver settings file: \(error.message)")
        }

        // The helper and its probe.
        let env = ProcessInfo.processInfo.environment
        let (helperPath, tried, source) = Self.locateHelper(explicit: helper, configured: shellConfig["helper"]?.stringValue,
                                                            environment: env, driversDirectory: paths.driversDirectory)
        var probe: JSONValue? = nil
        var probeError: String? = nil
        if let helperPath {
            switch Self.runProbe(helperPath) {
            case .success(let v): probe = v
            case .failure(let e): probeError = e.description
            }
        } else {
            probeError = "nova-sandbox not found (looked at: \(tried.joined(separator: ", ")))"
            hints.append("build the helper: `make -C Sources/Sandbox` (needs cc and libseccomp-dev: apt-get install libseccomp-dev), or `make drivers`; or point NOVA_SANDBOX / the shell driver's \"helper\" at it")
        }
        var helperJSON: [String: JSONValue] = ["path": helperPath.map { .string($0) } ?? .null, "found_by": source.map { .string($0) } ?? .null]
        if let probeError { helperJSON["error"] = .string(probeError) }
        if let v = probe?["version"] { helperJSON["version"] = v }
        report["helper"] = .object(helperJSON)
        if let probe { report["probe"] = probe }

        // User namespaces, seccomp, cgroups: the probe's view when there is one, else the kernel's.
        let userns = probe?["user_namespaces"]?["available"]?.boolValue ?? kernel.userNamespacesLikely
        let seccomp = probe?["seccomp"]?["available"]?.boolValue ?? kernel.seccompFilter
        let usable = probe?["sandbox_usable"]?.boolValue ?? false
        report["user_namespaces"] = .object([
            "available": .bool(userns),
            "unprivileged": probe?["user_namespaces"]?["unprivileged"] ?? .null,
            "max_user_namespaces": kernel.maxUserNamespaces.map { .int($0) } ?? .null,
        ])
        report["seccomp"] = .object([
            "available": .bool(seccomp),
            "mode_of_this_process": .int(kernel.seccompMode),
            "actions": kernel.seccompActions.map { .string($0) } ?? .null,
        ])
        let cgroupVersion = probe?["cgroup"]?["mode"]?.stringValue ?? kernel.cgroupVersion
        // The memory bound a sandbox gets here (the probe's self-test): a cgroup, or rlimits only.
        let memoryBound = probe?["memory_bound"]?.stringValue ?? "unknown"
        report["cgroup"] = .object(["version": .string(cgroupVersion), "used_by_sandbox": .bool(memoryBound.hasPrefix("cgroup-")),
                                    "memory_bound": .string(memoryBound)])
        report["features"] = probe.map { p in
            .object(["namespaces": p["namespaces"] ?? .null, "syscalls": p["syscalls"] ?? .null,
                     "selftest_ok": p["selftest"]?["ok"] ?? .null])
        } ?? .null
        if !userns {
            hints.append(contentsOf: kernel.usernsHints)
        }
        if !seccomp {
            hints.append("seccomp filters are unavailable: the kernel needs CONFIG_SECCOMP_FILTER=y; in a container, run with a seccomp profile that allows seccomp(2)/prctl(PR_SET_SECCOMP)")
        }
        for h in probe?["hints"]?.arrayValue ?? [] { if let s = h.stringValue, !hints.contains(s) { hints.append(s) } }
        if probe != nil, !usable, probe?["selftest"]?["ok"]?.boolValue == false {
            hints.append("the probe's self-test failed: \(probe?["selftest"]?["status"]?.stringValue ?? "no status") — run the battery: Tests/sandbox/run-battery.sh")
        }

        // The drivers directory and the shell driver.
        let drivers = Self.driversReport(paths.driversDirectory)
        report["drivers"] = drivers.json
        if !drivers.exists {
            hints.append("the drivers directory \(paths.driversDirectory) does not exist: run `make drivers` (or pass --drivers)")
        } else if !drivers.hasShell {
            hints.append("libnova_shell.so is not in \(paths.driversDirectory): run `make drivers`")
        }
        if drivers.worldWritable { hints.append("\(paths.driversDirectory) is writable by others: chmod o-w (anyone could plant a driver)") }
        let programs = shellConfig["allowed_programs"]?.arrayValue?.count ?? 0
        var shell: [String: JSONValue] = [
            "settings_file": paths.driverConfigFile.map { .string($0) } ?? .null,
            "isolation": .string(shellIsolation),
            "allowed_programs": .int(programs),
            "allow_unsandboxed": shellConfig["allow_unsandboxed"] ?? false,
        ]
        if let settingsError { shell["error"] = .string(settingsError) }
        report["shell_driver"] = .object(shell)
        if programs == 0 {
            hints.append("the shell driver allows no program yet: list absolute paths in drivers.shell.config.allowed_programs of \(paths.driverConfigFile ?? "configs/drivers.json") (and in the policy's shell_programs)")
        }
        if !usable && shellConfig["allow_unsandboxed"]?.boolValue == true {
            hints.append("allow_unsandboxed is set: shell.exec runs programs WITHOUT the sandbox here (episodes show \"sandbox\": \"none\")")
        }
        report["sandbox_usable"] = .bool(usable)
        report["hints"] = .array(hints.map { .string($0) })

        if json {
            Output.json(.object(report))
        } else {
            func line(_ ok: Bool?, _ text: String) { print("\(ok == nil ? "  -" : ok! ? " ok" : " NO") \(text)") }
            print("nova-host doctor — sandbox of the shell driver")
            line(userns, "user namespaces" + (kernel.maxUserNamespaces.map { " (user.max_user_namespaces=\($0))" } ?? ""))
            line(seccomp, "seccomp filters" + (kernel.seccompMode == 2 ? " (this process already runs under a filter: container)" : ""))
            line(memoryBound.hasPrefix("cgroup-") ? true : memoryBound == "unknown" ? nil : false,
                 "cgroups: \(cgroupVersion); memory bound of a sandbox: \(memoryBound)"
                     + (memoryBound == "rlimit-only" ? " (no cgroup: RLIMIT_AS per process only; memfd_create refused inside, see the hints)" : ""))
            line(helperPath != nil && probeError == nil, "nova-sandbox: \(helperPath ?? "not found")\(source.map { " (\($0))" } ?? "")\(probeError.map { " — \($0)" } ?? "")")
            if let ns = probe?["namespaces"]?.objectValue {
                line(ns.values.allSatisfy { $0.boolValue == true }, "namespaces: " + ns.keys.sorted().map { "\($0) \(ns[$0]?.boolValue == true ? "yes" : "no")" }.joined(separator: ", "))
            }
            if let sc = probe?["syscalls"]?.objectValue {
                line(nil, "syscalls: " + sc.keys.sorted().map { "\($0) \(sc[$0]?.boolValue == true ? "yes" : "no")" }.joined(separator: ", "))
            }
            if let st = probe?["selftest"] { line(st["ok"]?.boolValue, "self-test: a full sandbox ran /bin/true") }
            line(drivers.exists && drivers.hasShell, "drivers: \(paths.driversDirectory) (\(drivers.libraries.count) libraries\(drivers.hasShell ? ", shell present" : ", no libnova_shell.so"))")
            line(programs > 0, "shell driver: \(programs) allowed program(s), isolation \(shellIsolation)\(shellConfig["allow_unsandboxed"]?.boolValue == true ? ", allow_unsandboxed" : "")")
            print(usable ? "sandbox: usable" : "sandbox: NOT usable — shell.exec refuses to run")
            for h in hints { print("  hint: \(h)") }
        }
        if !usable { throw ExitCode(1) }
    }

    /// The helper by the shell driver's rules (see the command's discussion).
    static func locateHelper(explicit: String?, configured: String?, environment: [String: String],
                             driversDirectory: String) -> (String?, [String], String?) {
        var tried: [String] = []
        func usable(_ p: String) -> Bool {
            tried.append(p)
            return FileManager.default.isExecutableFile(atPath: p) && !isDirectory(p)
        }
        if let explicit { return (usable(explicit) ? explicit : nil, tried, "--helper") }
        if let configured { return (usable(configured) ? configured : nil, tried, "shell driver configuration") }
        if let e = environment["NOVA_SANDBOX"], !e.isEmpty { return (usable(e) ? e : nil, tried, "NOVA_SANDBOX") }
        let drivers = URL(fileURLWithPath: driversDirectory).standardizedFileURL
        if usable(drivers.appendingPathComponent("nova-sandbox").path) { return (tried.last, tried, "drivers directory") }
        var up = drivers.deletingLastPathComponent()
        for _ in 0..<3 {
            let c = up.appendingPathComponent("Sources/Sandbox/build/nova-sandbox").path
            if usable(c) { return (c, tried, "next to the drivers directory") }
            if up.path == "/" { break }
            up = up.deletingLastPathComponent()
        }
        for dir in (environment["PATH"] ?? "").split(separator: ":") where dir.hasPrefix("/") {
            let c = String(dir) + "/nova-sandbox"
            if usable(c) { return (c, tried, "PATH") }
        }
        return (nil, tried, nil)
    }

    static func isDirectory(_ p: String) -> Bool {
        var dir: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &dir) && dir.boolValue
    }

    struct ProbeError: Error, CustomStringConvertible { let description: String }

    /// Runs `helper --probe` (at most 30 s) and parses its JSON (printed even when it exits 1).
    static func runProbe(_ helper: String) -> Result<JSONValue, ProbeError> {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: helper)
        p.arguments = ["--probe"]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return .failure(ProbeError(description: "cannot run \(helper) --probe: \(error)")) }
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 30, execute: watchdog)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        guard let v = try? JSONValue.parse(Array(data)), v.objectValue != nil else {
            let msg = String(decoding: errData.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return .failure(ProbeError(description: "\(helper) --probe printed no JSON (exit \(p.terminationStatus))\(msg.isEmpty ? "" : ": \(msg)")"))
        }
        return .success(v)
    }

    struct DriversReport {
        var exists = false
        var worldWritable = false
        var libraries: [String] = []
        var hasShell: Bool { libraries.contains("libnova_shell.so") }
        var path: String
        var json: JSONValue {
            ["directory": .string(path), "exists": .bool(exists), "libraries": .array(libraries.map { .string($0) }),
             "shell_driver": .bool(hasShell), "world_writable": .bool(worldWritable)]
        }
    }

    static func driversReport(_ dir: String) -> DriversReport {
        var r = DriversReport(path: dir)
        guard isDirectory(dir) else { return r }
        r.exists = true
        if let attrs = try? FileManager.default.attributesOfItem(atPath: dir), let perms = attrs[.posixPermissions] as? Int {
            r.worldWritable = perms & 0o002 != 0
        }
        r.libraries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".so") && !$0.hasPrefix(".") }.sorted()
        return r
    }
}

/// What the kernel says, read from /proc and /sys (no helper needed).
struct KernelFacts {
    var release = ""
    var maxUserNamespaces: Int?
    var unprivilegedUsernsClone: Int?
    var apparmorRestrict: Int?
    var seccompMode = 0
    var seccompActions: String?
    var cgroupVersion = "none"

    var seccompFilter: Bool { seccompActions != nil }
    var userNamespacesLikely: Bool {
        (maxUserNamespaces ?? 0) > 0 && (unprivilegedUsernsClone ?? 1) != 0 && (apparmorRestrict ?? 0) == 0
    }

    var usernsHints: [String] {
        var h: [String] = []
        if maxUserNamespaces == 0 { h.append("user namespaces are disabled: sysctl -w user.max_user_namespaces=15000 (persist in /etc/sysctl.d/)") }
        if unprivilegedUsernsClone == 0 { h.append("unprivileged user namespaces are off (Debian ≤ 10 kernels): sysctl -w kernel.unprivileged_userns_clone=1") }
        if (apparmorRestrict ?? 0) != 0 { h.append("AppArmor restricts unprivileged user namespaces (Ubuntu ≥ 23.10): sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for nova-sandbox granting `userns,`") }
        if h.isEmpty { h.append("user namespaces could not be created: in a container, allow unshare/clone(CLONE_NEWUSER) in its seccomp profile (e.g. docker --security-opt seccomp=unconfined) or run nova-host on the host") }
        return h
    }

    static func read() -> KernelFacts {
        func text(_ p: String) -> String? {
            (try? String(contentsOfFile: p, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var k = KernelFacts()
        k.release = text("/proc/sys/kernel/osrelease") ?? ""
        k.maxUserNamespaces = text("/proc/sys/user/max_user_namespaces").flatMap { Int($0) }
        k.unprivilegedUsernsClone = text("/proc/sys/kernel/unprivileged_userns_clone").flatMap { Int($0) }
        k.apparmorRestrict = text("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").flatMap { Int($0) }
        k.seccompActions = text("/proc/sys/kernel/seccomp/actions_avail")
        for l in (text("/proc/self/status") ?? "").split(separator: "\n") where l.hasPrefix("Seccomp:") {
            k.seccompMode = Int(l.dropFirst(8).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let v2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let v1 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cpu") || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/memory")
            || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified")
        k.cgroupVersion = v2 && !v1 ? "v2" : (v1 && (v2 || FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified/cgroup.controllers")) ? "hybrid" : (v1 ? "v1" : "none"))
        return k
    }

    var json: JSONValue {
        ["release": .string(release),
         "sysctl": ["user.max_user_namespaces": maxUserNamespaces.map { .int($0) } ?? .null,
                    "kernel.unprivileged_userns_clone": unprivilegedUsernsClone.map { .int($0) } ?? .null,
                    "kernel.apparmor_restrict_unprivileged_userns": apparmorRestrict.map { .int($0) } ?? .null]]
    }
}
