import CloudWasteKafka
import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// A consumer reads record headers only when asked (`KafkaConsumer(readsHeaders:)`): the pipeline's
/// consumer does not, since asking librdkafka costs two allocations a message; the dead-letter
/// readers do, since a dead letter's source position is in its headers.
@Suite(.serialized) struct KafkaHeadersTests {
    @Test func headersAreReadOnlyByAConsumerThatAsksForThem() async throws {
        let env = try await TestEnvironment(partitions: [.privacyRequests: 1])
        let topic = InputTopic.privacyRequests.name(prefix: "cloudwaste.")
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers]), logger: testLogger("test.producer"))
        try producer.send(topic: topic, key: nil, value: Array("with".utf8), headers: [("cw.source.offset", Array("42".utf8)), ("empty", [])])
        try producer.send(topic: topic, key: nil, value: Array("without".utf8))
        try producer.flush(timeoutMs: 30_000)

        let reading = try env.readTopic(topic, idleMs: 1500)
        #expect(reading.map { $0.value.map { String(decoding: $0, as: UTF8.self) } } == ["with", "without"])
        #expect(reading.first?.headers == ["cw.source.offset": Array("42".utf8), "empty": []])
        #expect(reading.last?.headers == nil)

        let notReading = try env.readTopic(topic, idleMs: 1500, readsHeaders: false)
        #expect(notReading.map(\.value) == reading.map(\.value))
        #expect(notReading.map(\.offset) == reading.map(\.offset))
        #expect(notReading.allSatisfy { $0.headers == nil })
    }
}
