import Host
import Logging
import ServiceLifecycle

/// Runs a `TriggerDispatcher` beside the worker until graceful shutdown (messages it leased
/// whose goals were not submitted are redelivered after their visibility timeout).
public struct TriggerService: Service {
    let dispatcher: TriggerDispatcher
    let logger: Logger

    public init(dispatcher: TriggerDispatcher, logger: Logger) {
        self.dispatcher = dispatcher
        self.logger = logger
    }

    public func run() async throws {
        let logger = self.logger
        await cancelWhenGracefulShutdown {
            await dispatcher.run(log: { logger.warning("\($0)") })
        }
    }
}
