import Host
import Hummingbird
import JSON

extension NovaServer {
    /// `GET /v1/jobs`, `GET /v1/jobs/{id}`, `POST /v1/jobs/{id}/cancel`, `POST /v1/jobs/{id}/retry`,
    /// `DELETE /v1/jobs/{id}`: the durable queue. Callers see and cancel their own run jobs;
    /// admin roles see every job and alone may retry or discard.
    func addJobRoutes(_ router: Router<ServerContext>) {
        on(router, .get, "/v1/jobs") { [self] request, context in
            let caller = try context.requireCaller()
            _ = try requireQueue()
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            var states: [JobState] = []
            if let s = q.get("state") {
                for name in s.split(separator: ",") {
                    guard let state = JobState(rawValue: String(name)) else {
                        throw APIError.badRequest("invalid_parameter", "state must be one or more of \(JobState.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    states.append(state)
                }
            }
            for (name, value) in [("queue", q.get("queue")), ("kind", q.get("kind"))] {
                if let value, !JobQueueLimits.isValidName(value) {
                    throw APIError.badRequest("invalid_parameter", "\(name) must be 1–64 of a-z 0-9 _ - .")
                }
            }
            let (jobs, total) = try await visibleJobs(JobFilter(states: states, queue: q.get("queue"), kind: q.get("kind")),
                                                      limit: limit, offset: offset, caller: caller)
            return JSONIO.response(Self.page(jobs.map(\.json), limit, offset, total))
        }

        on(router, .get, "/v1/jobs/{id}") { [self] _, context in
            let job = try await visibleJob(context)
            return JSONIO.response(job.json)
        }

        on(router, .post, "/v1/jobs/{id}/cancel") { [self] _, context in
            let job = try await visibleJob(context)
            if runs.cancel(runId: job.id) == .cancelling { context.logger.info("run cancel requested", metadata: ["run_id": .string(job.id)]) }
            let outcome = try await queueCall { try await requireQueue().cancelJob(id: job.id) }
            switch outcome {
            case .cancelled: return JSONIO.response(["id": .string(job.id), "state": "cancelled"], status: .accepted)
            case .cancelling: return JSONIO.response(["id": .string(job.id), "state": "cancelling"], status: .accepted)
            case .alreadyFinished(let s):
                throw APIError(.conflict, "already_finished", "job \(job.id) already finished (\(s.rawValue))",
                               extra: ["id": .string(job.id), "state": .string(s.rawValue)])
            case .notFound: throw APIError.notFound("no job \(job.id)")
            }
        }

        on(router, .post, "/v1/jobs/{id}/retry") { [self] _, context in
            JSONIO.response(try await retryJob(context).json)
        }

        on(router, .delete, "/v1/jobs/{id}") { [self] _, context in
            try await discardJob(context)
            return Response(status: .noContent)
        }
    }

    /// The jobs matching `filter` that `caller` may see (as `GET /v1/jobs` lists them): admin
    /// roles every job, others their own runs' jobs only; one page of them, and how many in all.
    func visibleJobs(_ filter: JobFilter, limit: Int, offset: Int, caller: Caller) async throws -> (jobs: [Job], total: Int) {
        let queue = try requireQueue()
        var filter = filter
        do {
            if caller.isAdmin {
                return (try await queue.listJobs(filter, limit: limit, offset: offset), try await queue.countJobs(filter))
            }
            // Others see their own runs' jobs only.
            if filter.kind != nil && filter.kind != RunJob.kind { return ([], 0) }
            filter.kind = RunJob.kind
            let own = try await queue.listJobs(filter, limit: 10_000, offset: 0).filter { $0.payload["principal"]?.stringValue == caller.principal }
            return (Array(own.dropFirst(offset).prefix(limit)), own.count)
        } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be read: \(error)")
        }
    }

    /// `POST /v1/jobs/{id}/retry` (and the dashboard's Retry): the job named by the path,
    /// admin roles only, back to `available`; audited.
    func retryJob(_ context: ServerContext) async throws -> Job {
        let job = try await visibleJob(context, admin: true)
        do {
            guard let retried = try await requireQueue().retryJob(id: job.id) else { throw APIError.notFound("no job \(job.id)") }
            await host.audit("job.retry", target: job.id, detail: ["kind": .string(job.kind), "queue": .string(job.queue)])
            context.logger.notice("job retried", metadata: ["job_id": .string(job.id)])
            return retried
        } catch let e as JobQueueError {
            throw APIError(.conflict, "job_not_retryable", e.message, extra: ["id": .string(job.id), "state": .string(job.state.rawValue)])
        } catch let e as APIError { throw e } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be reached: \(error)")
        }
    }

    /// `DELETE /v1/jobs/{id}` (and the dashboard's Discard): a finished job named by the path
    /// removed, admin roles only; audited.
    func discardJob(_ context: ServerContext) async throws {
        let job = try await visibleJob(context, admin: true)
        do {
            guard try await requireQueue().discardJob(id: job.id) else { throw APIError.notFound("no job \(job.id)") }
            await host.audit("job.discard", target: job.id, detail: ["kind": .string(job.kind), "queue": .string(job.queue)])
            context.logger.notice("job discarded", metadata: ["job_id": .string(job.id)])
        } catch let e as JobQueueError {
            throw APIError(.conflict, "job_not_finished", e.message, extra: ["id": .string(job.id), "state": .string(job.state.rawValue)])
        } catch let e as APIError { throw e } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be reached: \(error)")
        }
    }

    /// One page of a listing, under `key`, with its place in the whole.
    static func page(_ items: [JSONValue], _ limit: Int, _ offset: Int, _ total: Int, key: String = "jobs") -> JSONValue {
        .object([key: .array(items), "limit": .int(limit), "offset": .int(offset), "total": .int(total),
                 "next_offset": offset + limit < total ? .int(offset + limit) : .null])
    }

    func requireQueue() throws -> any JobQueueStore {
        guard let queue else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no job queue (it was started without a data directory)")
        }
        return queue
    }

    func queueCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as APIError { throw e } catch {
            throw APIError(.serviceUnavailable, "store_unavailable", "the job queue cannot be reached: \(error)")
        }
    }

    /// The job named by the path, if the caller may see it (404 otherwise); with `admin`,
    /// only admin roles may act on it (403).
    func visibleJob(_ context: ServerContext, admin: Bool = false) async throws -> Job {
        let caller = try context.requireCaller()
        let id = context.parameters.get("id") ?? ""
        let queue = try requireQueue()
        guard let job = try await queueCall({ try await queue.job(id: id) }),
              caller.isAdmin || (job.kind == RunJob.kind && job.payload["principal"]?.stringValue == caller.principal)
        else { throw APIError.notFound("no job \(id)") }
        if admin && !caller.isAdmin {
            throw APIError(.forbidden, "forbidden", "retrying or discarding a job needs an admin role (\(config.adminRoles.joined(separator: ", ")))")
        }
        return job
    }
}
