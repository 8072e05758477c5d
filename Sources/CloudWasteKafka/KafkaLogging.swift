package import CRdKafka
import CloudWasteSecrets
package import Logging

/// What a librdkafka handle keeps in its opaque pointer: the logger that its log callback uses,
/// and what the owning Swift type needs inside its own callbacks (`callbacks`). The owner keeps
/// it alive as long as the handle.
package final class KafkaHandleContext: Sendable {
    package let logger: Logger
    package let callbacks: (any AnyObject & Sendable)?

    package init(logger: Logger, callbacks: (any AnyObject & Sendable)? = nil) {
        self.logger = logger
        self.callbacks = callbacks
    }

    /// The context behind a callback's opaque pointer.
    package static func from(_ opaque: UnsafeMutableRawPointer) -> KafkaHandleContext {
        Unmanaged<KafkaHandleContext>.fromOpaque(opaque).takeUnretainedValue()
    }
}

/// Routes librdkafka's log lines (syslog levels) to swift-log.
let kafkaLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, facility, message in
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
    let context = KafkaHandleContext.from(opaque)
    let text = SecretRedactor.redact(message.map { String(cString: $0) } ?? "")
    let fac = facility.map { String(cString: $0) } ?? ""
    let swiftLevel: Logger.Level
    switch level {
    case ...3: swiftLevel = .error
    case 4: swiftLevel = .warning
    case 5, 6: swiftLevel = .info
    default: swiftLevel = .debug
    }
    context.logger.log(level: swiftLevel, "\(text)", metadata: ["librdkafka.facility": "\(fac)"])
}

package func configureLogging(_ conf: OpaquePointer, context: KafkaHandleContext) {
    rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
    rd_kafka_conf_set_log_cb(conf, kafkaLogCallback)
}

package func makeHandle(_ type: rd_kafka_type_t, conf: OpaquePointer) throws(KafkaError) -> OpaquePointer {
    var errbuf = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errbuf, errbuf.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(message: "cannot create Kafka client: \(String(cString: errbuf))")
    }
    return rk
}
