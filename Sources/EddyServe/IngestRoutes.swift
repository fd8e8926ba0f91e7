import Hummingbird
import NIOCore

/// `POST /v1/events` (one JSON event) and `POST /v1/events:batch` (a JSON array or NDJSON).
///
/// - 202 `{"accepted": n}`: every valid event is on the broker (`acks=all`).
/// - 400: nothing was valid; `rejected` lists each event's index, reason (the dead-letter
///   categories: `missing_field`, `wrong_type`, `invalid_json`, …) and a message naming the
///   field. In a batch with valid events the answer is 202 with `rejected` beside `accepted`:
///   a bad event never holds back its neighbours.
/// - 413: the body is larger than the limit, or the batch has more events than
///   `max_batch_events` or than the client's rate-limit burst.
/// - 503 at once: more than `max_inflight_bytes` of requests are already waiting.
/// - 429: the client's rate limit (`Retry-After` says when to retry).
/// - 503: the broker did not acknowledge within `publish_timeout_ms`, or the producer's
///   queue is full; `failed` lists the events to send again (`possibly_written` when the
///   broker may have one anyway), and the events in `accepted` must not be sent again.
struct IngestRoutes {
    let service: IngestService
    let limiter: RateLimiter?
    /// The rate limit's clock: seconds since the routes were made.
    private let origin = ContinuousClock.now

    /// Whether API keys are checked (then a client is its key, else its address).
    let keyedClients: Bool

    private let budget: InFlightBudget

    init(service: IngestService, limiter: RateLimiter?, keyedClients: Bool) {
        self.service = service
        self.limiter = limiter
        self.keyedClients = keyedClients
        budget = InFlightBudget(limit: service.config.maxInflightBytes)
    }

    func add(to router: Router<ServeContext>) {
        router.post("/v1/events") { request, context in
            if let refusal = rateLimit(1, request, context) { return refusal }
            let reserved = reservation(request, limit: service.maxEventBytes)
            guard budget.reserve(reserved) else { return overBudget() }
            defer { budget.release(reserved) }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: service.maxEventBytes)
            } catch is NIOTooManyBytesError {
                return Responses.error(.contentTooLarge, "the event is larger than \(service.maxEventBytes) bytes (the source's max_value_bytes); send at most that")
            }
            return await answer(service.ingest([EventBatch.Event(index: 0, bytes: Array(buffer: body)[...])]))
        }
        router.post("/v1/events:batch") { request, context in
            let limit = service.config.maxBodyBytes
            let reserved = reservation(request, limit: limit)
            guard budget.reserve(reserved) else { return overBudget() }
            defer { budget.release(reserved) }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limit)
            } catch is NIOTooManyBytesError {
                return Responses.error(.contentTooLarge, "the batch is larger than \(limit) bytes (serve.ingest.max_body_bytes); split it")
            }
            let events: [EventBatch.Event]
            do {
                events = try EventBatch.split(Array(buffer: body))
            } catch let error as EventBatch.Malformed {
                return Responses.error(.badRequest, "the body is neither a JSON array of events nor NDJSON: \(error.message)")
            }
            guard !events.isEmpty else { return Responses.error(.badRequest, "the batch has no events") }
            guard events.count <= service.config.maxBatchEvents else {
                return Responses.error(.contentTooLarge, "the batch has \(events.count) events, more than \(service.config.maxBatchEvents) (serve.ingest.max_batch_events); split it")
            }
            if let refusal = rateLimit(events.count, request, context) { return refusal }
            return await answer(service.ingest(events))
        }
    }

    /// What a request may hold: its Content-Length (a body is refused beyond `limit`), or
    /// the limit when it does not say; the copies made while validating count twice.
    /// At most the whole budget, so that any one request fits when nothing else is in flight.
    private func reservation(_ request: Request, limit: Int) -> Int {
        min(budget.limit, 2 * min(limit, request.headers[.contentLength].flatMap { Int($0) } ?? limit))
    }

    private func overBudget() -> Response {
        Responses.error(.serviceUnavailable, "serve holds \(budget.inUse) bytes of requests waiting for the broker (serve.ingest.max_inflight_bytes \(budget.limit)); retry shortly",
                        headers: [.retryAfter: "1"])
    }

    private func rateLimit(_ events: Int, _ request: Request, _ context: ServeContext) -> Response? {
        guard let limiter else { return nil }
        // A key names the client only when keys are checked: otherwise any client could send
        // a new one with each request and get a full bucket every time.
        let key = keyedClients ? APIKeyMiddleware.key(of: request) : nil
        let client = key.map { "key:" + $0 } ?? "ip:" + (context.remoteAddress?.ipAddress ?? "?")
        guard let wait = limiter.take(events, client: client, now: (ContinuousClock.now - origin).seconds) else { return nil }
        if wait == .infinity {
            return Responses.error(.contentTooLarge, "the batch has \(events) events, more than this client's rate-limit burst (serve.rate_limit.burst); split it")
        }
        service.metrics.rateLimited.add(1, ordering: .relaxed)
        let seconds = Int(min(wait, 3600).rounded(.up))
        return Responses.error(.tooManyRequests, "rate limit: this client sent more events than serve.rate_limit allows; retry in \(max(1, seconds)) s",
                               headers: [.retryAfter: String(max(1, seconds))])
    }

    private func answer(_ outcome: IngestService.Outcome) -> Response {
        var members: [(String, JSONValue)] = [("accepted", .int(outcome.accepted))]
        if !outcome.rejected.isEmpty {
            members.append(("rejected", .array(outcome.rejected.map {
                .object([("index", .int($0.index)), ("reason", .string($0.reason)), ("message", .string($0.message))])
            })))
        }
        if !outcome.failed.isEmpty {
            members.append(("failed", .array(outcome.failed.map {
                .object([("index", .int($0.index)), ("reason", .string($0.reason)), ("possibly_written", .bool($0.possiblyWritten))])
            })))
            let message = "the broker did not acknowledge \(outcome.failed.count) event(s) (\(outcome.failed[0].reason)); send those again"
            return Responses.error(.serviceUnavailable, message, headers: [.retryAfter: "1"], extra: members)
        }
        if outcome.accepted == 0, let first = outcome.rejected.first {
            return Responses.error(.badRequest, outcome.rejected.count == 1 ? first.message : "no valid event; the first: \(first.message)", extra: members)
        }
        return Responses.json(.accepted, .object(members))
    }
}
