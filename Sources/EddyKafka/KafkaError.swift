import CRdKafka

/// An error reported by librdkafka, carrying its code and its own message.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    /// The client can do nothing more (for a transactional producer: it was fenced by a
    /// newer instance with the same transactional.id, or the broker lost its state).
    public let isFatal: Bool
    /// The current transaction must be aborted before a new one begins.
    public let requiresAbort: Bool
    /// The same call may succeed if made again.
    public let isRetriable: Bool

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
        isFatal = false
        requiresAbort = false
        isRetriable = false
    }

    public init(_ err: rd_kafka_resp_err_t, context: String) {
        self.init(code: err.rawValue, message: "\(context): \(String(cString: rd_kafka_err2str(err)))")
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer, context: String) {
        code = rd_kafka_error_code(error).rawValue
        message = "\(context): \(String(cString: rd_kafka_error_string(error)))"
        isFatal = rd_kafka_error_is_fatal(error) != 0
        requiresAbort = rd_kafka_error_txn_requires_abort(error) != 0
        isRetriable = rd_kafka_error_is_retriable(error) != 0
        rd_kafka_error_destroy(error)
    }

    /// Throws (and frees) a non-nil `rd_kafka_error_t`.
    static func check(_ error: OpaquePointer?, _ context: @autoclosure () -> String) throws {
        if let error { throw KafkaError(consuming: error, context: context()) }
    }

    public var description: String { message }

    /// A local error of an unreachable, restarting or slow broker (transport failure, all
    /// brokers down, time-outs), which a later call may get past.
    public var isTransportFailure: Bool {
        [RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__TIMED_OUT,
         RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
         RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_NOT_COORDINATOR].contains { $0.rawValue == code }
    }

    static func check(_ err: rd_kafka_resp_err_t, _ context: @autoclosure () -> String) throws {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: context()) }
    }
}
