import Hummingbird
import NIOCore

/// `POST /v1/events` (one JSON event) and `POST /v1/events:batch` (a JSON array or NDJSON).
///
/// - 202 `{"accepted": n}`: every valid event is on the broker (`acks=all`).
/// - 400: nothing was valid; `rejected` lists each event's index, reason (the dead-letter
///   categories: `missing_field`, `wrong_type`, `invalid_json`, …) and a message naming the
///   field. In a batch with valid events the answer is 202 with `rejected` beside `accepted`:
///   a bad event never holds back its neighbours.
/// - 413: the body is larger than the limit, or the batch has too many events.
/// - 429: the client's rate limit (`Retry-After` says when to retry).
/// - 503: the broker did not acknowledge within `publish_timeout_ms`, or the producer's
///   queue is full; `failed` lists the events to send again (`possibly_written` when the
///   broker may have one anyway), and the events in `accepted` must not be sent again.
struct IngestRoutes {
    let service: IngestService
    let limiter: RateLimiter?
    /// The rate limit's clock: seconds since the routes were made.
    private let origin = ContinuousClock.now

    init(service: IngestService, limiter: RateLimiter?) {
        self.service = service
        self.limiter = limiter
    }

    func add(to router: Router<ServeContext>) {
        router.post("/v1/events") { request, context in
            if let refusal = rateLimit(1, request, context) { return refusal }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: service.maxEventBytes)
            } catch is NIOTooManyBytesError {
                return Responses.error(.contentTooLarge, "the event is larger than \(service.maxEventBytes) bytes (the source's max_value_bytes); send at most that")
            }
            return await answer(service.ingest([Array(buffer: body)[...]]))
        }
        router.post("/v1/events:batch") { request, context in
            let limit = service.config.maxBodyBytes
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limit)
            } catch is NIOTooManyBytesError {
                return Responses.error(.contentTooLarge, "the batch is larger than \(limit) bytes (serve.ingest.max_body_bytes); split it")
            }
            let events: [ArraySlice<UInt8>]
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

    private func rateLimit(_ events: Int, _ request: Request, _ context: ServeContext) -> Response? {
        guard let limiter else { return nil }
        let client = APIKeyMiddleware.key(of: request).map { "key:" + $0 } ?? "ip:" + (context.remoteAddress?.ipAddress ?? "?")
        guard let wait = limiter.take(events, client: client, now: (ContinuousClock.now - origin).seconds) else { return nil }
        service.metrics.rateLimited.add(1, ordering: .relaxed)
        if wait == .infinity {
            return Responses.error(.tooManyRequests, "\(events) events are more than this client's rate-limit burst; send smaller batches")
        }
        let seconds = max(1, Int(wait.rounded(.up)))
        return Responses.error(.tooManyRequests, "rate limit: this client may send fewer events per second; retry in \(seconds) s",
                               headers: [.retryAfter: String(seconds)])
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
        if outcome.accepted == 0 {
            let first = outcome.rejected[0]
            return Responses.error(.badRequest, outcome.rejected.count == 1 ? first.message : "no valid event; the first: \(first.message)", extra: members)
        }
        return Responses.json(.accepted, .object(members))
    }
}
