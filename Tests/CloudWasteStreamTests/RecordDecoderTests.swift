import Foundation
import Testing
import Synchronization
@testable import CloudWasteStream

/// The topic contract: every example under `topics/*/examples` decodes (valid) or is rejected with
/// exactly the reason written in `reasons.json` (invalid). Plus direct edge cases.
@Suite struct RecordDecoderTests {
    static let now = Timestamp.parseRFC3339("2026-11-29T00:00:00Z")!
    static let topicsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topics")

    static func decoder(_ limits: RecordDecoder.Limits = RecordDecoder.Limits()) -> RecordDecoder {
        RecordDecoder(limits: limits, now: { now })
    }

    struct Example: Sendable, CustomTestStringConvertible {
        var folder: String
        var topic: InputTopic
        var file: String
        var path: String
        /// For invalid examples, the expected reason from reasons.json (nil if the file has none).
        var reason: String?
        var testDescription: String { "\(folder)/\(file)" }
    }

    /// Topic folders that hold examples, mapped to their input topic (output topics map to nil).
    static func exampleFolders() -> [(folder: String, topic: InputTopic?)] {
        let fm = FileManager.default
        let folders = (try? fm.contentsOfDirectory(atPath: topicsDirectory.path)) ?? []
        return folders.sorted().compactMap { folder in
            var isDir: ObjCBool = false
            let examples = topicsDirectory.appendingPathComponent(folder).appendingPathComponent("examples").path
            guard fm.fileExists(atPath: examples, isDirectory: &isDir), isDir.boolValue else { return nil }
            return (folder, InputTopic(rawValue: folder))
        }
    }

    static func reasons(_ folder: String) -> [String: String] {
        let url = topicsDirectory.appendingPathComponent(folder).appendingPathComponent("examples/invalid/reasons.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return [:] }
        var out: [String: String] = [:]
        for (file, entry) in object {
            if let e = entry as? [String: Any], let reason = e["reason"] as? String { out[file] = reason }
        }
        return out
    }

    static func examples(_ kind: String) -> [Example] {
        var out: [Example] = []
        for (folder, topic) in exampleFolders() {
            guard let topic else { continue }
            let dir = topicsDirectory.appendingPathComponent(folder).appendingPathComponent("examples").appendingPathComponent(kind)
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { $0.hasSuffix(".json") && $0 != "reasons.json" }.sorted()
            let reasons = kind == "invalid" ? reasons(folder) : [:]
            for file in files {
                out.append(Example(folder: folder, topic: topic, file: file, path: dir.appendingPathComponent(file).path,
                                   reason: reasons[file]))
            }
        }
        return out
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    // MARK: - Contract examples

    @Test func everyInputTopicHasExamples() {
        let folders = Self.exampleFolders()
        let topics = Set(folders.compactMap(\.topic))
        #expect(topics == Set(InputTopic.allCases))
        // Folders with examples that are not input topics are output topics.
        for (folder, topic) in folders where topic == nil {
            #expect(["cost-trends", "dead-letters"].contains(folder), "\(folder) has examples but is no input topic")
        }
        #expect(Self.examples("valid").count >= 20)
        #expect(Self.examples("invalid").count >= 60)
    }

    @Test func everyInvalidExampleHasAReasonAndEveryReasonAFile() {
        for (folder, topic) in Self.exampleFolders() where topic != nil {
            let files = Set(Self.examples("invalid").filter { $0.folder == folder }.map(\.file))
            let reasons = Set(Self.reasons(folder).keys)
            #expect(files == reasons, "\(folder): files and reasons.json disagree")
        }
    }

    @Test(arguments: RecordDecoderTests.examples("valid"))
    func validExampleDecodes(_ example: Example) throws {
        let record = try Self.decoder().decode(example.topic, try Self.bytes(example.path))
        switch (example.topic, record) {
        case (.scanResources, .scan), (.userActions, .action), (.resourceLifecycle, .lifecycle),
             (.metricSamples, .metrics), (.privacyRequests, .privacy), (.billedCosts, .billed):
            break
        default:
            Issue.record("\(example.testDescription) decoded to the wrong kind: \(record)")
        }
    }

    @Test(arguments: RecordDecoderTests.examples("invalid"))
    func invalidExampleIsRejectedWithItsReason(_ example: Example) throws {
        let expected = try #require(example.reason, "no reason in reasons.json for \(example.file)")
        let payload = try Self.bytes(example.path)
        do {
            let record = try Self.decoder().decode(example.topic, payload)
            Issue.record("accepted: \(record)")
        } catch {
            #expect(error.description == expected)
            // A reason never carries a value from the record.
            #expect(error.field == nil || RecordDecoder.knownFields[example.topic]!.contains(error.field!))
        }
    }

    // MARK: - Direct cases

    static let scan = """
        {"event_id":"e-1","scan_id":"s-1","detected_at":"2026-03-14T06:12:44Z","user_id":"u-1",
         "cloud_account_id":"123456789012","provider":"aws","region":"us-east-1","resource_type":"ebs_volume",
         "resource_id":"arn:aws:ec2:us-east-1:123456789012:volume/vol-1","scenario":"unattached",
         "confidence":"high","estimated_monthly_cost":12.5}
        """

    /// The minimal scan record with one more field inserted or one replaced (by textual substitution).
    static func scanWith(_ extra: String) -> [UInt8] {
        Array(scan.replacingOccurrences(of: "\"estimated_monthly_cost\":12.5}", with: "\"estimated_monthly_cost\":12.5,\(extra)}").utf8)
    }

    static func scanReplacing(_ old: String, _ new: String) -> [UInt8] {
        precondition(scan.contains(old), "\(old) not in the record")
        return Array(scan.replacingOccurrences(of: old, with: new).utf8)
    }

    private func rejection(_ payload: [UInt8]?, limits: RecordDecoder.Limits = RecordDecoder.Limits()) -> String? {
        rejection(.scanResources, payload, limits: limits)
    }

    private func rejection(_ topic: InputTopic, _ payload: [UInt8]?,
                           limits: RecordDecoder.Limits = RecordDecoder.Limits()) -> String? {
        do {
            _ = try Self.decoder(limits).decode(topic, payload)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func minimalScanRecordDecodesWithDefaults() throws {
        let record = try Self.decoder().decode(.scanResources, Array(Self.scan.utf8))
        guard case .scan(let r) = record else { Issue.record("not a scan"); return }
        #expect(r.eventId == "e-1" && r.scanId == "s-1" && r.userId == "u-1")
        #expect(r.provider == .aws && r.region == "us-east-1" && r.confidence == .high)
        #expect(r.estimatedMonthlyCost == 12.5)
        #expect(r.currency == "USD")
        #expect(r.metrics.isEmpty && r.tags == ScanTags())
        #expect(r.resourceCreatedAt == nil && r.parentResourceId == nil)
        #expect(r.detectedAt == Timestamp.parseRFC3339("2026-03-14T06:12:44Z"))
    }

    @Test func tombstoneAndEmptyPayloadAreEmpty() {
        for topic in InputTopic.allCases {
            #expect(rejection(topic, nil) == "empty_payload")
            #expect(rejection(topic, []) == "empty_payload")
        }
    }

    @Test func payloadSizeLimit() {
        var limits = RecordDecoder.Limits()
        limits.maxPayloadBytes = 1024
        var exact = Array(Self.scan.utf8)
        exact += [UInt8](repeating: 0x20, count: 1024 - exact.count)  // trailing white space is allowed
        #expect(exact.count == 1024)
        #expect(rejection(exact, limits: limits) == nil)
        #expect(rejection(exact + [0x20], limits: limits) == "payload_too_large")

        // The default limit is 1 MiB.
        #expect(RecordDecoder.Limits().maxPayloadBytes == 1_048_576)
        let big = [UInt8](repeating: 0x20, count: 1_048_577)
        #expect(rejection(big) == "payload_too_large")
    }

    @Test func costAsStringIsWrongType() {
        #expect(rejection(Self.scanReplacing("12.5", "\"12.5\"")) == "wrong_type: estimated_monthly_cost")
    }

    @Test func nanAndInfinityLiteralsAreMalformed() {
        #expect(rejection(Self.scanReplacing("12.5", "NaN")) == "malformed_json")
        #expect(rejection(Self.scanReplacing("12.5", "Infinity")) == "malformed_json")
        #expect(rejection(Self.scanReplacing("12.5", "-Infinity")) == "malformed_json")
    }

    @Test func moneyRules() throws {
        #expect(rejection(Self.scanReplacing("12.5", "-0.01")) == "invalid_money: estimated_monthly_cost")
        #expect(rejection(Self.scanReplacing("12.5", "10000000.01")) == "invalid_money: estimated_monthly_cost")
        #expect(rejection(Self.scanReplacing("12.5", "10000000")) == nil)
        #expect(rejection(Self.scanReplacing("12.5", "1e400")) == "invalid_number: estimated_monthly_cost")
        #expect(rejection(Self.scanReplacing("12.5", "true")) == "wrong_type: estimated_monthly_cost")
        #expect(rejection(Self.scanReplacing("12.5", "null")) == "missing_field: estimated_monthly_cost")
        // -0 is stored as 0.
        guard case .scan(let r) = try Self.decoder().decode(.scanResources, Self.scanReplacing("12.5", "-0")) else {
            Issue.record("not a scan"); return
        }
        #expect(r.estimatedMonthlyCost == 0 && r.estimatedMonthlyCost.sign == .plus)
    }

    @Test func futureTimestampBoundaryIs24Hours() {
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T00:00:00Z")) == nil)
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T00:00:00.000001Z")) == "future_timestamp: detected_at")
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T01:00:00+01:00")) == nil)
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T01:00:01+01:00")) == "future_timestamp: detected_at")
    }

    /// The clock is read at the first timestamp, then only for one beyond the skew of the last
    /// reading: a clock that has moved on since admits what the last reading would not have.
    @Test func theClockIsReadOnlyForATimestampBeyondTheLastReading() throws {
        let readings = Mutex<[Timestamp]>([Self.now, Timestamp(micros: Self.now.micros + 2 * 86_400_000_000)])
        let reads = Mutex(0)
        let decoder = RecordDecoder(now: {
            reads.withLock { $0 += 1 }
            return readings.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] }
        })
        var tape = JSONTape()
        func decode(_ payload: [UInt8]) throws -> InputRecord {
            try payload.withUnsafeBufferPointer { (bytes) throws(RecordRejection) in try decoder.decode(.scanResources, bytes, tape: &tape) }
        }
        for _ in 0..<50 { _ = try decode(Self.scanWith(#""resource_created_at":"2026-01-01T00:00:00Z""#)) }
        #expect(reads.withLock { $0 } == 1)
        // A day and a half after the first reading: beyond its skew, within the next one's.
        _ = try decode(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T12:00:00Z"))
        #expect(reads.withLock { $0 } == 2)
        _ = try decode(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-11-30T12:00:00Z"))
        #expect(reads.withLock { $0 } == 2)
        // Beyond the skew of the latest reading, which the clock confirms: rejected.
        #expect(throws: RecordRejection(.futureTimestamp, field: "detected_at")) {
            _ = try decode(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-12-02T00:00:00.000001Z"))
        }
        #expect(reads.withLock { $0 } == 3)
    }

    @Test func timestampRules() {
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "1999-12-31T23:59:59Z")) == "invalid_timestamp: detected_at")
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2000-01-01T00:00:00Z")) == nil)
        #expect(rejection(Self.scanReplacing("2026-03-14T06:12:44Z", "2026-03-14 06:12:44")) == "invalid_timestamp: detected_at")
        #expect(rejection(Self.scanReplacing("\"2026-03-14T06:12:44Z\"", "1773468764")) == "wrong_type: detected_at")
        #expect(rejection(Self.scanWith(#""resource_created_at":"2026-02-29T00:00:00Z""#)) == "invalid_timestamp: resource_created_at")
        #expect(rejection(Self.scanWith(#""resource_created_at":null"#)) == nil)
    }

    @Test func requiredNullIsMissingAndChecksRunInSpecOrder() {
        #expect(rejection(Self.scanReplacing("\"e-1\"", "null")) == "missing_field: event_id")
        // Several faults: the first field in SPEC order wins (event_id before the cost).
        let both = Array(Self.scan.replacingOccurrences(of: "\"e-1\"", with: "null")
            .replacingOccurrences(of: "12.5", with: "\"x\"").utf8)
        #expect(rejection(both) == "missing_field: event_id")
        #expect(rejection(Self.scanReplacing("\"region\":\"us-east-1\",", "")) == "missing_field: region")
    }

    @Test func identifiersAndTokens() {
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"   \"")) == "invalid_value: user_id")
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"\"")) == "invalid_value: user_id")
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"u\\u0000x\"")) == "invalid_value: user_id")
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"\(String(repeating: "u", count: 256))\"")) == nil)
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"\(String(repeating: "u", count: 257))\"")) == "invalid_value: user_id")
        #expect(rejection(Self.scanReplacing("\"u-1\"", "\"\(String(repeating: "é", count: 256))\"")) == nil)
        let longId = "arn:aws:ec2:us-east-1:123456789012:volume/vol-1"
        let pad = String(repeating: "x", count: 2048 - longId.count)
        #expect(rejection(Self.scanReplacing(longId, longId + pad)) == nil)
        #expect(rejection(Self.scanReplacing(longId, longId + pad + "x")) == "invalid_value: resource_id")
        #expect(rejection(Self.scanReplacing("\"ebs_volume\"", "\"EBS.Volume/x-1_2\"")) == nil)
        #expect(rejection(Self.scanReplacing("\"ebs_volume\"", "\"ebs volume\"")) == "invalid_value: resource_type")
        #expect(rejection(Self.scanReplacing("\"ebs_volume\"", "\"\(String(repeating: "a", count: 65))\"")) == "invalid_value: resource_type")
        #expect(rejection(Self.scanReplacing("\"unattached\"", "\"unattachéd\"")) == "invalid_value: scenario")
        #expect(rejection(Self.scanReplacing("\"aws\"", "\"AWS\"")) == "unknown_provider: provider")
        #expect(rejection(Self.scanReplacing("\"aws\"", "\"oracle\"")) == "unknown_provider: provider")
        #expect(rejection(Self.scanReplacing("\"aws\"", "1")) == "wrong_type: provider")
        #expect(rejection(Self.scanReplacing("\"high\"", "\"HIGH\"")) == "invalid_value: confidence")
        #expect(rejection(Self.scanReplacing("\"us-east-1\"", "\"\(String(repeating: "r", count: 65))\"")) == "invalid_value: region")
        #expect(rejection(Self.scanReplacing("\"us-east-1\"", "\"atlantis-9\"")) == nil)  // unknown region is accepted
    }

    @Test func optionalFields() throws {
        #expect(rejection(Self.scanWith(#""currency":"eur""#)) == "invalid_value: currency")
        #expect(rejection(Self.scanWith(#""currency":"EURO""#)) == "invalid_value: currency")
        #expect(rejection(Self.scanWith(#""resource_name":"""#)) == nil)
        #expect(rejection(Self.scanWith(#""resource_name":5"#)) == "wrong_type: resource_name")
        #expect(rejection(Self.scanWith(#""parent_resource_id":"""#)) == "invalid_value: parent_resource_id")
        guard case .scan(let r) = try Self.decoder().decode(.scanResources, Self.scanWith(#""currency":"EUR","parent_resource_id":"p-1""#)) else {
            Issue.record("not a scan"); return
        }
        #expect(r.currency == "EUR")
        #expect(r.parentResourceId == "p-1")
    }

    /// Every key is kept as SPEC §3 keeps it (lower-cased, de-duplicated, sorted); of the values
    /// only the environment tag's (SPEC §3 reads nothing else).
    @Test func tagsKeepKeysAndTheEnvironmentValueOnly() throws {
        let tags = #""tags":{"Owner":"jane@example.com","Stage":"UAT","ENV":null,"team":"a","env":"prod","Env":"dev"}"#
        guard case .scan(let r) = try Self.decoder().decode(.scanResources, Self.scanWith(tags)) else {
            Issue.record("not a scan"); return
        }
        #expect(r.tags.keys.strings == ["env", "owner", "stage", "team"])
        // "ENV" sorts before "Env", "Stage" and "env": its null is the value that counts.
        #expect(r.tags.environment == ScanTags.EnvironmentTag(key: "ENV", value: nil))
        guard case .scan(let single) = try Self.decoder().decode(.scanResources, Self.scanWith(#""tags":{"a":"x","environment":" Prod "}"#)) else {
            Issue.record("not a scan"); return
        }
        #expect(single.tags.environment == ScanTags.EnvironmentTag(key: "environment", value: " Prod "))
        #expect(single.tags == ScanTags([("a", "ignored"), ("environment", " Prod ")]))
    }

    @Test func severalFaultyMetricsGetTheReasonOfTheFirstInNameOrderWhateverTheirOrder() throws {
        let missingP95 = #""a_metric":{"avg":1}"#  // invalid_value
        let textP95 = #""b_metric":{"avg":1,"p95":"2"}"#  // wrong_type
        let fine = #""c_metric":{"avg":1,"p95":2}"#
        let arrays = RecycledArrays()  // the preparer's way too: into arrays handed back by a record before
        var tape = JSONTape()
        for members in [[missingP95, textP95, fine], [textP95, fine, missingP95], [fine, textP95, missingP95]] {
            let payload = Self.scanWith("\"metrics\":{\(members.joined(separator: ","))}")
            #expect(rejection(payload) == "invalid_value: metrics")
            #expect(throws: RecordRejection(.invalidValue, field: "metrics")) {
                try payload.withUnsafeBufferPointer { (bytes) throws(RecordRejection) in
                    _ = try Self.decoder().decode(.scanResources, bytes, tape: &tape, arrays: arrays)
                }
            }
            arrays.recycle(metricSummaries: [MetricSummary](repeating: MetricSummary(name: "x", avg: 0, p95: 0), count: 3), tagKeys: ["k"])
        }
        // Accepted summaries come in name order, whatever the members' order.
        guard case .scan(let r) = try Self.decoder().decode(.scanResources, Self.scanWith(#""metrics":{"z":{"avg":1,"p95":2},"b":{"avg":3,"p95":4},"m":{"avg":5,"p95":6}}"#)) else {
            Issue.record("not a scan"); return
        }
        #expect(r.metrics.map(\.name) == ["b", "m", "z"])
        #expect(r.metrics.map(\.avg) == [3, 5, 1])
    }

    @Test func metricsAndTags() throws {
        #expect(rejection(Self.scanWith(#""metrics":[]"#)) == "wrong_type: metrics")
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1}}"#)) == "invalid_value: metrics")
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1,"p95":"2"}}"#)) == "wrong_type: metrics")
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1,"p95":2,"trend":"sideways"}}"#)) == "invalid_value: metrics")
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1,"p95":2e15}}"#)) == "invalid_value: metrics")
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1,"p95":2,"trend":null}}"#)) == nil)
        #expect(rejection(Self.scanWith(#""tags":{"a":1}"#)) == "wrong_type: tags")
        #expect(rejection(Self.scanWith(#""tags":["a"]"#)) == "wrong_type: tags")
        #expect(rejection(Self.scanWith(#""tags":{"":"x"}"#)) == "invalid_value: tags")
        #expect(rejection(Self.scanWith(#""tags":{"a\u0007b":"x"}"#)) == "invalid_value: tags")
        #expect(rejection(Self.scanWith(#""tags":{"a\u007fb":"x"}"#)) == "invalid_value: tags")
        #expect(rejection(Self.scanWith(#""tags":{"a\u0085b":"x"}"#)) == "invalid_value: tags")
        #expect(rejection(Self.scanWith(#""tags":{"a\u0000b":"x"}"#)) == "invalid_value: tags")
        // At most 128 characters, counted as characters, not bytes.
        #expect(rejection(Self.scanWith("\"tags\":{\"\(String(repeating: "k", count: 128))\":\"x\"}")) == nil)
        #expect(rejection(Self.scanWith("\"tags\":{\"\(String(repeating: "k", count: 129))\":\"x\"}")) == "invalid_value: tags")
        #expect(rejection(Self.scanWith("\"tags\":{\"\(String(repeating: "é", count: 128))\":\"x\"}")) == nil)
        #expect(rejection(Self.scanWith("\"tags\":{\"\(String(repeating: "é", count: 129))\":\"x\"}")) == "invalid_value: tags")
        #expect(rejection(Self.scanWith(#""tags":{"a":"1","a":"2"}"#)) == "duplicate_field: tags")
        let hundred = (0..<100).map { "\"k\($0)\":\"v\"" }.joined(separator: ",")
        #expect(rejection(Self.scanWith("\"tags\":{\(hundred)}")) == nil)
        #expect(rejection(Self.scanWith("\"tags\":{\(hundred),\"k100\":\"v\"}")) == "invalid_value: tags")
    }

    @Test func unknownFieldsAreIgnoredButNeverEchoed() {
        #expect(rejection(Self.scanWith(#""x_future":{"nested":[1,2,3]}"#)) == nil)
        // Faults inside an unknown field name no field (its name could be a secret).
        #expect(rejection(Self.scanWith(#""x_secret_1234":1,"x_secret_1234":2"#)) == "duplicate_field")
        #expect(rejection(Self.scanWith(#""x_secret_1234":1e999"#)) == "invalid_number")
        #expect(rejection(Self.scanWith(#""x_secret_1234":{"k":1,"k":2}"#)) == "duplicate_field")
        // A duplicate inside a known field is reported against that field.
        #expect(rejection(Self.scanWith(#""metrics":{"cpu":{"avg":1,"p95":2,"p95":3}}"#)) == "duplicate_field: metrics")
    }

    @Test func wholeRecordCodes() {
        #expect(rejection(Array("[1]".utf8)) == "not_an_object")
        #expect(rejection(Array("null".utf8)) == "not_an_object")
        #expect(rejection(Array("\"x\"".utf8)) == "not_an_object")
        #expect(rejection(Array("{".utf8)) == "malformed_json")
        #expect(rejection(Array("{} {}".utf8)) == "malformed_json")
        #expect(rejection([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) == "invalid_utf8")
        let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
        #expect(rejection(Self.scanWith("\"x\":\(deep)")) == "nesting_too_deep")
        let deepest = String(repeating: "[", count: 100_000)
        #expect(rejection(Array(deepest.utf8)) == "nesting_too_deep")
    }

    @Test func userActionConsistency() {
        let action = """
            {"event_id":"a-1","user_id":"u-1","cloud_account_id":"1","provider":"gcp","resource_id":"r","resource_type":"disk",
             "action":"deleted","detected_at":"2026-03-10T08:00:00Z","action_at":"2026-03-10T08:00:00Z"}
            """
        #expect(rejection(.userActions, Array(action.utf8)) == nil)
        let before = action.replacingOccurrences(of: "\"action_at\":\"2026-03-10T08:00:00Z\"", with: "\"action_at\":\"2026-03-10T07:59:59.999999Z\"")
        #expect(rejection(.userActions, Array(before.utf8)) == "inconsistent_record: action_at")
        // Offsets count: 09:00+01:00 is the same instant.
        let offset = action.replacingOccurrences(of: "\"action_at\":\"2026-03-10T08:00:00Z\"", with: "\"action_at\":\"2026-03-10T09:00:00+01:00\"")
        #expect(rejection(.userActions, Array(offset.utf8)) == nil)
        let archived = action.replacingOccurrences(of: "\"deleted\"", with: "\"archived\"")
        #expect(rejection(.userActions, Array(archived.utf8)) == "invalid_value: action")
    }

    @Test func metricPoints() throws {
        func sample(_ points: String) -> [UInt8] {
            Array("""
                {"cloud_account_id":"1","provider":"aws","resource_id":"r","metric":"CPUUtilization","unit":"%","points":\(points)}
                """.utf8)
        }
        #expect(rejection(.metricSamples, sample(#"[{"ts":"2026-03-10T08:00:00Z","value":1}]"#)) == nil)
        #expect(rejection(.metricSamples, sample("[]")) == "invalid_value: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":"2026-03-10T08:00:00Z"}]"#)) == "missing_field: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":"2026-03-10T08:00:00Z","value":null}]"#)) == "missing_field: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":1,"value":1}]"#)) == "wrong_type: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":"2026-03-10T08:00:00Z","value":1e16}]"#)) == "invalid_value: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":"2026-12-01T00:00:00Z","value":1}]"#)) == "future_timestamp: points")
        #expect(rejection(.metricSamples, sample(#"[{"ts":"1999-12-01T00:00:00Z","value":1}]"#)) == "invalid_timestamp: points")
        var limits = RecordDecoder.Limits()
        limits.maxMetricPoints = 3
        let four = "[" + Array(repeating: #"{"ts":"2026-03-10T08:00:00Z","value":1}"#, count: 4).joined(separator: ",") + "]"
        #expect(rejection(.metricSamples, sample(four), limits: limits) == "invalid_value: points")

        guard case .metrics(let m) = try Self.decoder().decode(.metricSamples, sample(#"[{"ts":"2026-03-10T08:00:00Z","value":-0.25}]"#)) else {
            Issue.record("not metrics"); return
        }
        #expect(m.unit == "%")
        #expect(m.points == [MetricPoint(ts: Timestamp.parseRFC3339("2026-03-10T08:00:00Z")!, value: -0.25)])
    }

    @Test func privacyRequests() throws {
        let json = #"{"event_id":"p-1","user_id":"u-1","request":"opt_out","requested_at":"2026-03-10T08:00:00+05:00"}"#
        guard case .privacy(let p) = try Self.decoder().decode(.privacyRequests, Array(json.utf8)) else {
            Issue.record("not privacy"); return
        }
        #expect(p.request == .optOut)
        #expect(p.requestedAt == Timestamp.parseRFC3339("2026-03-10T03:00:00Z"))
        #expect(rejection(.privacyRequests, Array(json.replacingOccurrences(of: "opt_out", with: "delete").utf8)) == "invalid_value: request")
    }

    @Test func billedCosts() throws {
        let json = #"{"event_id":"b-1","cloud_account_id":"123456789012","provider":"aws","resource_id":"vol-1","usage_date":"2026-02-28","amount":1.5,"currency":"EUR"}"#
        guard case .billed(let b) = try Self.decoder().decode(.billedCosts, Array(json.utf8)) else {
            Issue.record("not billed"); return
        }
        #expect(b.usageDate == Timestamp.parseRFC3339("2026-02-28T00:00:00Z"))
        #expect(b.costType == .unblended)  // the default
        #expect(b.source == nil)
        #expect(b.currency == "EUR" && b.amount == 1.5)
        func with(_ from: String, _ to: String) -> [UInt8] { Array(json.replacingOccurrences(of: from, with: to).utf8) }
        #expect(rejection(.billedCosts, with(#""usage_date":"2026-02-28""#, #""usage_date":"2026-02-29""#)) == "invalid_timestamp: usage_date")
        #expect(rejection(.billedCosts, with(#""usage_date":"2026-02-28""#, #""usage_date":"2026-2-28""#)) == "invalid_timestamp: usage_date")
        #expect(rejection(.billedCosts, with(#""usage_date":"2026-02-28""#, #""usage_date":20260228"#)) == "wrong_type: usage_date")
        #expect(rejection(.billedCosts, with(#","currency":"EUR""#, "")) == "missing_field: currency")
        #expect(rejection(.billedCosts, with(#""amount":1.5"#, #""amount":-0.01"#)) == "invalid_money: amount")
        #expect(rejection(.billedCosts, with(#""currency":"EUR""#, #""currency":"EUR","cost_type":"Unblended""#)) == "invalid_value: cost_type")
        guard case .billed(let net) = try Self.decoder().decode(.billedCosts, with(#""currency":"EUR""#, #""currency":"EUR","cost_type":"net","source":"cur""#)) else {
            Issue.record("not billed"); return
        }
        #expect(net.costType == .net && net.source == "cur")
        // A day that starts more than 24 h from now is in the future.
        let soon = Timestamp(micros: Timestamp.now().micros + 3 * 86_400_000_000).dayKey
        #expect(rejection(.billedCosts, with("2026-02-28", soon)) == "future_timestamp: usage_date")
    }

    @Test func userActionCurrencyDefaultsToUSD() throws {
        let json = #"{"event_id":"a-1","user_id":"u","cloud_account_id":"c","provider":"azure","resource_id":"r","resource_type":"disk","action":"deleted","detected_at":"2026-03-01T00:00:00Z","action_at":"2026-03-02T00:00:00Z","cost_saved_monthly":3}"#
        guard case .action(let a) = try Self.decoder().decode(.userActions, Array(json.utf8)) else { Issue.record("not an action"); return }
        #expect(a.currency == "USD")
        guard case .action(let eur) = try Self.decoder().decode(.userActions, Array(json.replacingOccurrences(of: "}", with: #","currency":"EUR"}"#).utf8)) else {
            Issue.record("not an action"); return
        }
        #expect(eur.currency == "EUR")
        #expect(rejection(.userActions, Array(json.replacingOccurrences(of: "}", with: #","currency":"eur"}"#).utf8)) == "invalid_value: currency")
    }

    @Test func reasonsNeverContainRecordValues() {
        let secret = "secret-account-998877"
        for payload in [
            Self.scanWith("\"tags\":{\"\(secret)\":1}"),
            Self.scanReplacing("\"aws\"", "\"\(secret)\""),
            Self.scanReplacing("\"high\"", "\"\(secret)\""),
            Self.scanReplacing("12.5", "\"\(secret)\""),
            Self.scanWith("\"\(secret)\":1,\"\(secret)\":2"),
        ] {
            let reason = rejection(payload) ?? ""
            #expect(!reason.contains(secret))
        }
    }

    @Test func rejectionDescription() {
        #expect(RecordRejection(.missingField, field: "detected_at").description == "missing_field: detected_at")
        #expect(RecordRejection(.emptyPayload).description == "empty_payload")
        #expect(RecordRejection.Code.allCases.count == Set(RecordRejection.Code.allCases.map(\.rawValue)).count)
    }

    @Test func topicNames() {
        #expect(InputTopic.scanResources.name(prefix: "cloudwaste.") == "cloudwaste.scan-resources.v1")
        #expect(InputTopic.privacyRequests.name(prefix: "acme.") == "acme.privacy-requests.v1")
    }
}
