package import CRdKafka
import CloudWasteSecrets

/// A librdkafka failure with its code and whether it is worth retrying, plus where we saw it.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var isFatal: Bool
    public var isRetriable: Bool
    public var file: String
    public var line: Int

    public init(code: Int32 = -1, message: String, isFatal: Bool = false, isRetriable: Bool = false,
                file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = SecretRedactor.redact(message)  // librdkafka echoes property values
        self.isFatal = isFatal
        self.isRetriable = isRetriable
        self.file = file
        self.line = line
    }

    package init(_ err: rd_kafka_resp_err_t, context: String, file: String = #fileID, line: Int = #line) {
        self.init(code: err.rawValue, message: "\(context): \(String(cString: rd_kafka_err2str(err)))",
                  isRetriable: err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__TIMED_OUT
                      || err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
                  file: file, line: line)
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(owning error: OpaquePointer, context: String, file: String = #fileID, line: Int = #line) {
        self.init(code: rd_kafka_error_code(error).rawValue,
                  message: "\(context): \(String(cString: rd_kafka_error_string(error)))",
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  isRetriable: rd_kafka_error_is_retriable(error) != 0,
                  file: file, line: line)
        rd_kafka_error_destroy(error)
    }

    public var description: String { "Kafka error \(code): \(message)" }
}
