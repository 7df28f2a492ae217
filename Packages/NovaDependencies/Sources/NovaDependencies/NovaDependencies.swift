// Intentionally empty: this module exists so that its product, libNovaDependencies.so, links
// the third-party packages listed in Package.swift once. Targets of nova-host import those
// modules (NIOCore, Hummingbird, PostgresNIO, …) directly; see Packages/NovaDependencies/Package.swift.
