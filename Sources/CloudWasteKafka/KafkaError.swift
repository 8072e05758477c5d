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
                  isFatal: err == RD_KAFKA_RESP_ERR__FATAL, isRetriable: !Self.isPermanent(err), file: file, line: line)
    }

    /// Errors that waiting cannot cure: the configuration, the credentials or the cluster's
    /// authorization must change first. Everything else a client sees (brokers away, leaders
    /// moving, timeouts, full queues, topics not created yet) passes with time. A message too large
    /// for the topic is not listed: it is one record's problem, and stopping the daemon for it
    /// would stop it again at every start (that record stays unpublished and is retried).
    static func isPermanent(_ err: rd_kafka_resp_err_t) -> Bool {
        switch err {
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR__AUTHENTICATION,
             RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, RD_KAFKA_RESP_ERR__INVALID_TYPE,
             RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
             RD_KAFKA_RESP_ERR_INVALID_CONFIG:
            true
        default:
            false
        }
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(owning error: OpaquePointer, context: String, file: String = #fileID, line: Int = #line) {
        self.init(code: rd_kafka_error_code(error).rawValue,
                  message: "\(context): \(String(cString: rd_kafka_error_string(error)))",
                  isFatal: rd_kafka_error_is_fatal(error) != 0,
                  isRetriable: rd_kafka_error_is_retriable(error) != 0 || !Self.isPermanent(rd_kafka_error_code(error)),
                  file: file, line: line)
        rd_kafka_error_destroy(error)
    }

    public var description: String { "Kafka error \(code): \(message)" }
}
