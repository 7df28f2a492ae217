// The host facade: `import Host` gives the CLI, the server and the tests every host target.
// The targets below never import Host; Package.swift shows how they depend on each other.
@_exported import Drivers
@_exported import Episodes
@_exported import HostSchemas
@_exported import HostSupport
@_exported import Messaging
@_exported import Plans
@_exported import Policy
@_exported import Runs
@_exported import Store
@_exported import Templates
@_exported import Threads
