import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// The ingestion path against the mock cluster and a real PostgreSQL: every input topic lands in
/// its table, anonymized, with bad records dead-lettered, and nothing raw anywhere.
@Suite(.serialized) struct EndToEndTests {
    /// What the rows should be, computed independently of the pipeline from the same messages.
    struct Expected {
        var training = Set<String>(), actions = Set<String>(), lifecycle = Set<String>(), metricPoints = Set<String>()
        /// resource_hash|usage_date|cost_type → the amount of the last record for it (restatements win).
        var billed: [String: Double] = [:]
        var restated = 0
        var invalid = 0
    }

    static func expected(_ messages: [TrafficGenerator.Message], key: HMACKey) throws -> Expected {
        let decoder = RecordDecoder()
        let anonymizer = Anonymizer(key: key, regions: try TestEnvironment.regions())
        var e = Expected()
        for m in messages {
            guard let record = try? decoder.decode(m.topic, m.value) else { e.invalid += 1; continue }
            switch anonymizer.anonymize(record) {
            case .training(let r): e.training.insert(r.scanHash.hex + r.resourceHash.hex)
            case .action(let r): e.actions.insert(r.eventHash.hex)
            case .lifecycle(let r): e.lifecycle.insert(r.eventHash.hex)
            case .metricPoints(let ps): for p in ps { e.metricPoints.insert(p.resourceHash.hex + p.metric + p.ts.description) }
            case .privacy: break
            case .billed(let r):
                let key = "\(r.resourceHash)|\(r.usageDate.dayKey)|\(r.costType.rawValue)"
                if e.billed.updateValue(r.amount, forKey: key) != nil { e.restated += 1 }
            }
        }
        return e
    }

    @Test func everyTopicLandsAnonymizedWithDeadLetters() async throws {
        let env = try await TestEnvironment()
        let messages = TrafficGenerator(seed: 7, badRecordShare: 0.03).messages(count: 4000).filter { $0.topic != .privacyRequests }
        try env.publish(messages)
        // A tombstone and an unknown-topic-shaped record go to dead letters too.
        try env.publish([(.scanResources, "acct", nil), (.userActions, nil, Array("{\"event_id\":".utf8))])
        let pipeline = try env.runPipeline()
        let expected = try Self.expected(messages, key: env.key)
        let db = try env.connect()
        #expect(try TableChecksums.count(db, "ml_training_data") == expected.training.count)
        #expect(try TableChecksums.count(db, "user_action_patterns") == expected.actions.count)
        #expect(try TableChecksums.count(db, "resource_lifecycle_events") == expected.lifecycle.count)
        #expect(try TableChecksums.count(db, "cloudwatch_metrics_history") == expected.metricPoints.count)
        #expect(try TableChecksums.count(db, "dead_letters") == expected.invalid + 2)
        // Billed days: one row per resource, day and cost type, restated days at their latest amount.
        let billed = try db.query("SELECT encode(resource_hash, 'hex') || '|' || to_char(usage_date, 'YYYY-MM-DD') || '|' || cost_type, amount FROM resource_billed_costs")
        #expect(expected.restated > 5)
        #expect(billed.rowCount == expected.billed.count)
        #expect(billed.rows.filter { expected.billed[$0[0]!] != Double($0[1]!) }.count == 0)
        #expect(expected.invalid > 50)
        #expect(pipeline.status.recordsCommitted == messages.count + 2)

        // Offsets in PostgreSQL cover every message exactly.
        let stored = try db.query("SELECT coalesce(sum(next_offset), 0) FROM stream_offsets WHERE next_offset > 0").decode(Int.self)
        #expect(stored == messages.count + 2)

        // Dead letters carry precise reasons, a digest and no payload.
        let reasons = Set(try db.query("SELECT DISTINCT reason FROM dead_letters").rows.map { $0[0]! })
        #expect(reasons.contains("empty_payload"))
        #expect(reasons.contains("unknown_provider: provider"))
        #expect(reasons.contains("malformed_json"))
        #expect(try db.query("SELECT count(*) FROM dead_letters WHERE reason_code = 'invalid_utf8' AND payload_sha256 IS NOT NULL").decode(Int.self) > 0)

        // The dead-letter topic has the original bytes with source headers.
        let dlq = try env.readTopic("cloudwaste.dead-letters.v1")
        #expect(dlq.count >= expected.invalid)
        let originals = Set(messages.map(\.value))
        #expect(dlq.filter { $0.value.map(originals.contains) ?? false }.count >= expected.invalid)

        // Cost trends were computed and published.
        let trends = try TableChecksums.count(db, "cost_trend_data")
        #expect(trends > 0)
        let published = try env.readTopic("cloudwaste.cost-trends.v1")
        #expect(Set(published.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }).count == trends)
        #expect(try db.query("SELECT count(*) FROM cost_trend_data WHERE emitted_revision <> revision").decode(Int.self) == 0)
    }

    @Test func redeliveryConvergesToTheSameRows() async throws {
        let env = try await TestEnvironment()
        let messages = TrafficGenerator(seed: 11, badRecordShare: 0.01).messages(count: 1500).filter { $0.topic != .privacyRequests }
        try env.publish(messages)
        try env.runPipeline()
        let db = try env.connect()
        let first = try TableChecksums.compute(db, withSources: false)
        // Publish everything again: the same records arrive a second time at new offsets.
        try env.publish(messages)
        try env.runPipeline()
        let second = try TableChecksums.compute(db, withSources: false)
        for table in ["ml_training_data", "user_action_patterns", "resource_lifecycle_events", "cloudwatch_metrics_history", "cost_trend_data"] {
            #expect(first[table] == second[table], "table \(table)")
        }
    }
}
