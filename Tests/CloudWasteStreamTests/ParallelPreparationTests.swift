import CloudWasteKafka
import Foundation
import Testing
@testable import CloudWasteStream

/// A poll's messages prepared on several threads give exactly what one preparer gives, in the
/// messages' order, for every message asked for, and nothing for the others.
@Suite struct ParallelPreparationTests {
    static let key = (0..<32).map { UInt8($0) }

    static func preparer() throws -> RecordPreparer {
        RecordPreparer(decoder: RecordDecoder(now: { PreparedBatchTests.now }),
                       anonymizer: Anonymizer(key: try HMACKey(bytes: key), regions: try RegionTable.load(path: PreparedBatchTests.regionsPath)),
                       topicNames: [PreparedBatchTests.scanTopic: .scanResources, PreparedBatchTests.metricTopic: .metricSamples])
    }

    /// Valid scans, malformed JSON, an unknown topic and a few large metric-samples records.
    static func messages(_ count: Int) -> [KafkaMessage] {
        (0..<count).map { i in
            let value: [UInt8]
            var topic = PreparedBatchTests.scanTopic
            switch i % 97 {
            case 13: value = Array("{\"event_id\":".utf8)
            case 29: topic = "cloudwaste.unknown"; value = Array("{}".utf8)
            case 41:
                topic = PreparedBatchTests.metricTopic
                let points = (0..<5_000).map { "{\"ts\":\"2026-03-10T08:00:00Z\",\"value\":\($0)}" }.joined(separator: ",")
                value = Array("{\"cloud_account_id\":\"123456789012\",\"provider\":\"aws\",\"resource_id\":\"vol-\(i)\",\"metric\":\"cpu\",\"points\":[\(points)]}".utf8)
            default: value = PreparedBatchTests.scan("\(i)", detectedAt: "2026-03-14T06:00:00Z")
            }
            return PreparedBatchTests.message(topic, partition: Int32(i % 3), offset: Int64(i), value: value)
        }
    }

    @Test(arguments: [0, 1, 31, 64, 600, 2_000])
    func sameResultsInOrderAsOnePreparer(count: Int) throws {
        let messages = Self.messages(count)
        let one = try Self.preparer()
        let expected = messages.map(one.prepare)
        let parallel = try ParallelPreparation(workers: 4) { try Self.preparer() }
        var seen: [(KafkaMessage, PreparedRecord?)] = []
        parallel.forEach(messages, wanted: { _ in true }) { seen.append(($0, $1)) }
        #expect(seen.map(\.0.offset) == messages.map(\.offset))
        #expect(seen.map(\.1) == expected)
        if count >= 100 {
            #expect(expected.contains { if case .rejected(let r) = $0 { r.code == .malformedJSON } else { false } })
            #expect(expected.contains { if case .rejected(let r) = $0 { r.code == .unknownTopic } else { false } })
            #expect(expected.contains { if case .anonymized(.metricPoints(let p), _) = $0 { p.count == 5_000 } else { false } })
        }
    }

    @Test func messagesNotWantedAreNotPrepared() throws {
        let messages = Self.messages(500)
        let parallel = try ParallelPreparation(workers: 2) { try Self.preparer() }
        var seen: [PreparedRecord?] = []
        parallel.forEach(messages, wanted: { $0.partition != 1 }) { seen.append($1) }
        #expect(seen.count == messages.count)
        for (m, p) in zip(messages, seen) { #expect((p == nil) == (m.partition == 1)) }
    }
}
