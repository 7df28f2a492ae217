import ArgumentParser
import Foundation
import Host
import JSON

/// `nova-host init [DIR]`: lays out a project a new user can serve at once — a host
/// configuration with a fresh admin API key (printed once, stored as its SHA-256), the default
/// policy profile, the shipped drivers, two example templates and a README.
struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Lay out a project directory: nova.json with a new admin API key, policy.json, drivers/, templates/, README.md.",
        discussion: """
            Writes into DIR (default: the current directory; created if missing):
              nova.json     listen address, one admin API key (only its SHA-256),
                            and the paths of the files below
              policy.json   the default policy profile (deny by default)
              drivers.json  per-driver settings, when the host has some
              drivers/      the drivers (*.so) nova-host finds (--drivers)
              templates/    two example templates: hello.yaml, restock.yaml
              README.md     how to serve the project and call it

            The API key is printed once, on stdout (--json: "api_key"); keep it.
            Then, from any directory:
              nova-host serve --config DIR/nova.json
              curl -H "Authorization: Bearer $KEY" -d '{"text":"hi"}' \\
                   http://127.0.0.1:8787/tools/echo.echo

            A DIR that exists and is not empty is refused unless --force, which
            overwrites the files above and keeps everything else.

            Exit codes: 0 created · 1 a file could not be written ·
            2 DIR is not empty (without --force) or usage.
            """)

    @Argument(help: ArgumentHelp("The project directory.", valueName: "dir"))
    var directory: String = "."

    @Flag(help: "Write into a directory that is not empty, overwriting the project files.")
    var force = false

    @Flag(help: "Print what was created as JSON (the API key included, once).")
    var json = false

    @Option(help: "The port nova.json listens on (127.0.0.1).")
    var port: Int = 8787

    @OptionGroup var host: HostOptions

    func run() async throws {
        guard (1...65535).contains(port) else {
            Output.error("--port must be between 1 and 65535")
            throw ExitCode(ExitStatus.invalid)
        }
        try refuseNonEmpty()
        let project = ProjectLayout(directory: directory)
        let key = AdminKey.generate()
        let source = host.paths
        var created: [String] = []
        var warnings: [String] = []
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            created += try project.writePolicy(from: source.policyFile, warnings: &warnings)
            let driverConfig = try project.copyDriverConfig(from: source.driverConfigFile)
            created += driverConfig
            created += try project.copyDrivers(from: source.driversDirectory, warnings: &warnings)
            created += try project.writeConfig(key: key, port: port, withDriverConfig: !driverConfig.isEmpty)
            created += try project.writeTemplates()
            created += try project.writeReadme(port: port)
        } catch {
            Output.error("cannot write the project in \(directory): \(error)")
            throw ExitCode(ExitStatus.runFailed)
        }
        for warning in warnings { Output.note("warning: " + warning) }
        report(created: created, key: key, project: project)
    }

    /// Exits 2 when the directory exists, is not empty and `--force` was not given.
    func refuseNonEmpty() throws {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard !entries.isEmpty, !force else { return }
        Output.error("\(directory) is not empty (\(entries.sorted().prefix(5).joined(separator: ", "))\(entries.count > 5 ? ", …" : "")): "
                     + "choose a new directory, or --force to write the project files into it")
        throw ExitCode(ExitStatus.invalid)
    }

    /// Prints what was created and the key (the only time it is shown).
    func report(created: [String], key: AdminKey, project: ProjectLayout) {
        let config = project.path("nova.json")
        if json {
            Output.json([
                "directory": .string(directory), "files": .array(created.map { .string($0) }), "config": .string(config),
                "key_id": .string(key.id), "principal": "admin", "role": "admin", "api_key": .string(key.secret),
                "serve": .string("nova-host serve --config \(config)"),
            ])
            return
        }
        print("Created a nova-host project in \(directory):")
        for file in created { print("  " + file) }
        print("")
        print("Admin API key (id \(key.id), principal admin). It is shown only now; nova.json keeps only its SHA-256:")
        print("")
        print("  " + key.secret)
        print("")
        print("Serve it:   nova-host serve --config \(config)")
        print("Call it:    curl -H \"Authorization: Bearer <key>\" -H 'Content-Type: application/json' -d '{\"text\":\"hi\"}' http://127.0.0.1:\(port)/tools/echo.echo")
    }
}

/// A freshly generated API key: the secret (shown once) and its id.
struct AdminKey {
    let id: String
    let secret: String
    var sha256: String { SHA256.hex(Array(secret.utf8)) }

    /// 32 random bytes, hex, behind a `nova_` prefix; the id is 4 more random bytes.
    static func generate() -> AdminKey {
        var rng = SystemRandomNumberGenerator()
        func hex(_ count: Int) -> String {
            (0..<count).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &rng)) }.joined()
        }
        return AdminKey(id: "admin-" + hex(4), secret: "nova_" + hex(32))
    }
}

/// The files of a project directory and how each is written.
struct ProjectLayout {
    let directory: String

    func path(_ relative: String) -> String {
        directory == "." ? relative : (directory as NSString).appendingPathComponent(relative)
    }

    /// Writes `text` to `relative` (creating its directory) and returns the path written.
    func write(_ text: String, to relative: String) throws -> String {
        let file = path(relative)
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent.isEmpty ? "." : (file as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        return file
    }

    /// Copies `source` over `relative` and returns the path written.
    func copy(_ source: String, to relative: String) throws -> String {
        let file = path(relative)
        if FileManager.default.fileExists(atPath: file) { try FileManager.default.removeItem(atPath: file) }
        try FileManager.default.copyItem(atPath: source, toPath: file)
        return file
    }

    /// `nova.json`: loopback listener, the admin key's hash, the project's paths.
    func writeConfig(key: AdminKey, port: Int, withDriverConfig: Bool) throws -> [String] {
        var paths: [String: JSONValue] = ["drivers": "drivers", "policy": "policy.json", "data": ".nova", "templates": "templates"]
        if withDriverConfig { paths["driver_config"] = "drivers.json" }
        let config: JSONValue = [
            "$schema": "https://nova-host.dev/schemas/host-config.schema.json",
            "listen": ["host": "127.0.0.1", "port": .int(port)],
            "api_keys": [["id": .string(key.id), "principal": "admin", "role": "admin", "sha256": .string(key.sha256)]],
            "admin_roles": ["admin"],
            "paths": .object(paths),
        ]
        return [try write(config.serialized(pretty: true, sortedKeys: true) + "\n", to: "nova.json")]
    }

    /// `policy.json`: the host's default profile (the repository's or the installed one), or a
    /// minimal one when the host has none.
    func writePolicy(from source: String?, warnings: inout [String]) throws -> [String] {
        guard let source, let text = try? String(contentsOfFile: source, encoding: .utf8) else {
            warnings.append("no default policy profile found (configs/policy.default.json or the installed share/nova-host): wrote a minimal one")
            return [try write(Self.minimalPolicy, to: "policy.json")]
        }
        let rewritten = text.replacingOccurrences(of: "\"../schemas/policy.schema.json\"", with: "\"https://nova-host.dev/schemas/policy.schema.json\"")
        return [try write(rewritten, to: "policy.json")]
    }

    /// `drivers.json`, when the host has driver settings.
    func copyDriverConfig(from source: String?) throws -> [String] {
        guard let source, FileManager.default.fileExists(atPath: source) else { return [] }
        let text = try String(contentsOfFile: source, encoding: .utf8)
        return [try write(text.replacingOccurrences(of: "\"../schemas/drivers.schema.json\"", with: "\"https://nova-host.dev/schemas/drivers.schema.json\""),
                          to: "drivers.json")]
    }

    /// `drivers/`: every `.so` of the host's drivers directory.
    func copyDrivers(from source: String, warnings: inout [String]) throws -> [String] {
        try FileManager.default.createDirectory(atPath: path("drivers"), withIntermediateDirectories: true)
        let libraries = ((try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []).filter { $0.hasSuffix(".so") }.sorted()
        if libraries.isEmpty {
            warnings.append("no drivers found in \(source) (build them with `make drivers`, or pass --drivers DIR): \(path("drivers")) is empty")
        }
        return try libraries.map { try copy((source as NSString).appendingPathComponent($0), to: "drivers/" + $0) }
    }

    /// `templates/hello.yaml` and `templates/restock.yaml`.
    func writeTemplates() throws -> [String] {
        [try write(Self.helloTemplate, to: "templates/hello.yaml"), try write(Self.restockTemplate, to: "templates/restock.yaml")]
    }

    /// `README.md` (and a `.gitignore` for the data directory).
    func writeReadme(port: Int) throws -> [String] {
        let readme = """
            # nova-host project

            Created by `nova-host init`. Files:

            - `nova.json`: the server configuration (listen address, API keys as SHA-256 hashes, paths).
            - `policy.json`: the policy profile; every tool call is denied unless a rule allows it.
            - `drivers/`: the drivers (`*.so`); `drivers.json`: their settings, if any.
            - `templates/`: parameterized plans (`hello.yaml`, `restock.yaml`).
            - `.nova/`: episodes and state, created by the first `serve`.

            Serve it (from any directory):

            ```sh
            nova-host serve --config \(path("nova.json"))
            ```

            Call a tool with the admin key `nova-host init` printed:

            ```sh
            curl -s -H "Authorization: Bearer $NOVA_KEY" -H 'Content-Type: application/json' \\
                 -d '{"text":"hi"}' http://127.0.0.1:\(port)/tools/echo.echo
            ```

            Add keys for other principals to `api_keys` in `nova.json` with the SHA-256 of the key
            (`printf %s "$KEY" | sha256sum`), and give them a role in `policy.json`.

            """
        return [try write(readme, to: "README.md"), try write(".nova/\n", to: ".gitignore")]
    }

    static let minimalPolicy = """
        {
          "$schema": "https://nova-host.dev/schemas/policy.schema.json",
          "roles": { "admin": {}, "user": {} },
          "principals": { "admin": "admin" },
          "rules": [
            { "id": "admins-everything", "effect": "allow", "roles": ["admin"], "tools": ["*"] },
            { "id": "examples", "effect": "allow", "roles": ["user"], "tools": ["echo.*", "text.*"] }
          ]
        }

        """

    static let helloTemplate = """
        # A template: a versioned, parameterized plan (see the README of nova-host, "Templates").
        name: hello
        version: "1.0.0"
        description: Greet someone in upper case and echo the greeting with its length.
        params:
          type: object
          properties:
            who: {type: string, minLength: 1, default: world}
            greeting: {type: string, default: hello}
        phases:
          - {name: compose, steps: [greet, shout]}
          - {name: report, steps: [measure, echo]}
        plan:
          steps:
            - id: greet
              call: text.join
              input: {parts: ["${params.greeting}", "${params.who}"], separator: ", "}
            - id: shout
              call: text.upper
              input: {text: "${steps.greet.output.text}"}
            - id: measure
              call: text.length
              input: {text: "${steps.shout.output.text}"}
            - id: echo
              call: echo.echo
              input: {greeting: "${steps.shout.output.text}", characters: "${steps.measure.output.characters}"}
          output: "${steps.echo.output}"

        """

    static let restockTemplate = """
        name: restock
        version: "1.0.0"
        description: Reorder stock when it runs low.
        params:
          type: object
          properties:
            sku: {type: string, minLength: 1}
            threshold: {type: integer, minimum: 0, default: 5}
            quantity: {type: integer, minimum: 1, default: 20}
          required: [sku]
        phases:
          - {name: check, steps: [count]}
          - {name: act, steps: [order, confirm]}
        plan:
          steps:
            - id: count
              call: echo.echo
              input: {sku: "${params.sku}", threshold: "${params.threshold}"}
            - id: order
              call: text.join
              input: {parts: ["order ${params.quantity} x ${params.sku}", "when below ${params.threshold}"], separator: ", "}
            - id: confirm
              call: echo.echo
              input: {sku: "${params.sku}", order: "${steps.order.output.text}"}
          output: {order: "${steps.order.output.text}", checked: "${steps.count.output}"}

        """
}
