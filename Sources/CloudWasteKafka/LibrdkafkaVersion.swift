import CRdKafka

/// The librdkafka the process runs with: the shared library loaded at run time, which need not be
/// the one the headers came from (a current librdkafka can be loaded through LD_LIBRARY_PATH).
public struct LibrdkafkaVersion: Sendable, CustomStringConvertible {
    /// 0xMMmmrrxx, as `rd_kafka_version()` returns it.
    public let number: Int
    public let text: String

    public static let current = LibrdkafkaVersion(number: Int(rd_kafka_version()), text: String(cString: rd_kafka_version_str()))

    public init(number: Int, text: String) {
        self.number = number
        self.text = text
    }

    /// Below 2.3.0 a fetcher that finds the local queue full sleeps out the rest of a fixed second
    /// unless woken (librdkafka #2879, fixed in 2.3.0), which starves a consumer that bounds its
    /// memory: the consumer then wakes the fetchers itself (`FetcherWake`).
    public var fetchersSleepOnFullQueue: Bool { number < 0x0203_0000 }

    public var description: String { text }
}
