// swift-tools-version:6.0
// The third-party Swift packages of nova-host, linked once into one shared library,
// libNovaDependencies.so, that the host and the Swift drivers built with it link dynamically.
//
// Why a package of its own: SwiftPM links a dynamic library product of *another* package
// dynamically, and copies the objects of every other dependency into each product. Before this
// package every product carried its own SwiftNIO, TLS, AsyncHTTPClient and PostgresNIO: 34 MB
// of the host and 15–18 MB of each network driver, 195 MB in the container image. Linked once,
// the image is under the 150 MB goal (docs/deploy.md), and a process maps one copy.
//
// Every target of the root package takes third-party modules only through this product: a
// module linked statically into a product as well would give the process two copies of its
// types and global state.
import PackageDescription

let package = Package(
    name: "NovaDependencies",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "NovaDependencies", type: .dynamic, targets: ["NovaDependencies"]),
    ],
    dependencies: [
        // The CLI and plan files.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The network drivers and the PostgreSQL store.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/GraphQLSwift/GraphQL", from: "4.3.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        // `nova-host serve` / `nova-host mcp`: HTTP, lifecycle, MCP, JWT, metrics.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", .upToNextMinor(from: "0.12.1")),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        .target(
            name: "NovaDependencies",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                // The server tests' in-process client: here too, or its copy of Hummingbird
                // would be a second one in the test process.
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            // References inside the library bind to its own definitions at link time (direct
            // calls instead of PLT/GOT indirection, as they were when linked into each product);
            // nothing outside defines these symbols, so nothing is lost by not interposing them.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic"])]
        ),
    ]
)
