import CloudWasteKafka
import CloudWastePostgres
import Foundation
import Testing
import TestSupport
@testable import CloudWasteStream

/// Batches as the unit of exactly-once work: spans per partition, dead letters in place, rows
/// encoded at once and reduced per key, and splits that keep every partition's offsets contiguous.
@Suite struct PreparedBatchTests {
    static let now = Timestamp.parseRFC3339("2026-11-29T00:00:00Z")!
    static let scanTopic = "cloudwaste.scan-resources.v1"
    static let actionTopic = "cloudwaste.user-actions.v1"
    static let metricTopic = "cloudwaste.metric-samples.v1"
    static let privacyTopic = "cloudwaste.privacy-requests.v1"
    static let regionsPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/regions.json").path

    static func builder() throws -> BatchBuilder {
        let anonymizer = Anonymizer(key: try HMACKey(bytes: (0..<32).map { UInt8($0) }),
                                    regions: try RegionTable.load(path: regionsPath))
        return BatchBuilder(decoder: RecordDecoder(now: { now }), anonymizer: anonymizer, topicNames: [
            scanTopic: .scanResources, actionTopic: .userActions, metricTopic: .metricSamples, privacyTopic: .privacyRequests,
        ])
    }

    static func scan(_ id: String, detectedAt: String) -> [UInt8] {
        Array("""
            {"event_id":"e-\(id)","scan_id":"s-1","detected_at":"\(detectedAt)","user_id":"u-1","cloud_account_id":"123456789012",
             "provider":"aws","region":"us-east-1","resource_type":"ebs_volume","resource_id":"vol-\(id)","scenario":"unattached",
             "confidence":"high","estimated_monthly_cost":1.5}
            """.utf8)
    }

    static func message(_ topic: String = scanTopic, partition: Int32, offset: Int64, value: [UInt8]?, key: String? = "123456789012") -> KafkaMessage {
        KafkaMessage(topic: topic, partition: partition, offset: offset, key: key.map { Array($0.utf8) }, value: value)
    }

    static func t(_ s: String) -> Timestamp { Timestamp.parseRFC3339(s)! }

    static let p0 = TopicPartition(topic: scanTopic, partition: 0)
    static let p1 = TopicPartition(topic: scanTopic, partition: 1)

    /// p0: offsets 10 (ok), 11 (malformed), 12 (ok); p1: offsets 5 (ok), 6 (cost as string), interleaved.
    static func twoPartitionBatch() throws -> PreparedBatch {
        let b = try builder()
        b.add(message(partition: 0, offset: 10, value: scan("a", detectedAt: "2026-03-14T06:00:00Z")), generation: 7, expected: .at(10))
        b.add(message(partition: 1, offset: 5, value: scan("b", detectedAt: "2026-03-20T00:00:00Z")), generation: 7, expected: .uncommitted)
        b.add(message(partition: 0, offset: 11, value: Array("{\"event_id\":".utf8)), generation: 7, expected: .at(10))
        b.add(message(partition: 1, offset: 6, value: Array(String(decoding: scan("c", detectedAt: "2026-03-21T00:00:00Z"), as: UTF8.self)
            .replacingOccurrences(of: "1.5", with: "\"1.5\"").utf8)), generation: 7, expected: .uncommitted)
        b.add(message(partition: 0, offset: 12, value: scan("d", detectedAt: "2026-03-13T00:00:00+02:00")), generation: 7, expected: .at(10))
        #expect(b.count == 5)
        return b.seal()
    }

    // MARK: - Building

    /// The writer splits a batch's scan rows by user (consent history or not): rows keep their
    /// order and items on both sides, and a side with every row is the rows themselves.
    @Test func scanRowsPartitionByDetection() throws {
        let rows = try Self.twoPartitionBatch()[.training]
        let users = rows.windowDetections.map(\.userHash)
        #expect(rows.count == 3 && Set(users).count == 1)
        let (all, none) = rows.partitioned { _ in true }
        #expect(all.items == rows.items && all.rows == rows.rows && none.isEmpty)
        let (none2, all2) = rows.partitioned { _ in false }
        #expect(none2.isEmpty && all2.items == rows.items && all2.rows == rows.rows)
        let (early, late) = rows.partitioned { $0.detectedAt < Self.t("2026-03-15T00:00:00Z") }
        #expect(early.items == [0, 4] && late.items == [1])
        #expect(early.rows + late.rows == [rows.rows[0], rows.rows[2], rows.rows[1]])
        // What reaches COPY: each side's rows in order, runs of neighbours in one piece.
        for (side, expected) in [(all, rows.rows), (none, []), (early, [rows.rows[0], rows.rows[2]]), (late, [rows.rows[1]])] {
            var streamed: [UInt8] = []
            var runs = 0
            try side.forEachRun { streamed += $0; runs += 1 }
            #expect(streamed == Array(expected.joined()))
            #expect(runs == (side.count == 3 ? 1 : side.count))
        }
        #expect(early.windowDetections.count == 2 && late.windowDetections.count == 1)
    }

    /// A `bytea[]` bind of pseudonyms is the same text as the generic array of their bytea texts.
    @Test func pseudonymArrayIsTheGenericArrayText() {
        let values = (0..<50).map { i in Pseudonym(hex: String(repeating: String(format: "%02x", i * 5 % 256), count: 32))! }
        #expect(values.postgresText == values.map(\.postgresText).postgresText)
        #expect([Pseudonym]().postgresText == "{}")
        #expect([values[0]].postgresText == #"{"\\x"# + values[0].hex + #""}"#)
    }

    @Test func spansPerPartitionInFirstSeenOrder() throws {
        let batch = try Self.twoPartitionBatch()
        #expect(batch.keyId == "630dcd29")
        // p1's last message is a dead letter: it still advances the offset, but has no event time.
        #expect(batch.spans == [
            PartitionSpan(partition: Self.p0, generation: 7, startOffset: .at(10), nextOffset: 13,
                          maxEventTime: Self.t("2026-03-14T06:00:00Z")),
            PartitionSpan(partition: Self.p1, generation: 7, startOffset: .uncommitted, nextOffset: 7,
                          maxEventTime: Self.t("2026-03-20T00:00:00Z")),
        ])
    }

    @Test func itemsKeepPollOrderAndBadRecordsBecomeDeadLetters() throws {
        let batch = try Self.twoPartitionBatch()
        #expect(batch.items.map(\.source.partition) == [0, 1, 0, 1, 0])
        #expect(batch.items.map(\.source.offset) == [10, 5, 11, 6, 12])
        #expect(batch.items.allSatisfy { $0.source.topic == Self.scanTopic })

        func reason(_ i: Int) -> String? {
            if case .deadLetter(let d) = batch.items[i].outcome { return d.rejection.description }
            return nil
        }
        #expect(reason(0) == nil)
        #expect(reason(1) == nil)
        #expect(reason(2) == "malformed_json")
        #expect(reason(3) == "wrong_type: estimated_monthly_cost")
        #expect(reason(4) == nil)

        // Dead letters keep the original key and bytes for the dead-letter topic, and no event time.
        guard case .deadLetter(let d) = batch.items[2].outcome else { Issue.record("not a dead letter"); return }
        #expect(d.key == Array("123456789012".utf8))
        #expect(d.value == Array("{\"event_id\":".utf8))
        #expect(batch.items[2].eventTime == nil)
        #expect(batch.items[3].eventTime == nil)

        // Good records are anonymized rows, encoded for COPY, with their event time.
        guard case .rows(.training) = batch.items[4].outcome else { Issue.record("not a training row"); return }
        #expect(batch.items[4].eventTime == Self.t("2026-03-12T22:00:00Z"))
        #expect(batch[.training].items == [0, 1, 4])
        let row = BinaryCopyTuple(batch[.training].rows[2])
        #expect(row.fields.count == TableDescription.mlTrainingData.storedColumns.count)
        #expect(row.timestamp(19) == Self.t("2026-03-12T22:00:00Z"))
        #expect(row.fields[2]?.count == 32)  // account_hash: the pseudonym's bytes (SPEC v1.2)
        #expect(row.hex(2) == "9464de54d755ee452dc916857f997bf5f111c242eb9341d18cd7009f328d4625")
        #expect(row.float8(10) == 1.5)
        #expect(row.integer(23) == 12)  // source_offset
        // Dead letters have a dead_letters row each (digests, never the bytes).
        #expect(batch[.deadLetters].items == [2, 3])
        let letter = BinaryCopyTuple(batch[.deadLetters].rows[0])
        #expect(letter.text(3) == "malformed_json")
        #expect(letter.text(5) == sha256Hex(Array("{\"event_id\":".utf8)))
    }

    @Test func aLaterRecordWithTheSameKeyReplacesTheEarlierRow() throws {
        let b = try Self.builder()
        b.add(Self.message(partition: 0, offset: 1, value: Self.scan("a", detectedAt: "2026-03-14T06:00:00Z")), generation: 1, expected: .at(1))
        b.add(Self.message(partition: 0, offset: 2, value: Self.scan("b", detectedAt: "2026-03-14T06:00:00Z")), generation: 1, expected: .at(1))
        // Same scan and resource as offset 1: one statement cannot update a row twice, the last wins.
        b.add(Self.message(partition: 0, offset: 3, value: Self.scan("a", detectedAt: "2026-03-15T06:00:00Z")), generation: 1, expected: .at(1))
        #expect(b.count == 3)
        #expect(b.rows == 2)
        let batch = b.seal()
        #expect(batch.items.count == 3)
        #expect(batch[.training].items == [1, 2])
        #expect(batch[.training].rows.map { BinaryCopyTuple($0).integer(23) } == [2, 3])
        #expect(batch.spans.map(\.nextOffset) == [4])
    }

    @Test func metricPointsAreRowsAndCountTowardsTheLimits() throws {
        let b = try Self.builder()
        let metrics = """
            {"cloud_account_id":"1","provider":"aws","resource_id":"r","metric":"m",
             "points":[{"ts":"2026-03-09T00:00:00Z","value":1},{"ts":"2026-03-11T00:00:00Z","value":2},{"ts":"2026-03-09T00:00:00Z","value":3}]}
            """
        b.add(Self.message(Self.metricTopic, partition: 0, offset: 0, value: Array(metrics.utf8)), generation: 1, expected: .at(0))
        // Two distinct points (the repeated time stamp keeps its last value).
        #expect(b.count == 1 && b.rows == 2)
        #expect(b.bytes > 0)
        let batch = b.seal()
        #expect(batch[.metrics].rows.map { BinaryCopyTuple($0).float8(6) } == [2, 3])
    }

    /// A metrics record's points are decoded into the array the previous metrics record's rows
    /// handed back once encoded: no allocation per record once it has grown (issue #19).
    @Test func metricPointsArraysAreRecycled() throws {
        let decoder = RecordDecoder(now: { Self.now })
        let anonymizer = Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil))
        let arrays = RecycledArrays()
        var tape = JSONTape()
        var rows = PreparedRows()
        let source = SourcePosition(topic: Self.metricTopic, partition: 0, offset: 0)
        func prepare(_ value: Double) throws -> UInt {
            let json = """
                {"cloud_account_id":"1","provider":"aws","resource_id":"r","metric":"m",
                 "points":[{"ts":"2026-03-09T00:00:00Z","value":\(value)},{"ts":"2026-03-10T00:00:00Z","value":1}]}
                """
            let record = try Array(json.utf8).withUnsafeBufferPointer { (b) throws(RecordRejection) in
                try decoder.decode(.metricSamples, b, tape: &tape, arrays: arrays)
            }
            guard case .metrics(let m) = record else { throw RecordRejection(.wrongType) }
            let address = m.points.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            _ = rows.append(anonymizer.anonymize(consume record), source: source, keyId: "k", recycling: arrays)
            return address
        }
        let first = try prepare(5)
        // An array of the same size, alive meanwhile, takes the freed block if the points were not kept.
        let occupant = [MetricPoint](repeating: MetricPoint(ts: Self.now, value: 0), count: 2)
        #expect(try prepare(6) == first)
        withExtendedLifetime(occupant) {}
        #expect(rows.rows.count == 4)
    }

    @Test func payloadBytesAreCounted() throws {
        let b = try Self.builder()
        b.add(Self.message(partition: 0, offset: 0, value: [0x7B, 0x7D]), generation: 1, expected: .at(0))
        b.add(Self.message(partition: 0, offset: 1, value: nil), generation: 1, expected: .at(0))
        b.add(Self.message(partition: 0, offset: 2, value: [0x20, 0x20, 0x20]), generation: 1, expected: .at(0))
        #expect(b.seal().payloadBytes == 5)
    }

    @Test func tombstonesAndUnknownTopicsAreDeadLetters() throws {
        let b = try Self.builder()
        b.add(Self.message(partition: 2, offset: 100, value: nil, key: nil), generation: 3, expected: .at(100))
        b.add(Self.message("other.topic", partition: 0, offset: 1, value: Self.scan("x", detectedAt: "2026-03-14T06:00:00Z")),
              generation: 3, expected: .at(1))
        let batch = b.seal()
        let reasons = batch.items.map { item -> String? in
            if case .deadLetter(let d) = item.outcome { return d.rejection.description }
            return nil
        }
        #expect(reasons == ["empty_payload", "unknown_topic"])
        // Both still advance their partitions.
        #expect(batch.spans.map(\.nextOffset) == [101, 2])
        #expect(batch.spans.allSatisfy { $0.maxEventTime == nil })
    }

    @Test func eventTimePerTopic() throws {
        let b = try Self.builder()
        let action = """
            {"event_id":"a","user_id":"u","cloud_account_id":"1","provider":"aws","resource_id":"r","resource_type":"t",
             "action":"kept","detected_at":"2026-03-01T00:00:00Z","action_at":"2026-03-05T00:00:00Z"}
            """
        let metrics = """
            {"cloud_account_id":"1","provider":"aws","resource_id":"r","metric":"m",
             "points":[{"ts":"2026-03-09T00:00:00Z","value":1},{"ts":"2026-03-11T00:00:00Z","value":2},{"ts":"2026-03-10T00:00:00Z","value":3}]}
            """
        b.add(Self.message(Self.actionTopic, partition: 0, offset: 0, value: Array(action.utf8)), generation: 1, expected: .at(0))
        b.add(Self.message(Self.metricTopic, partition: 0, offset: 0, value: Array(metrics.utf8)), generation: 1, expected: .at(0))
        let batch = b.seal()
        #expect(batch.items.map(\.eventTime) == [Self.t("2026-03-05T00:00:00Z"), Self.t("2026-03-11T00:00:00Z")])
        #expect(batch.spans.map(\.maxEventTime) == [Self.t("2026-03-05T00:00:00Z"), Self.t("2026-03-11T00:00:00Z")])
    }

    @Test func sealStartsANewBatch() throws {
        let b = try Self.builder()
        b.add(Self.message(partition: 0, offset: 10, value: Self.scan("a", detectedAt: "2026-03-14T06:00:00Z")), generation: 1, expected: .at(10))
        let first = b.seal()
        #expect(first.items.count == 1)
        #expect(b.count == 0)
        let empty = b.seal()
        #expect(empty.isEmpty && empty.spans.isEmpty && empty.payloadBytes == 0)
        // The next span starts where the caller says PostgreSQL now stands.
        b.add(Self.message(partition: 0, offset: 11, value: Self.scan("b", detectedAt: "2026-03-14T07:00:00Z")), generation: 1, expected: .at(11))
        let second = b.seal()
        #expect(second.spans.map(\.startOffset) == [.at(11)])
        #expect(second.spans.map(\.nextOffset) == [12])
    }

    @Test func discardDropsPartitionsBeforeSealing() throws {
        let b = try Self.builder()
        b.add(Self.message(partition: 0, offset: 10, value: Self.scan("a", detectedAt: "2026-03-14T06:00:00Z")), generation: 1, expected: .at(10))
        b.add(Self.message(partition: 1, offset: 20, value: Self.scan("b", detectedAt: "2026-03-14T06:00:00Z")), generation: 1, expected: .at(20))
        b.discard([Self.p0])
        #expect(b.count == 1)
        let batch = b.seal()
        #expect(batch.spans.map(\.partition) == [Self.p1])
        #expect(batch.items.map(\.source.partition) == [1])
    }

    // MARK: - Splitting

    /// Checks the invariants of `split(at:)` for one split point.
    private func checkSplit(_ batch: PreparedBatch, at count: Int) {
        let (a, b) = batch.split(at: count)
        #expect(a.items.count == count)
        #expect(b.items.count == batch.items.count - count)
        #expect(a.items.map(\.source) + b.items.map(\.source) == batch.items.map(\.source))
        #expect(a.keyId == batch.keyId && b.keyId == batch.keyId)
        // Each part keeps exactly the rows of its own items.
        for table in BatchTable.allCases {
            #expect(a[table].items + b[table].items.map { $0 + count } == batch[table].items, "\(table) at split \(count)")
            #expect(a[table].rows + b[table].rows == batch[table].rows)
        }
        for span in batch.spans {
            let first = a.spans.first { $0.partition == span.partition }
            let second = b.spans.first { $0.partition == span.partition }
            #expect(first != nil || second != nil, "partition \(span.partition) lost at split \(count)")
            if let first {
                #expect(first.startOffset == span.startOffset)
                #expect(first.generation == span.generation)
            }
            if let second {
                // Contiguity: the second part starts exactly where the first part ends.
                #expect(second.startOffset == (first.map { .at($0.nextOffset) } ?? span.startOffset), "split \(count) \(span.partition)")
                #expect(second.nextOffset == span.nextOffset)
                #expect(second.generation == span.generation)
            } else {
                #expect(first?.nextOffset == span.nextOffset)
            }
            // Each part only has spans for partitions it holds items of, except an untouched partition.
            if first != nil { #expect(a.items.contains { $0.source.topicPartition == span.partition }) }
            // The event-time maxima are those of each part's own items.
            let aMax = a.items.filter { $0.source.topicPartition == span.partition }.compactMap(\.eventTime).max()
            let bMax = b.items.filter { $0.source.topicPartition == span.partition }.compactMap(\.eventTime).max()
            if let first { #expect(first.maxEventTime == aMax) }
            if let second { #expect(second.maxEventTime == bMax) }
        }
    }

    @Test func splitKeepsSpansContiguousAtEveryPoint() throws {
        let batch = try Self.twoPartitionBatch()
        for count in 0...batch.items.count {
            checkSplit(batch, at: count)
        }
    }

    @Test func splitInTheMiddleExactly() throws {
        let batch = try Self.twoPartitionBatch()
        let (a, b) = batch.split(at: 2)  // p0@10, p1@5 | p0@11, p1@6, p0@12
        #expect(a.spans.map(\.partition) == [Self.p0, Self.p1])
        #expect(a.spans.map(\.startOffset) == [.at(10), .uncommitted])
        #expect(a.spans.map(\.nextOffset) == [11, 6])
        #expect(b.spans.map(\.startOffset) == [.at(11), .at(6)])
        #expect(b.spans.map(\.nextOffset) == [13, 7])
        #expect(a.spans[0].maxEventTime == Self.t("2026-03-14T06:00:00Z"))
        #expect(b.spans[0].maxEventTime == Self.t("2026-03-12T22:00:00Z"))
        #expect(b.spans[1].maxEventTime == nil)  // only a dead letter left on p1

        // Splitting a part again keeps the chain.
        let (b1, b2) = b.split(at: 1)  // p0@11 | p1@6, p0@12
        #expect(b1.spans.map(\.partition) == [Self.p0])
        #expect(b1.spans.map(\.startOffset) == [.at(11)] && b1.spans.map(\.nextOffset) == [12])
        #expect(b2.spans.first { $0.partition == Self.p0 }?.startOffset == .at(12))
        #expect(b2.spans.first { $0.partition == Self.p1 }?.startOffset == .at(6))
    }

    @Test func splitAtTheEnds() throws {
        let batch = try Self.twoPartitionBatch()
        let (none, all) = batch.split(at: 0)
        #expect(none.isEmpty && none.spans.isEmpty)
        #expect(all.spans == batch.spans)
        let (all2, rest) = batch.split(at: batch.items.count)
        #expect(all2.spans == batch.spans)
        #expect(rest.isEmpty && rest.spans.isEmpty)
    }

    @Test func removingDropsPartitions() throws {
        let batch = try Self.twoPartitionBatch()
        let without = batch.removing([Self.p1])
        #expect(without.spans.map(\.partition) == [Self.p0])
        #expect(without.spans[0] == batch.spans[0])
        #expect(without.items.map(\.source.offset) == [10, 11, 12])
        #expect(without.keyId == batch.keyId)
        #expect(without[.training].items == [0, 2])
        #expect(without[.deadLetters].items == [1])
        #expect(batch.removing([Self.p0, Self.p1]).isEmpty)
        #expect(batch.removing([Self.p0, Self.p1]).spans.isEmpty)
        #expect(batch.removing([TopicPartition(topic: "x", partition: 0)]).items.count == 5)
        #expect(batch.removing([]).spans == batch.spans)
    }

    /// A batch with privacy requests and other records is written as two transactions, the
    /// requests' partitions first: each part keeps its partitions' spans whole, its items in
    /// order and its rows; only the data part takes its users' locks.
    @Test func privacyRequestsGoFirstInATransactionOfTheirOwn() throws {
        let b = try Self.builder()
        func request(_ id: String) -> [UInt8] {
            Array(#"{"event_id":"priv-\#(id)","user_id":"u-1","request":"opt_out","requested_at":"2026-03-15T00:00:00Z"}"#.utf8)
        }
        b.add(Self.message(partition: 0, offset: 10, value: Self.scan("a", detectedAt: "2026-03-14T06:00:00Z")), generation: 7, expected: .at(10))
        b.add(Self.message(Self.privacyTopic, partition: 2, offset: 40, value: request("1")), generation: 7, expected: .at(40))
        b.add(Self.message(Self.privacyTopic, partition: 2, offset: 41, value: Array("{".utf8)), generation: 7, expected: .at(40))
        b.add(Self.message(partition: 0, offset: 11, value: Self.scan("b", detectedAt: "2026-03-16T06:00:00Z")), generation: 7, expected: .at(10))
        b.add(Self.message(Self.privacyTopic, partition: 1, offset: 7, value: Array("{".utf8)), generation: 7, expected: .at(7))
        let batch = b.seal()
        let parts = batch.transactions()
        try #require(parts.count == 2)
        let (requests, data) = (parts[0], parts[1])
        let p2 = TopicPartition(topic: Self.privacyTopic, partition: 2)
        #expect(requests.spans.map(\.partition) == [p2])
        #expect(requests.spans[0] == batch.spans.first { $0.partition == p2 })
        #expect(requests.items.map(\.source.offset) == [40, 41])
        #expect(requests.privacyRequests.count == 1)
        #expect(requests[.deadLetters].items == [1])
        #expect(requests[.training].isEmpty)
        #expect(requests.users.isEmpty)
        // The data part: the scans, and the privacy partition that holds only a dead letter.
        #expect(Set(data.spans.map(\.partition)) == [Self.p0, TopicPartition(topic: Self.privacyTopic, partition: 1)])
        #expect(data.items.map(\.source.offset) == [10, 11, 7])
        #expect(data.privacyRequests.isEmpty)
        #expect(data[.training].items == [0, 1])
        #expect(data[.deadLetters].items == [2])
        #expect(data.users == batch.users && !data.users.isEmpty)
        #expect(data.keyId == batch.keyId && requests.keyId == batch.keyId)
        // One kind only: the batch itself.
        #expect(data.transactions().count == 1)
        #expect(requests.transactions().count == 1)
        #expect(requests.transactions()[0].items.count == requests.items.count)
    }

    @Test func aRejectedRowBecomesADeadLetterWithoutItsRows() throws {
        let batch = try Self.twoPartitionBatch().deadLettering(item: 4, rejection: RecordRejection(.rejectedByDatabase, field: "22001"),
                                                               consumerGroup: "g")
        #expect(batch[.training].items == [0, 1])
        #expect(batch[.deadLetters].items == [2, 3, 4])
        guard case .deadLetter(let d) = batch.items[4].outcome else { Issue.record("not a dead letter"); return }
        #expect(d.rejection.description == "rejected_by_database: 22001")
    }

    // MARK: - Binary COPY

    @Test func binaryCopyValues() {
        var e = PostgresBinaryCopyEncoder()
        e.beginRow(fields: 9)
        e.text("é")
        e.text(nil)
        e.int2(7)
        e.int4(-2)
        e.int8(1 << 40)
        e.float8(40.96)
        e.timestamptz(unixMicros: 946_684_800_000_001)  // 2000-01-01T00:00:00.000001Z
        e.jsonb("{}")
        e.textArray([])
        let row = BinaryCopyTuple(e.bytes[...])
        #expect(row.fields.count == 9)
        #expect(row.text(0) == "é")
        #expect(row.fields[1] == nil)
        #expect(row.integer(2) == 7 && row.fields[2]?.count == 2)
        #expect(row.integer(3) == -2 && row.fields[3]?.count == 4)
        #expect(row.integer(4) == 1 << 40)
        #expect(row.float8(5) == 40.96)
        #expect(row.integer(6) == 1)
        #expect(Array(row.fields[7]!) == [1, 0x7B, 0x7D])  // jsonb version 1
        #expect(Array(row.fields[8]!) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25])  // no dimensions, text elements
    }

    @Test func binaryCopyTextArray() {
        var e = PostgresBinaryCopyEncoder()
        e.textArray(["env", "ab"])
        let b = e.bytes
        // length, ndim 1, no NULLs, OID 25, size 2, lower bound 1, then each element with its length.
        #expect(b == [0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1,
                      0, 0, 0, 3, 0x65, 0x6E, 0x76, 0, 0, 0, 2, 0x61, 0x62])
    }

    @Test func binaryCopyStreamIsFramed() {
        let framed = PostgresBinaryCopyEncoder.framed([1, 2])
        #expect(Array(framed.prefix(11)) == Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00])
        #expect(framed.count == 19 + 2 + 2)
        #expect(Array(framed.suffix(2)) == [0xFF, 0xFF])
    }
}
