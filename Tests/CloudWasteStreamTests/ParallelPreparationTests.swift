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

    /// A prepared record with its rows' keys, bytes and detections, to compare across preparers.
    struct Prepared: Equatable {
        var record: PreparedRecord
        var rows: [(key: RowKey, tuple: [UInt8], detection: WindowDetection?)]

        init(_ record: PreparedRecord, in rows: PreparedRows) {
            var copied: [(key: RowKey, tuple: [UInt8], detection: WindowDetection?)] = []
            rows.forEachRow(in: record.rows) { copied.append(($0, Array($1), $2)) }
            self.rows = copied
            self.record = record
            self.record.rows = 0..<0  // where the rows stood in their buffer differs by worker
        }

        static func == (a: Prepared, b: Prepared) -> Bool {
            a.record == b.record && a.rows.map(\.key) == b.rows.map(\.key) && a.rows.map(\.tuple) == b.rows.map(\.tuple)
                && a.rows.map(\.detection) == b.rows.map(\.detection)
        }
    }

    @Test(arguments: [0, 1, 31, 64, 600, 2_000])
    func sameResultsInOrderAsOnePreparer(count: Int) throws {
        let messages = Self.messages(count)
        let one = try Self.preparer()
        var rows = PreparedRows()
        let expected = messages.map { m in
            rows.removeAll()
            return Prepared(one.prepare(m, into: &rows), in: rows)
        }
        let parallel = try ParallelPreparation(workers: 4) { try Self.preparer() }
        var seen: [(KafkaMessage, Prepared?)] = []
        parallel.forEach(messages, wanted: { _ in true }) { m, record, rows in seen.append((m, record.map { Prepared($0, in: rows) })) }
        #expect(seen.map(\.0.offset) == messages.map(\.offset))
        #expect(seen.map(\.1) == expected)
        if count >= 100 {
            #expect(expected.contains { if case .rejected(let r) = $0.record.outcome { r.code == .malformedJSON } else { false } })
            #expect(expected.contains { if case .rejected(let r) = $0.record.outcome { r.code == .unknownTopic } else { false } })
            #expect(expected.contains { $0.record.outcome == .rows(.metrics) && $0.rows.count == 5_000 })
            let detected = expected.filter { $0.record.outcome == .rows(.training) }
            #expect(!detected.isEmpty)
            #expect(detected.allSatisfy { $0.rows.count == 1 && $0.rows[0].detection != nil && $0.record.user != nil })
        }
    }

    @Test func messagesNotWantedAreNotPrepared() throws {
        let messages = Self.messages(500)
        let parallel = try ParallelPreparation(workers: 2) { try Self.preparer() }
        var seen: [PreparedRecord?] = []
        parallel.forEach(messages, wanted: { $0.partition != 1 }) { _, record, _ in seen.append(record) }
        #expect(seen.count == messages.count)
        for (m, p) in zip(messages, seen) { #expect((p == nil) == (m.partition == 1)) }
    }
}
