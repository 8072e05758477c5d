import CRdKafka
public import Logging
import Synchronization

/// What the delivery callback reports to the producer.
private final class ProducerContext: Sendable {
    let failed = Atomic<Int>(0)
    let lastError = Mutex<String?>(nil)
}

/// Publishes to the output topics (cost trends, dead letters) and, in the demo and generator, to
/// the input topics. Idempotent by default so that retries keep per-key order.
/// `@unchecked Sendable`: it holds librdkafka's producer handle (a C pointer); librdkafka's
/// producer calls are thread-safe.
public final class KafkaProducer: @unchecked Sendable {
    private let rk: OpaquePointer
    private let handleContext: KafkaHandleContext
    private let context = ProducerContext()
    public let logger: Logger

    public init(config: KafkaConfig, logger: Logger) throws(KafkaError) {
        self.logger = logger
        let effective = config.forRole(.producer).withDefaults([
            "enable.idempotence": "true",
            "linger.ms": "5",
            "queue.buffering.max.messages": "1000000",
            "queue.buffering.max.kbytes": "1048576",
            "batch.num.messages": "10000",
            "message.max.bytes": "10000000",
        ])
        let conf = try effective.makeNative()
        handleContext = KafkaHandleContext(logger: logger, callbacks: context)
        configureLogging(conf, context: handleContext)
        rd_kafka_conf_set_dr_msg_cb(conf, deliveryCallback)
        rk = try makeHandle(RD_KAFKA_PRODUCER, conf: conf)
    }

    deinit {
        _ = rd_kafka_flush(rk, 5000)
        rd_kafka_destroy(rk)
    }

    /// Queues one record; waits (serving delivery reports) while the local queue is full.
    public func send(topic: String, partition: Int32? = nil, key: [UInt8]?, value: [UInt8]?,
                     headers: [(String, [UInt8])] = []) throws(KafkaError) {
        while true {
            var hdrs: OpaquePointer? = nil
            if !headers.isEmpty {
                hdrs = rd_kafka_headers_new(headers.count)
                for (name, bytes) in headers {
                    _ = bytes.withUnsafeBytes { rd_kafka_header_add(hdrs, name, -1, $0.baseAddress, $0.count) }
                }
            }
            let err = (key ?? []).withUnsafeBytes { k in
                (value ?? []).withUnsafeBytes { v in
                    CRdKafka_produce(rk, topic, partition ?? Int32(RD_KAFKA_PARTITION_UA),
                                     key == nil ? nil : k.baseAddress, key == nil ? 0 : k.count,
                                     value == nil ? nil : v.baseAddress, value == nil ? 0 : v.count,
                                     hdrs, nil)
                }
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                rd_kafka_poll(rk, 50)
                continue
            }
            throw KafkaError(err, context: "produce to \(topic)")
        }
    }

    /// Serves delivery reports without blocking.
    public func poll() { rd_kafka_poll(rk, 0) }

    /// Waits until everything queued is delivered; throws if anything failed since the last flush.
    public func flush(timeoutMs: Int32 = 30000) throws(KafkaError) {
        let err = rd_kafka_flush(rk, timeoutMs)
        let failures = context.failed.exchange(0, ordering: .relaxed)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(err, context: "flush (\(rd_kafka_outq_len(rk)) records still queued)")
        }
        if failures > 0 {
            let last = context.lastError.withLock { $0 } ?? "unknown"
            throw KafkaError(message: "\(failures) records were not delivered: \(last)", isRetriable: true)
        }
    }

    /// The partitions of `topic` according to the cluster's metadata.
    /// The next offset each partition of `topic` will give a message (its high watermark).
    public func endOffsets(of topic: String, timeoutMs: Int32 = 5000) throws(KafkaError) -> [Int32: Int64] {
        var out: [Int32: Int64] = [:]
        for partition in try partitions(of: topic, timeoutMs: timeoutMs) {
            var low: Int64 = -1
            var high: Int64 = -1
            let err = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high, timeoutMs)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "watermarks of \(topic)[\(partition)]") }
            out[partition] = high
        }
        return out
    }

    public func partitions(of topic: String, timeoutMs: Int32 = 10000) throws(KafkaError) -> [Int32] {
        try kafkaPartitions(rk, topic: topic, timeoutMs: timeoutMs)
    }
}

private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, message, opaque in
    guard let message, let opaque else { return }
    let context = KafkaHandleContext.from(opaque).callbacks as! ProducerContext
    if message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
        context.failed.add(1, ordering: .relaxed)
        let text = String(cString: rd_kafka_err2str(message.pointee.err))
        context.lastError.withLock { $0 = text }
    }
}
