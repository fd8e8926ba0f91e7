import CRdKafka

/// The librdkafka the process actually loaded (not the headers it was compiled against).
public enum LibrdkafkaVersion {
    /// The oldest librdkafka Eddy is tested with. Debian's 2.0.2 fails every request to Tansu
    /// ("ApiVersionRequest failed: Local: Read underflow"); 2.15 and 2.16 work.
    public static let minimum = (major: 2, minor: 15)

    public static var string: String { String(cString: rd_kafka_version_str()) }

    public static var components: (major: Int, minor: Int, patch: Int) {
        let v = Int(rd_kafka_version())
        return ((v >> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff)
    }

    /// Throws with a fix-it message when the loaded librdkafka is one known not to work.
    public static func checkSupported() throws {
        let (major, minor, _) = components
        if major < minimum.major || (major == minimum.major && minor < minimum.minor) {
            throw KafkaError(code: -1, message: """
                librdkafka \(string) is loaded, but Eddy needs \(minimum.major).\(minimum.minor) or newer \
                (older versions, such as Debian's 2.0.2, cannot talk to current brokers like Tansu). \
                Fix: run scripts/setup, which installs a current librdkafka into tools/librdkafka, \
                or point LD_LIBRARY_PATH at a directory holding librdkafka.so.1 of version \
                \(minimum.major).\(minimum.minor)+.
                """)
        }
    }
}
