/// A consumed record, copied out of librdkafka's buffers (the native message is destroyed at once).
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// nil for a record without a key.
    public var key: [UInt8]?
    /// nil for a tombstone.
    public var value: [UInt8]?
    /// Milliseconds since the epoch (producer create time or broker log-append time); -1 if unknown.
    public var timestampMs: Int64
    /// Record headers (last value per name), nil when the record has none.
    public var headers: [String: [UInt8]]?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, timestampMs: Int64 = -1,
                headers: [String: [UInt8]]? = nil) {
        self.headers = headers
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.timestampMs = timestampMs
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}
