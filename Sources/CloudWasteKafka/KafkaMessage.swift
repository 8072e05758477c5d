/// A consumed record. The keys and values of one poll are copied out of librdkafka's buffers into
/// one shared buffer (`PolledBytes`), so that a message costs no allocation of its own and the
/// native message is destroyed at once (librdkafka must not outlive a message it handed out). The
/// hot path reads the value in place through `withValue`; `key` and `value` copy it out, for the
/// rare paths that keep the bytes (dead letters).
public struct KafkaMessage: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch (producer create time or broker log-append time); -1 if unknown.
    public var timestampMs: Int64
    /// Record headers (last value per name), nil when the record has none or its consumer does
    /// not read them (`KafkaConsumer(readsHeaders:)`).
    public var headers: [String: [UInt8]]?
    private var payload: Payload

    private enum Payload: Sendable {
        case owned(key: [UInt8]?, value: [UInt8]?)
        case polled(PolledBytes, key: Range<Int>?, value: Range<Int>?)
    }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8]?, timestampMs: Int64 = -1,
                headers: [String: [UInt8]]? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.headers = headers
        payload = .owned(key: key, value: value)
    }

    init(topic: String, partition: Int32, offset: Int64, bytes: PolledBytes, key: Range<Int>?, value: Range<Int>?,
         timestampMs: Int64, headers: [String: [UInt8]]?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
        self.headers = headers
        payload = .polled(bytes, key: key, value: value)
    }

    /// nil for a record without a key.
    public var key: [UInt8]? {
        get {
            switch payload {
            case .owned(let key, _): key
            case .polled(let bytes, let key, _): key.map { bytes.copy($0) }
            }
        }
        set { payload = .owned(key: newValue, value: value) }
    }

    /// nil for a tombstone.
    public var value: [UInt8]? {
        get {
            switch payload {
            case .owned(_, let value): value
            case .polled(let bytes, _, let value): value.map { bytes.copy($0) }
            }
        }
        set { payload = .owned(key: key, value: newValue) }
    }

    /// The value's size in bytes (0 for a tombstone), without copying it.
    public var valueCount: Int {
        switch payload {
        case .owned(_, let value): value?.count ?? 0
        case .polled(_, _, let value): value?.count ?? 0
        }
    }

    /// Calls `body` with the value where it is (nil for a tombstone); the pointer is valid only
    /// during the call.
    public func withValue<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>?) throws(E) -> R) throws(E) -> R {
        switch payload {
        case .owned(_, let value):
            guard let value else { return try body(nil) }
            return try value.withUnsafeBufferPointer { (b) throws(E) -> R in try body(b) }
        case .polled(let bytes, _, let value):
            guard let value else { return try body(nil) }
            return try bytes.withBytes(value, body)
        }
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}

/// The keys and values of one poll, back to back in one buffer that its messages share.
final class PolledBytes: Sendable {
    private let storage: [UInt8]

    init(_ storage: [UInt8]) { self.storage = storage }

    func copy(_ range: Range<Int>) -> [UInt8] { Array(storage[range]) }

    func withBytes<R, E: Error>(_ range: Range<Int>, _ body: (UnsafeBufferPointer<UInt8>?) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBufferPointer { (b) throws(E) -> R in try body(UnsafeBufferPointer(rebasing: b[range])) }
    }
}
