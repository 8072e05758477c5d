import CRdKafka
public import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Told about partition ownership changes. Called on the polling thread, inside `poll` or `close`,
/// before librdkafka moves on: whatever must happen before partitions go away happens here.
public protocol KafkaRebalanceListener: AnyObject {
    /// Returns where each partition starts (`KafkaOffset.stored` lets Kafka decide) and which
    /// partitions start paused (their owner could not be established yet).
    func partitionsAssigned(_ partitions: [TopicPartition]) -> (offsets: [TopicPartition: Int64], paused: Set<TopicPartition>)
    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool)
}

/// What the rebalance and error callbacks share with the consumer. `@unchecked Sendable`:
/// `listener` and `assignment` are touched only on the polling thread (librdkafka runs the
/// callbacks inside `poll`); the rest is atomic or locked.
private final class ConsumerContext: @unchecked Sendable {
    weak var listener: (any KafkaRebalanceListener)?
    var assignment: Set<TopicPartition> = []
    /// The latest client-level error (brokers down, authentication, unknown topic), for diagnosis.
    let lastError = Mutex<String?>(nil)
    /// Client-level errors so far, for a metric.
    let errors = Atomic<Int>(0)
    /// librdkafka said every broker is down; cleared when a broker answers again.
    let allBrokersDown = Atomic<Bool>(false)
}

/// A consumer-group member over librdkafka with manual offsets: nothing is auto-committed, the
/// application says where each partition starts (from PostgreSQL) and commits offsets to Kafka
/// only for lag tools. One thread polls; all calls come from that thread.
/// `@unchecked Sendable`: it holds librdkafka's consumer handle (a C pointer), and is handed to
/// the thread that then owns it. The one other user of the handle is the fetcher waker's queue
/// (`FetcherWaker`), which makes one thread-safe librdkafka call and is finished before the handle
/// is destroyed.
public final class KafkaConsumer: @unchecked Sendable {
    private let rk: OpaquePointer
    private let handleContext: KafkaHandleContext
    private let context: ConsumerContext
    private var closed = false
    /// Topic names by handle, read and written by `poll` only (one polling thread per consumer).
    private var topicNames: [OpaquePointer: (name: String, cName: [CChar])] = [:]
    /// How many bytes the last poll copied: the next poll's buffer starts with that room, instead
    /// of growing from empty by doubling (a copy of everything so far at each step). After a large
    /// poll a small one holds that room (at most `maxBytes` and an eighth) until its messages are
    /// gone, as the doubling's slack did before.
    private var lastPollBytes = 0
    /// When and how to wake librdkafka's fetchers, and the local queue whose length says when;
    /// nil where librdkafka wakes them itself (2.3.0 and later).
    private var fetcherWake: FetcherWake?
    private let fetcherWaker: FetcherWaker?
    private let localQueue: OpaquePointer?
    /// Whether `poll` reads each message's headers (see `init`).
    private let readsHeaders: Bool
    public let logger: Logger

    /// What the consumer sets unless the configuration says otherwise, for the librdkafka loaded.
    static func defaults(for librdkafka: LibrdkafkaVersion) -> [String: String] {
        var defaults = [
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": "10000",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.wait.max.ms": "100",
            // Bounded prefetch: these limits, plus `fetch.max.bytes` per broker, are the memory
            // librdkafka holds however many partitions are assigned. In librdkafka 2.0 they apply
            // to the one consumer queue that every partition's fetches feed. 32 MB is about half a
            // second of consumption (45,000 records of 700 B); a larger queue measured faster
            // before the fetchers were woken (`FetcherWake`) but broke the memory bound at 1M
            // records (docs/performance.md, fourth pass). The record count is not the limit that
            // trips first.
            "queued.max.messages.kbytes": "32768",
            "queued.min.messages": "500000",
            "fetch.max.bytes": "16777216",
        ]
        if !librdkafka.fetchersSleepOnFullQueue {
            // From 2.3.0 the wait of a partition that found the queue over those limits is
            // `fetch.queue.backoff.ms`, a second by default: with a queue of about half a second of
            // consumption, a second's wait drains it and the consumer then waits for Kafka
            // (a 200k-record backlog: 0.8–0.9 s of waiting and 51,000 records/s with 1,000 ms,
            // 0.35–0.4 s and 65,000–69,000 with 100; docs/performance.md). A tenth of a second
            // leaves most of the queue in place and re-checks ten times a second.
            defaults["fetch.queue.backoff.ms"] = "100"
        }
        return defaults
    }

    /// `readsHeaders: false` leaves every polled message's `headers` nil. librdkafka 2.0 parses
    /// a message's headers when asked, and a message of a v2 record batch carries a header count
    /// even when it has no header: asking costs two heap allocations (a shadow buffer, zeroed, and
    /// its segment) per message, whatever it holds. The pipeline reads no header of the data
    /// topics, so its consumer does not ask; the dead-letter readers do.
    public init(config: KafkaConfig, logger: Logger, readsHeaders: Bool = true) throws(KafkaError) {
        self.logger = logger
        self.readsHeaders = readsHeaders
        let effective = config.forRole(.consumer).withDefaults(Self.defaults(for: .current))
        let conf = try effective.makeNative()
        context = ConsumerContext()
        handleContext = KafkaHandleContext(logger: logger, callbacks: context)
        configureLogging(conf, context: handleContext)
        rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
        rk = try makeHandle(RD_KAFKA_CONSUMER, conf: conf)
        rd_kafka_poll_set_consumer(rk)
        if LibrdkafkaVersion.current.fetchersSleepOnFullQueue {
            // librdkafka's calls are thread-safe, and `finish()` runs before the handle is destroyed.
            nonisolated(unsafe) let handle = rk
            fetcherWaker = FetcherWaker { requestEndOffsets(handle, $0) }
            fetcherWake = FetcherWake(limitBytes: (Int(effective["queued.max.messages.kbytes"] ?? "") ?? 65_536) * 1024,
                                      limitMessages: Int(effective["queued.min.messages"] ?? "") ?? 100_000)
            localQueue = rd_kafka_queue_get_consumer(rk)
        } else {
            fetcherWaker = nil
            localQueue = nil
        }
    }

    deinit {
        if !closed { close(timeoutMs: 2000) }
        fetcherWaker?.finish()
        if let localQueue { rd_kafka_queue_destroy(localQueue) }
        rd_kafka_destroy_flags(rk, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    public func setRebalanceListener(_ listener: any KafkaRebalanceListener) {
        context.listener = listener
    }

    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = TopicPartitionList(capacity: topics.count)
        for topic in topics { list.add(TopicPartition(topic: topic, partition: Int32(RD_KAFKA_PARTITION_UA))) }
        let err = rd_kafka_subscribe(rk, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "subscribe") }
    }

    /// Manual assignment without a group (replay, benchmark).
    public func assign(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        let list = TopicPartitionList(capacity: offsets.count)
        for (tp, offset) in offsets.sorted(by: { $0.key < $1.key }) { list.add(tp, offset: offset) }
        let err = rd_kafka_assign(rk, list.pointer)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "assign") }
        context.assignment = Set(offsets.keys)
    }

    /// How many times the consumer woke librdkafka's fetchers (`FetcherWake`); 0 from librdkafka 2.3.0.
    public var fetcherWakes: Int { fetcherWaker?.sent ?? 0 }

    /// The partitions this member owns now.
    public var assignment: Set<TopicPartition> { context.assignment }

    /// The latest error librdkafka reported for this client (no broker reachable, authentication
    /// failed, unknown topic), to say why nothing is assigned.
    public var diagnosis: String? { context.lastError.withLock { $0 } }

    /// How many client-level errors librdkafka reported so far (brokers unreachable, transport
    /// failures, authentication): a broker outage shows as a run of them.
    public var clientErrors: Int { context.errors.load(ordering: .relaxed) }

    /// Whether a broker answers. librdkafka reports when every broker is down but not when one
    /// comes back, so while they are down this asks the cluster for metadata (a round trip of at
    /// most `probeTimeoutMs`); an answer means they are back. (A polled message does not: it may have
    /// been fetched before they went down.)
    public func brokersReachable(probeTimeoutMs: Int32 = 200) -> Bool {
        guard context.allBrokersDown.load(ordering: .relaxed) else { return true }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 0, nil, &metadata, probeTimeoutMs)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { return false }
        context.allBrokersDown.store(false, ordering: .relaxed)
        return true
    }

    /// Up to `maxMessages` records: waits at most `timeoutMs` for the first, then takes what is
    /// already fetched. Serves rebalance callbacks. Per-partition errors are logged, not thrown,
    /// except fatal ones.
    /// Up to `maxMessages` messages, and no more once their keys and values reach `maxBytes` (the
    /// poll's messages share one buffer, held until the last of them is gone). With librdkafka
    /// before 2.3.0 it also wakes the fetchers while the local queue is near its limits (`FetcherWake`).
    public func poll(maxMessages: Int, maxBytes: Int = 8 << 20, timeoutMs: Int32) throws(KafkaError) -> [KafkaMessage] {
        /// A polled message before its bytes are in the shared buffer.
        struct Polled {
            var topic: String
            var partition: Int32
            var offset: Int64
            var key: Range<Int>?
            var value: Range<Int>?
            var timestampMs: Int64
            var headers: [String: [UInt8]]?
        }
        var polled: [Polled] = []
        polled.reserveCapacity(min(maxMessages, 4096))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(lastPollBytes + lastPollBytes / 8, maxBytes + (1 << 20)))
        defer { lastPollBytes = bytes.count }
        var wait = timeoutMs
        while polled.count < maxMessages && bytes.count < maxBytes {
            guard let m = rd_kafka_consumer_poll(rk, wait) else { break }
            wait = 0
            defer { rd_kafka_message_destroy(m) }
            let msg = m.pointee
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { continue }
                let error = KafkaError(msg.err, context: "consume")
                if msg.err == RD_KAFKA_RESP_ERR__FATAL { throw error }
                context.lastError.withLock { $0 = error.message }
                logger.warning("Kafka consumer error", metadata: ["error": "\(error)"])
                continue
            }
            var tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let ts = rd_kafka_message_timestamp(m, &tstype)
            func append(_ p: UnsafeMutableRawPointer?, _ count: Int) -> Range<Int>? {
                guard let p else { return nil }
                let start = bytes.count
                bytes.append(contentsOf: UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: count))
                return start..<bytes.count
            }
            polled.append(Polled(topic: topicName(msg.rkt), partition: msg.partition, offset: msg.offset,
                                 key: append(msg.key, msg.key_len), value: append(msg.payload, msg.len),
                                 timestampMs: ts, headers: readsHeaders ? Self.headers(of: m) : nil))
        }
        if let fetcherWaker, let localQueue,
           fetcherWake?.shouldWake(polledMessages: polled.count, polledBytes: bytes.count,
                                   queuedMessages: Int(rd_kafka_queue_length(localQueue)),
                                   requestOutstanding: fetcherWaker.isOutstanding, nowMs: monotonicMs()) == true {
            fetcherWaker.wake(context.assignment)
        }
        let shared = PolledBytes(bytes)
        return polled.map {
            KafkaMessage(topic: $0.topic, partition: $0.partition, offset: $0.offset, bytes: shared, key: $0.key, value: $0.value,
                         timestampMs: $0.timestampMs, headers: $0.headers)
        }
    }

    /// The topic's name, one String per topic handle (not one per message).
    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        let cName = rd_kafka_topic_name(rkt)!
        if let cached = topicNames[rkt], strcmp(cached.cName, cName) == 0 { return cached.name }
        let name = String(cString: cName)
        topicNames[rkt] = (name, Array(UnsafeBufferPointer(start: cName, count: strlen(cName) + 1)))
        return name
    }

    private static func headers(of m: UnsafeMutablePointer<rd_kafka_message_t>) -> [String: [UInt8]]? {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return nil }
        var out: [String: [UInt8]] = [:]
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let name { out[String(cString: name)] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? [] }
            index += 1
        }
        return out
    }

    public func pause(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = TopicPartitionList(capacity: partitions.count)
        for tp in partitions { list.add(tp) }
        _ = rd_kafka_pause_partitions(rk, list.pointer)
    }

    public func resume(_ partitions: [TopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = TopicPartitionList(capacity: partitions.count)
        for tp in partitions { list.add(tp) }
        _ = rd_kafka_resume_partitions(rk, list.pointer)
    }

    /// Moves an assigned partition's position (after a fenced commit, to PostgreSQL's offset).
    public func seek(_ tp: TopicPartition, to offset: Int64, timeoutMs: Int32 = 5000) throws(KafkaError) {
        try seek([tp: offset], timeoutMs: timeoutMs)
    }

    /// Moves several assigned partitions at once; `timeoutMs: 0` seeks asynchronously. A logical
    /// offset (the beginning or the end) is looked up first, for up to 2 s even then, and sought
    /// as the offset it stands for (`withConcreteOffsets`). Returns the offsets sought.
    @discardableResult
    public func seek(_ offsets: [TopicPartition: Int64], timeoutMs: Int32 = 5000) throws(KafkaError) -> [TopicPartition: Int64] {
        guard !offsets.isEmpty else { return [:] }
        let offsets = resolvingLogicalOffsets(offsets)
        let list = TopicPartitionList(capacity: offsets.count)
        for (tp, offset) in offsets { list.add(tp, offset: offset) }
        if let error = rd_kafka_seek_partitions(rk, list.pointer, timeoutMs) {
            throw KafkaError(owning: error, context: "seek")
        }
        // An asynchronous seek reports "in progress" per partition: that is success here.
        for (tp, _, err) in list.elements where err != RD_KAFKA_RESP_ERR_NO_ERROR && !(timeoutMs == 0 && err == RD_KAFKA_RESP_ERR__IN_PROGRESS) {
            throw KafkaError(err, context: "seek \(tp)")
        }
        return offsets
    }

    /// Commits next-offsets to Kafka so that lag tools see progress. Not the source of truth.
    public func commit(_ offsets: [TopicPartition: Int64]) {
        guard !offsets.isEmpty else { return }
        let list = TopicPartitionList(capacity: offsets.count)
        for (tp, offset) in offsets { list.add(tp, offset: offset) }
        let err = rd_kafka_commit(rk, list.pointer, 1)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
            logger.debug("Kafka offset commit failed", metadata: ["error": "\(KafkaError(err, context: "commit"))"])
        }
    }

    /// librdkafka's fetch position per partition (the next offset it will hand out; negative when
    /// it has none yet). No network call.
    public func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = TopicPartitionList(capacity: partitions.count)
        for tp in partitions { list.add(tp) }
        _ = rd_kafka_position(rk, list.pointer)
        var out: [TopicPartition: Int64] = [:]
        for (tp, offset, _) in list.elements { out[tp] = offset }
        return out
    }

    /// The broker's low and high watermarks as last seen by the fetcher (no network call).
    public func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(rk, tp.topic, tp.partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low, high)
    }

    /// Asks the partition leader for the watermarks.
    public func queryWatermarks(_ tp: TopicPartition, timeoutMs: Int32 = 5000) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_query_watermark_offsets(rk, tp.topic, tp.partition, &low, &high, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "watermarks of \(tp)") }
        return (low, high)
    }

    /// `offsets` with each logical one (the beginning or the end) replaced by the offset it stands
    /// for now (`withConcreteOffsets`); left logical where the cluster does not answer.
    public func resolvingLogicalOffsets(_ offsets: [TopicPartition: Int64]) -> [TopicPartition: Int64] {
        withConcreteOffsets(rk, offsets, for: Set(offsets.keys), logger: logger)
    }

    /// Asks the leaders for the watermarks of several partitions at once: one request for the
    /// low ones and one for the high ones per leader, sent to every leader together, instead of a
    /// round trip per partition. Throws if any partition has no answer.
    public func queryWatermarks(_ partitions: [TopicPartition], timeoutMs: Int32 = 5000) throws(KafkaError) -> [TopicPartition: (low: Int64, high: Int64)] {
        guard !partitions.isEmpty else { return [:] }
        let low = try concreteOffsets(rk, of: KafkaOffset.beginning, partitions, timeoutMs: timeoutMs)
        let high = try concreteOffsets(rk, of: KafkaOffset.end, partitions, timeoutMs: timeoutMs)
        var out: [TopicPartition: (low: Int64, high: Int64)] = [:]
        for tp in partitions { out[tp] = (low[tp]!, high[tp]!) }
        return out
    }

    /// The partitions of `topic` according to the cluster's metadata.
    public func partitions(of topic: String, timeoutMs: Int32 = 10000) throws(KafkaError) -> [Int32] {
        try kafkaPartitions(rk, topic: topic, timeoutMs: timeoutMs)
    }

    /// First offsets at or after `timestampMs` (librdkafka's offsets-for-times).
    public func offsets(forTimestampMs timestampMs: Int64, partitions: [TopicPartition], timeoutMs: Int32 = 10000) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = TopicPartitionList(capacity: partitions.count)
        for tp in partitions { list.add(tp, offset: timestampMs) }
        let err = rd_kafka_offsets_for_times(rk, list.pointer, timeoutMs)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "offsets for times") }
        var out: [TopicPartition: Int64] = [:]
        for (tp, offset, _) in list.elements { out[tp] = offset }
        return out
    }

    /// Leaves the group within `timeoutMs`: serves the final revoke, then stops. librdkafka 2.0's
    /// blocking close can hang after a broker restart, so this uses the close queue with a deadline.
    public func close(timeoutMs: Int = 10000) {
        guard !closed else { return }
        closed = true
        guard let queue = rd_kafka_queue_new(rk) else { return }
        defer { rd_kafka_queue_destroy(queue) }
        if let error = rd_kafka_consumer_close_queue(rk, queue) {
            logger.warning("Kafka close failed", metadata: ["error": "\(KafkaError(owning: error, context: "close"))"])
            return
        }
        let deadline = monotonicMs() + timeoutMs
        while rd_kafka_consumer_closed(rk) == 0 && monotonicMs() < deadline {
            guard let event = rd_kafka_queue_poll(queue, 100) else { continue }
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE,
               let list = rd_kafka_event_topic_partition_list(event) {
                handleRebalance(rk, err: rd_kafka_event_error(event), partitions: list, context: context, logger: logger)
            }
            rd_kafka_event_destroy(event)
        }
        if rd_kafka_consumer_closed(rk) == 0 {
            logger.warning("Kafka consumer did not close within \(timeoutMs) ms; leaving anyway")
        }
    }
}

private let consumerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { _, err, reason, opaque in
    guard let opaque else { return }
    let handle = KafkaHandleContext.from(opaque)
    let context = handle.callbacks as! ConsumerContext
    let text = reason.map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(rawValue: err)))
    context.lastError.withLock { $0 = text }
    context.errors.add(1, ordering: .relaxed)
    if err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue { context.allBrokersDown.store(true, ordering: .relaxed) }
    handle.logger.warning("Kafka client error: \(text)")
}

private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { rk, err, partitions, opaque in
    guard let rk, let opaque, let partitions else { return }
    let handle = KafkaHandleContext.from(opaque)
    handleRebalance(rk, err: err, partitions: partitions, context: handle.callbacks as! ConsumerContext, logger: handle.logger)
}

private func handleRebalance(_ rk: OpaquePointer, err: rd_kafka_resp_err_t,
                             partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>,
                             context: ConsumerContext, logger: Logger) {
    let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
    let list = TopicPartitionList(borrowing: partitions)
    let tps = list.elements.map(\.0)
    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        logger.info("partitions assigned: \(countsPerTopic(tps))")
        logger.debug("partitions assigned", metadata: ["partitions": "\(tps.map(\.description).joined(separator: ","))"])
        let decision = context.listener?.partitionsAssigned(tps) ?? (offsets: [:], paused: [])
        let offsets = withConcreteOffsets(rk, decision.offsets, for: decision.paused, logger: logger)
        for (i, tp) in tps.enumerated() {
            list.setOffset(offsets[tp] ?? KafkaOffset.stored, at: i)
        }
        if cooperative {
            if let error = rd_kafka_incremental_assign(rk, partitions) {
                logger.error("incremental assign failed", metadata: ["error": "\(KafkaError(owning: error, context: "assign"))"])
            }
        } else {
            _ = rd_kafka_assign(rk, partitions)
        }
        context.assignment.formUnion(tps)
        if !decision.paused.isEmpty {
            let paused = TopicPartitionList(capacity: decision.paused.count)
            for tp in decision.paused { paused.add(tp) }
            _ = rd_kafka_pause_partitions(rk, paused.pointer)
        }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        let lost = rd_kafka_assignment_lost(rk) != 0
        logger.info("partitions revoked\(lost ? " (lost)" : ""): \(countsPerTopic(tps))")
        logger.debug("partitions revoked", metadata: ["partitions": "\(tps.map(\.description).joined(separator: ","))", "lost": "\(lost)"])
        context.listener?.partitionsRevoked(tps, lost: lost)
        if cooperative {
            if let error = rd_kafka_incremental_unassign(rk, partitions) {
                logger.error("incremental unassign failed", metadata: ["error": "\(KafkaError(owning: error, context: "unassign"))"])
            }
        } else {
            _ = rd_kafka_assign(rk, nil)
        }
        context.assignment.subtract(tps)
    default:
        logger.error("rebalance error", metadata: ["error": "\(KafkaError(err, context: "rebalance"))"])
        context.listener?.partitionsRevoked(Array(context.assignment), lost: true)
        _ = rd_kafka_assign(rk, nil)
        context.assignment = []
    }
}

/// `cloudwaste.scan-resources.v1 ×12, cloudwaste.user-actions.v1 ×6`: one line however many partitions.
func countsPerTopic(_ partitions: [TopicPartition]) -> String {
    Dictionary(grouping: partitions, by: \.topic).sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value.count)" }.joined(separator: ", ")
}

func kafkaPartitions(_ rk: OpaquePointer, topic: String, timeoutMs: Int32) throws(KafkaError) -> [Int32] {
    guard let rkt = rd_kafka_topic_new(rk, topic, nil) else { throw KafkaError(message: "cannot open topic \(topic)") }
    defer { rd_kafka_topic_destroy(rkt) }
    var metadata: UnsafePointer<rd_kafka_metadata>?
    let err = rd_kafka_metadata(rk, 0, rkt, &metadata, timeoutMs)
    if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "metadata of \(topic)") }
    guard let metadata else { return [] }
    defer { rd_kafka_metadata_destroy(metadata) }
    var result: [Int32] = []
    for t in 0..<Int(metadata.pointee.topic_cnt) {
        let tm = metadata.pointee.topics[t]
        guard String(cString: tm.topic) == topic else { continue }
        if tm.err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(tm.err, context: "topic \(topic)") }
        for p in 0..<Int(tm.partition_cnt) { result.append(tm.partitions[p].id) }
    }
    return result.sorted()
}

func monotonicMs() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000
}

/// Asks the leaders of `partitions` for their end offsets (one request per leader, sent to all at
/// once) and drops the answers: the request is what wakes each leader's broker thread
/// (`FetcherWake`). Bounded by a second.
private func requestEndOffsets(_ rk: OpaquePointer, _ partitions: Set<TopicPartition>) {
    let list = TopicPartitionList(capacity: partitions.count)
    for tp in partitions { list.add(tp, offset: KafkaOffset.end) }
    _ = rd_kafka_offsets_for_times(rk, list.pointer, 1000)
}

/// `offsets` with the logical ones (the beginning or the end) of `partitions` replaced by the
/// offsets they stand for now. librdkafka looks a logical offset up after an assignment or a seek,
/// and a pause or resume of the partition before the answer outdates the lookup, which it then
/// retries only after half a second (the "outdated offset response" timer, in 2.0.2 and still in
/// 2.x; its later retry may even move a partition already being read back to where the lookup
/// points). The consumer pauses partitions right after assigning them and resumes them right
/// after seeking them, so it hands librdkafka concrete offsets instead: one request per leader,
/// to every leader at once. At an assignment only the paused partitions are resolved: resolving
/// every partition measured slower (docs/performance.md, sixth pass). Best effort: without an
/// answer librdkafka looks them up as before.
private func withConcreteOffsets(_ rk: OpaquePointer, _ offsets: [TopicPartition: Int64], for partitions: Set<TopicPartition>,
                                 logger: Logger) -> [TopicPartition: Int64] {
    var out = offsets
    for logical in [KafkaOffset.beginning, KafkaOffset.end] {
        let wanted = partitions.filter { offsets[$0] == logical }.sorted()
        guard !wanted.isEmpty else { continue }
        do {
            for (tp, offset) in try concreteOffsets(rk, of: logical, wanted, timeoutMs: 2000) { out[tp] = offset }
        } catch {
            logger.debug("cannot look up where partitions start; librdkafka will", metadata: ["error": "\(error)"])
        }
    }
    return out
}

/// The offsets a logical position (the beginning or the end) stands for now, per partition: what
/// offsets-for-times answers for the timestamps -2 and -1 (the ListOffsets convention). Throws
/// if any partition has no answer.
private func concreteOffsets(_ rk: OpaquePointer, of logical: Int64, _ partitions: [TopicPartition],
                             timeoutMs: Int32) throws(KafkaError) -> [TopicPartition: Int64] {
    let list = TopicPartitionList(capacity: partitions.count)
    for tp in partitions { list.add(tp, offset: logical) }
    let err = rd_kafka_offsets_for_times(rk, list.pointer, timeoutMs)
    if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "list offsets") }
    var out: [TopicPartition: Int64] = [:]
    for (tp, offset, err) in list.elements {
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "list offsets of \(tp)") }
        if offset < 0 { throw KafkaError(RD_KAFKA_RESP_ERR__NO_OFFSET, context: "list offsets of \(tp)") }
        out[tp] = offset
    }
    guard out.count == Set(partitions).count else { throw KafkaError(RD_KAFKA_RESP_ERR__NO_OFFSET, context: "list offsets") }
    return out
}
