import CloudWasteKafka
import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// The consumer's local queue against the mock cluster. With librdkafka before 2.3.0 a fetcher
/// that found the queue full sleeps up to a second unless woken, so the consumer wakes the
/// fetchers while a backlog fills the queue (`FetcherWake`), and only then; from 2.3.0 librdkafka
/// re-checks by itself and no waker exists. Either way every record arrives once, in order.
@Suite(.serialized) struct KafkaBacklogTests {
    static let topic = InputTopic.scanResources.name(prefix: "cloudwaste.")

    @Test func aBacklogLargerThanTheQueueIsReadOnceInOrderAndWakesTheFetchersWhereNeeded() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 4])
        let perPartitionKey = (0..<4).map { "key-\($0)" }
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: 700)
        let count = 3_000
        try env.publish((0..<count).map { (InputTopic.scanResources, perPartitionKey[$0 % 4], value) })
        // A 64 KiB queue (about 90 of these records), filled by any fetch (64 KiB, from one
        // partition or several), so that a poll of ten leaves it over half full.
        let (consumer, partitions) = try env.consumerFromTheBeginning(of: Self.topic, properties: [
            "queued.max.messages.kbytes": "64", "message.max.bytes": "65536", "fetch.max.bytes": "65536", "max.partition.fetch.bytes": "65536",
        ])
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        var offsets: [TopicPartition: [Int64]] = [:]
        var read = 0
        let started = Date()
        let deadline = Date(timeIntervalSinceNow: 120)
        while read < count && Date() < deadline {
            for m in try consumer.poll(maxMessages: 10, timeoutMs: 100) {
                offsets[m.topicPartition, default: []].append(m.offset)
                read += 1
            }
        }
        #expect(read == count)
        print("read \(read) records in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, \(consumer.fetcherWakes) fetcher wakes")
        let watermarks = try consumer.queryWatermarks(partitions)
        for tp in partitions {
            #expect(offsets[tp, default: []] == Array(watermarks[tp]!.low..<watermarks[tp]!.high), "\(tp)")
        }
        if LibrdkafkaVersion.current.fetchersSleepOnFullQueue {
            #expect(consumer.fetcherWakes > 0)
        }
    }

    /// A consumer at the head of its partitions, records arriving in bursts it reads at once: its
    /// polls come back full (ten records each) but the queue never nears its limits, so it sends
    /// no wake.
    @Test func aConsumerAtTheHeadSendsNoWakes() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 2])
        let (consumer, _) = try env.consumerFromTheBeginning(of: Self.topic)
        defer { consumer.close(timeoutMs: 1000); withExtendedLifetime(env) {} }
        let value = [UInt8](repeating: UInt8(ascii: "y"), count: 700)
        var read = 0
        var fullPolls = 0
        for burst in 1...10 {
            try env.publish((0..<50).map { (InputTopic.scanResources, "key-\($0 % 2)", value) })
            let deadline = Date(timeIntervalSinceNow: 30)
            while read < burst * 50 && Date() < deadline {
                let polled = try consumer.poll(maxMessages: 10, timeoutMs: 100)
                read += polled.count
                if polled.count == 10 { fullPolls += 1 }
            }
        }
        #expect(read == 500)
        #expect(fullPolls > 0)
        #expect(consumer.fetcherWakes == 0)
    }
}
