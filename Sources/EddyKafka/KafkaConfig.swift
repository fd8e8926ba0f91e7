import CRdKafka

/// librdkafka configuration properties, applied in order to a fresh `rd_kafka_conf_t`.
public struct KafkaConfig: Sendable {
    public var properties: [String: String]

    public init(_ properties: [String: String] = [:]) {
        self.properties = properties
    }

    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Properties whose values are secrets (SASL and TLS key passwords, OAuth secrets).
    public static func isSecret(_ key: String) -> Bool {
        key.contains("password") || key.contains("secret") || key == "sasl.oauthbearer.config"
    }

    /// Builds an `rd_kafka_conf_t`; the caller owns it until it hands it to `rd_kafka_new`.
    func makeNative() throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errstr, errstr.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let shown = Self.isSecret(key) ? "••••" : value  // a secret never reaches a log or an error
                throw KafkaError(code: -1, message: "librdkafka property \(key)=\(shown): \(String(errorBuffer: errstr))")
            }
        }
        return conf
    }
}

/// Creates an `rd_kafka_t`, taking ownership of `conf` (librdkafka frees it on success; we do on failure).
func makeClient(_ type: rd_kafka_type_t, _ conf: OpaquePointer) throws -> OpaquePointer {
    var errstr = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(code: -1, message: "rd_kafka_new: \(String(errorBuffer: errstr))")
    }
    return handle
}

extension String {
    /// Reads a NUL-terminated error buffer filled in by a C call.
    init(errorBuffer: [CChar]) {
        self = errorBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
