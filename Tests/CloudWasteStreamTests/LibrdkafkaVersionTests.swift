@testable import CloudWasteKafka
import Testing

/// Which librdkafka runs decides whether a full local queue puts the fetchers to sleep for a second.
@Suite struct LibrdkafkaVersionTests {
    @Test func fetchersSleepOnAFullQueueBelow2_3() {
        #expect(LibrdkafkaVersion(number: 0x0200_02FF, text: "2.0.2").fetchersSleepOnFullQueue)
        #expect(LibrdkafkaVersion(number: 0x0202_00FF, text: "2.2.0").fetchersSleepOnFullQueue)
        #expect(!LibrdkafkaVersion(number: 0x0203_00FF, text: "2.3.0").fetchersSleepOnFullQueue)
        #expect(!LibrdkafkaVersion(number: 0x0210_00FF, text: "2.16.0").fetchersSleepOnFullQueue)
    }

    /// From 2.3.0 the second is configurable, and the consumer shortens it to a tenth; below, the
    /// property does not exist and must not be set (librdkafka would refuse the configuration).
    @Test func theConsumerShortensTheFullQueueWaitWhereLibrdkafkaAllowsIt() throws {
        #expect(KafkaConsumer.defaults(for: LibrdkafkaVersion(number: 0x0200_02FF, text: "2.0.2"))["fetch.queue.backoff.ms"] == nil)
        #expect(KafkaConsumer.defaults(for: LibrdkafkaVersion(number: 0x0203_00FF, text: "2.3.0"))["fetch.queue.backoff.ms"] == "100")
        #expect(KafkaConsumer.defaults(for: LibrdkafkaVersion(number: 0x0210_00FF, text: "2.16.0"))["fetch.queue.backoff.ms"] == "100")
        // What the loaded librdkafka gets is a configuration it accepts.
        try KafkaConfig(KafkaConsumer.defaults(for: .current)).validate()
    }

    @Test func theLoadedLibraryIsReported() {
        let v = LibrdkafkaVersion.current
        #expect(v.number > 0x0100_0000)
        #expect(v.text.split(separator: ".").count >= 3)
    }
}
