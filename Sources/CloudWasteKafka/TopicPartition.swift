import CRdKafka

/// One partition of one topic.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    /// One word: the partition, the topic's length and its last eight bytes (where a deployment's
    /// topic names differ). Partitions are looked up per message (their states, their batch
    /// spans), and hashing the whole topic name each time cost more than the rest of the lookup;
    /// topics that share a length and an ending only cost an equality check more.
    public func hash(into hasher: inout Hasher) {
        let tail = topic.utf8.withContiguousStorageIfAvailable { u -> UInt64 in
            var word: UInt64 = 0
            for b in u.suffix(8) { word = word << 8 | UInt64(b) }
            return word
        } ?? 0
        hasher.combine(UInt64(UInt32(bitPattern: partition)) | UInt64(topic.utf8.count) << 32 ^ tail &* 0x9E37_79B9_7F4A_7C15)
    }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// Start positions understood by librdkafka besides concrete offsets.
public enum KafkaOffset {
    public static let beginning: Int64 = Int64(RD_KAFKA_OFFSET_BEGINNING)
    public static let end: Int64 = Int64(RD_KAFKA_OFFSET_END)
    /// Use the group's committed offset, else `auto.offset.reset`.
    public static let stored: Int64 = Int64(RD_KAFKA_OFFSET_INVALID)
}

/// Owns an `rd_kafka_topic_partition_list_t` while it is built or read.
final class TopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    private let owned: Bool

    init(capacity: Int = 8) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
        owned = true
    }

    /// Borrows a list owned by librdkafka (e.g. inside a rebalance callback).
    init(borrowing pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
        owned = false
    }

    deinit { if owned { rd_kafka_topic_partition_list_destroy(pointer) } }

    func add(_ tp: TopicPartition, offset: Int64 = KafkaOffset.stored) {
        let element = rd_kafka_topic_partition_list_add(pointer, tp.topic, tp.partition)
        element?.pointee.offset = offset
    }

    var elements: [(TopicPartition, Int64, rd_kafka_resp_err_t)] {
        (0..<Int(pointer.pointee.cnt)).map { i in
            let e = pointer.pointee.elems[i]
            return (TopicPartition(topic: String(cString: e.topic), partition: e.partition), e.offset, e.err)
        }
    }

    func setOffset(_ offset: Int64, at index: Int) {
        pointer.pointee.elems[index].offset = offset
    }
}
