import Foundation
import Synchronization
import HostSupport

/// The outcome of one policy reload (SIGHUP, `POST /v1/policy/reload`).
public struct PolicyReloadReport: Sendable, CustomStringConvertible {
    public enum Outcome: String, Sendable {
        /// A different profile was read, checked and now decides new runs.
        case reloaded
        /// The file holds the profile already in use (same hash).
        case unchanged
        /// The file could not be read or is invalid: the previous profile stays in use.
        case failed
    }
    public var outcome: Outcome
    /// The hash of the profile in use after the reload.
    public var hash: String
    /// The hash in use before it.
    public var previousHash: String
    /// Why the reload failed (`outcome == .failed`).
    public var error: String?

    public var description: String {
        switch outcome {
        case .reloaded: return "policy reloaded: \(previousHash) -> \(hash)"
        case .unchanged: return "policy unchanged (\(hash))"
        case .failed: return "policy reload failed, still using \(hash): \(error ?? "unknown error")"
        }
    }
}

/// What `GET /v1/policy` shows: the profile in use and how the last reload went.
public struct PolicyStatus: Sendable {
    /// The policy file, nil when none was found (an empty profile denies everything).
    public var file: String?
    /// The hash of the profile new runs start with.
    public var hash: String
    /// When the profile in use was loaded (ISO 8601).
    public var loadedAt: String
    /// The error of the last reload when it failed; nil after a successful or unchanged one.
    public var reloadError: String?
}

/// Serializes policy reloads and remembers their outcome.
package final class PolicyReloader: Sendable {
    private let status: Mutex<PolicyStatus>
    private let serial = Mutex(())

    package init(file: String?, profile: PolicyProfile) {
        status = Mutex(PolicyStatus(file: file, hash: profile.hash, loadedAt: Timestamps.now(), reloadError: nil))
    }

    package var current: PolicyStatus { status.withLock { $0 } }

    /// Reads and checks the file, runs `check` (extra problems a caller knows of, such as API
    /// keys whose role the new profile lacks), then swaps the profile into `engine`. On any
    /// problem the engine keeps its profile and the error is remembered.
    package func reload(into engine: PolicyEngine, check: (PolicyProfile) -> [String]) -> PolicyReloadReport {
        serial.withLock { _ in
            let previous = engine.profile.hash
            let file = status.withLock { $0.file }
            let outcome: PolicyReloadReport
            do throws(PolicyError) {
                let profile = try PolicyProfile.load(file)
                if let problem = check(profile).first { throw PolicyError("\(file ?? "policy"): \(problem)") }
                if profile.hash == previous {
                    outcome = PolicyReloadReport(outcome: .unchanged, hash: previous, previousHash: previous)
                } else {
                    engine.replaceProfile(profile)
                    outcome = PolicyReloadReport(outcome: .reloaded, hash: profile.hash, previousHash: previous)
                }
            } catch {
                outcome = PolicyReloadReport(outcome: .failed, hash: previous, previousHash: previous, error: error.message)
            }
            status.withLock { s in
                s.reloadError = outcome.error
                if outcome.outcome == .reloaded { s.hash = outcome.hash; s.loadedAt = Timestamps.now() }
            }
            return outcome
        }
    }
}
