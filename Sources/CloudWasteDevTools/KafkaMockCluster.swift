import CRdKafka
public import CloudWasteKafka
import CloudWasteStream
import Foundation
public import Logging
import Synchronization

/// librdkafka's in-process mock cluster: it speaks the real Kafka protocol over TCP on loopback, so
/// other processes (the daemon, kcat, kafka-python 2.0.2) connect to `bootstrapServers`. Used by the
/// demo, the benchmark and the tests; nothing is persisted.
/// `@unchecked Sendable`: it holds librdkafka's handle and mock cluster (C pointers), which are
/// thread-safe for the calls made here; its own state is atomic.
public final class KafkaMockCluster: @unchecked Sendable {
    private let rk: OpaquePointer
    private let cluster: OpaquePointer
    private let context: KafkaHandleContext
    private let stopped = StopSignal()
    private let isShutDown = Atomic<Bool>(false)
    private let pollerDone = DispatchSemaphore(value: 0)
    public let bootstrapServers: String

    public init(brokers: Int = 3, logger: Logger = Logger(label: "cloudwaste.kafka.mock")) throws(KafkaError) {
        let conf = try KafkaConfig(["log_level": "3"]).makeNative()
        context = KafkaHandleContext(logger: logger)
        configureLogging(conf, context: context)
        rk = try makeHandle(RD_KAFKA_PRODUCER, conf: conf)
        guard let mc = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            rd_kafka_destroy(rk)
            throw KafkaError(message: "cannot start the mock Kafka cluster")
        }
        cluster = mc
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(mc))
        // The poller holds the handle, not the cluster, so that dropping the cluster shuts it down.
        nonisolated(unsafe) let handle = rk
        let stopped = stopped, done = pollerDone
        DedicatedThread.start(name: "kafka-mock-poll") {
            while !stopped.isSet { rd_kafka_poll(handle, 100) }
            done.signal()
        }
    }

    deinit { shutdown() }

    /// Destroys the cluster; clients connected to it see the brokers go away.
    public func shutdown() {
        guard !isShutDown.exchange(true, ordering: .relaxed) else { return }
        stopped.set()
        pollerDone.wait()
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(rk)
    }

    /// Topics must be created here: the mock does not implement CreateTopics.
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, context: "create topic \(name)") }
    }

    public func setBrokerDown(_ brokerId: Int32) {
        _ = rd_kafka_mock_broker_set_down(cluster, brokerId)
    }

    public func setBrokerUp(_ brokerId: Int32) {
        _ = rd_kafka_mock_broker_set_up(cluster, brokerId)
    }

    /// The next `count` requests of `apiKey` (e.g. 1 = Fetch, 8 = OffsetCommit) fail with `errorCode`.
    public func pushRequestErrors(apiKey: Int16, errorCode: Int32, count: Int) {
        var errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: errorCode), count: count)
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, count, &errors)
    }
}

private final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
