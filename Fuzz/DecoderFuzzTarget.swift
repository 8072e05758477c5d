// libFuzzer target for the record decoder and the anonymizer (see Fuzz/README.md).
//
// Not part of the Swift package: scripts/fuzz.sh compiles this file together with
// Sources/CloudWasteStream/{Records,Anonymization}/*.swift into one module named CloudWasteStream,
// so internal symbols (RecordDecoder.knownFields, Anonymizer.metricsJSON, ...) are visible here.
//
// Input layout: byte 0 selects the input topic, bytes 1... are the Kafka message value.
//   byte '0' scan-resources, '1' user-actions, '2' resource-lifecycle, '3' metric-samples,
//   '4' privacy-requests; any other byte b selects InputTopic.allCases[(b + 2) % 5].
// Every violated invariant calls fatalError with a message naming the invariant, so libFuzzer
// stores the input as a crash.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Entry points

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(
    _ argc: UnsafeMutablePointer<CInt>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> CInt {
    _ = FuzzFixture.anonymizer  // load the key and region table once, before the first input
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    FuzzChecks.checkRawBytes(bytes)
    guard let selector = bytes.first else { return 0 }
    let topic = FuzzFixture.topic(selector: selector)
    FuzzChecks.checkDecodeAndAnonymize(topic, Array(bytes.dropFirst()))
    return 0
}

// MARK: - Fixture (built once)

enum FuzzFixture {
    /// Same fixed clock as the unit tests; topic examples are dated before it.
    static let now = Timestamp(micros: 1_795_910_400_000_000)  // 2026-11-29T00:00:00Z
    static let decoder = RecordDecoder(now: { FuzzFixture.now })
    static let keyBytes: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }

    /// The nine buckets of config/regions.json ("buckets"); checked against the file at start-up.
    static let buckets: Set<String> = ["us-*", "ca-*", "sa-*", "eu-*", "me-*", "af-*", "ap-*", "global", "other"]
    static let environmentClasses: Set<String> = ["prod", "staging", "dev", "test", "other"]

    /// A preparer's recycled arrays, shared by every input as a preparer shares them among its
    /// records (one thread, one input at a time).
    nonisolated(unsafe) static let arrays = RecycledArrays()

    /// libFuzzer runs inputs one at a time on one thread, so one shared Anonymizer is safe.
    nonisolated(unsafe) static let anonymizer: Anonymizer = {
        let key: HMACKey
        do { key = try HMACKey(bytes: keyBytes) } catch { fuzzSetupFailure("fixed HMAC key rejected: \(error)") }
        let path = regionTablePath()
        guard let json = readFile(path) else { fuzzSetupFailure("cannot read the region table at \(path) (set CLOUDWASTE_FUZZ_REGIONS)") }
        let table: RegionTable
        do { table = try RegionTable(json: json) } catch { fuzzSetupFailure("region table \(path): \(error)") }
        // The invariant below hard-codes nine buckets: fail loudly if the data file changed them.
        guard case .object(let root)? = try? JSONParser().parse(json), case .array(let list)? = root["buckets"] else {
            fuzzSetupFailure("region table \(path) has no \"buckets\" array")
        }
        let fileBuckets = Set(list.compactMap { if case .string(let s) = $0 { s } else { nil } })
        guard fileBuckets == buckets, list.count == buckets.count else {
            fuzzSetupFailure("config/regions.json lists buckets \(list), the fuzz target expects \(buckets.sorted()); update FuzzFixture.buckets")
        }
        return Anonymizer(key: key, regions: table)
    }()

    /// Known, reported issues to step over so fuzzing can go on while they are open:
    /// CLOUDWASTE_FUZZ_IGNORE=timestamp-year-range (comma-separated ids, see Fuzz/README.md).
    static let ignoredIssues: Set<Substring> = {
        guard let env = getenv("CLOUDWASTE_FUZZ_IGNORE") else { return [] }
        return Set(String(cString: env).split(separator: ","))
    }()

    static func ignored(_ issue: Substring) -> Bool { ignoredIssues.contains(issue) }

    static func topic(selector: UInt8) -> InputTopic {
        let all = InputTopic.allCases
        return all[(Int(selector) + 2) % all.count]
    }

    /// $CLOUDWASTE_FUZZ_REGIONS, else config/regions.json of the checkout this file was compiled from.
    static func regionTablePath() -> String {
        if let env = getenv("CLOUDWASTE_FUZZ_REGIONS"), env.pointee != 0 { return String(cString: env) }
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(2)  // Fuzz/DecoderFuzzTarget.swift
        let root = parts.joined(separator: "/")
        return (root.isEmpty ? "." : root) + "/config/regions.json"
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { out.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count { break }
        }
        return ferror(f) == 0 ? out : nil
    }
}

func fuzzSetupFailure(_ message: String) -> Never {
    let line = Array("fuzz target setup failed: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

/// A broken invariant: print it and abort (libFuzzer saves the input as crash-<sha1>).
func violated(_ message: @autoclosure () -> String) -> Never {
    fatalError("FUZZ INVARIANT VIOLATED: \(message())")
}

// MARK: - Checks

enum FuzzChecks {
    // MARK: Raw bytes: JSON parser and RFC 3339 parser must not crash, and must be consistent.

    static func checkRawBytes(_ bytes: [UInt8]) {
        checkTimestamp(String(decoding: bytes, as: UTF8.self))
        if let value = checkJSON(bytes, maxDepth: 32) {
            forEachString(in: value) { checkTimestamp($0) }
        }
    }

    /// Parses and checks: accepted bytes are UTF-8, and the value survives serialize → parse.
    @discardableResult
    static func checkJSON(_ bytes: [UInt8], maxDepth: Int) -> JSONValue? {
        let value: JSONValue
        do {
            value = try JSONParser(maxDepth: maxDepth).parse(bytes)
        } catch {
            return nil
        }
        let isUTF8 = bytes.withUnsafeBufferPointer { String(validating: $0, as: UTF8.self) != nil }
        if !isUTF8 { violated("JSONParser accepted bytes that are not valid UTF-8") }
        if depth(of: value) > maxDepth { violated("JSONParser accepted nesting deeper than maxDepth \(maxDepth)") }
        var out: [UInt8] = []
        serialize(value, into: &out)
        let again: JSONValue
        do {
            again = try JSONParser(maxDepth: maxDepth).parse(out)
        } catch {
            violated("JSONParser rejects its own value re-serialized (\(error)): \(String(decoding: out.prefix(200), as: UTF8.self))")
        }
        if again != value { violated("JSON value changed after serialize → parse") }
        return value
    }

    static func checkTimestamp(_ text: String) {
        guard let t = Timestamp.parseRFC3339(text) else { return }
        let c = t.civil
        guard (1...12).contains(c.month), (1...31).contains(c.day), (0...23).contains(c.hour),
              (0...59).contains(c.minute), (0...59).contains(c.second), (0..<1_000_000).contains(c.micro),
              (1...7).contains(t.isoWeekday) else {
            violated("Timestamp civil fields out of range for \(t.micros) µs: \(c)")
        }
        let text2 = t.description
        guard let back = Timestamp.parseRFC3339(text2) else {
            // Known issue (Fuzz/regressions/timestamp-*): an offset moves the UTC instant out of
            // 0000...9999, which `description` cannot write as RFC 3339.
            if !(0...9999).contains(c.year), FuzzFixture.ignored("timestamp-year-range") { return }
            violated("Timestamp.description \"\(text2)\" (from \"\(text.prefix(64))\") does not parse back")
        }
        if back != t { violated("Timestamp round trip changed \(t.micros) µs to \(back.micros) µs via \"\(text2)\"") }
    }

    // MARK: Decoder and anonymizer

    static let jsonLevelCodes: Set<RecordRejection.Code> = [.invalidUTF8, .malformedJSON, .nestingTooDeep, .duplicateField, .invalidNumber]

    static func checkDecodeAndAnonymize(_ topic: InputTopic, _ payload: [UInt8]) {
        let decoder = FuzzFixture.decoder
        // What the parser alone says, to cross-check the decoder's rejection codes.
        let parsed: Result<JSONValue, JSONParseError> = Result { () throws(JSONParseError) -> JSONValue in
            try JSONParser(maxDepth: decoder.limits.maxDepth).parse(payload)
        }
        let record: InputRecord
        do {
            record = try decoder.decode(topic, payload)
        } catch {
            checkRejection(error, topic: topic, payload: payload, parsed: parsed)
            return
        }
        guard case .success(.object) = parsed else {
            violated("decoder accepted a \(topic.rawValue) payload the JSON parser does not read as an object")
        }
        checkRecord(record, topic: topic)
        let anonymized = FuzzFixture.anonymizer.anonymize(record)
        checkAnonymized(record, anonymized, parsed: parsed)
        // The pipeline's way: ids hashed from the payload's bytes while decoding, into the arrays
        // the previous inputs' rows handed back. Same verdict, same rows.
        do {
            var tape = JSONTape()
            let hashedWhileDecoding = try payload.withUnsafeBufferPointer { (bytes) throws(RecordRejection) in
                try decoder.decode(topic, bytes, tape: &tape, pseudonymizer: FuzzFixture.anonymizer.pseudonymizer, arrays: FuzzFixture.arrays)
            }
            let rows = FuzzFixture.anonymizer.anonymize(hashedWhileDecoding)
            if rows != anonymized { violated("ids hashed while decoding, into recycled arrays, give other rows") }
            if case .training(let row) = rows { FuzzFixture.arrays.recycle(metricSummaries: row.metrics, tagKeys: row.tagKeys) }
        } catch {
            violated("decoding with the pseudonymizer rejected what decoding without it accepted: \(error)")
        }
    }

    static func checkRejection(_ r: RecordRejection, topic: InputTopic, payload: [UInt8], parsed: Result<JSONValue, JSONParseError>) {
        // A reason never carries record data: the field, if any, is one of the topic's own fields.
        if let field = r.field, RecordDecoder.knownFields[topic]?.contains(field) != true {
            violated("rejection \(r.code.rawValue) names field \"\(field.prefix(80))\" that is not a \(topic.rawValue) field")
        }
        if payload.isEmpty {
            if r.code != .emptyPayload { violated("empty payload rejected as \(r.code.rawValue)") }
            return
        }
        switch parsed {
        case .failure(let e):
            let expected: Set<RecordRejection.Code> = switch e {
            case .invalidUTF8: [.invalidUTF8]
            case .malformed: [.malformedJSON, .invalidUTF8]
            case .tooDeep: [.nestingTooDeep]
            case .duplicateKey: [.duplicateField]
            case .numberOutOfRange: [.invalidNumber]
            }
            if !expected.contains(r.code) { violated("parser error \(e) but decoder rejection \(r.code.rawValue)") }
        case .success(let v):
            if case .object = v {
                if jsonLevelCodes.contains(r.code) || r.code == .notAnObject || r.code == .emptyPayload {
                    violated("JSON object parsed but decoder rejected it as \(r.code.rawValue)")
                }
            } else if r.code != .notAnObject {
                violated("non-object JSON (\(v.typeName)) rejected as \(r.code.rawValue), expected not_an_object")
            }
        }
    }

    /// Properties every accepted record has (SPEC §2 limits as enforced by RecordDecoder.Limits).
    static func checkRecord(_ record: InputRecord, topic: InputTopic) {
        let limits = FuzzFixture.decoder.limits
        let latest = FuzzFixture.now.micros + limits.maxFutureSkewSeconds * 1_000_000
        func time(_ t: Timestamp, _ name: String) {
            if t.civil.year < limits.earliestYear || t.micros > latest { violated("accepted \(name) \(t) outside [\(limits.earliestYear), now + skew]") }
        }
        func id(_ identifier: Identifier, _ name: String) {
            guard case .text(let s) = identifier else {
                violated("\(name) kept as a pseudonym by a decoder without one")
                return
            }
            if !s.unicodeScalars.contains(where: { !$0.properties.isWhitespace }) { violated("accepted blank \(name)") }
            if s.unicodeScalars.contains(where: { $0.value == 0 }) { violated("accepted NUL in \(name)") }
        }
        func money(_ d: Double, _ name: String) {
            if !d.isFinite || d < 0 || d > limits.maxMoney || (d == 0 && d.sign == .minus) { violated("accepted \(name) \(d)") }
        }
        switch (topic, record) {
        case (.scanResources, .scan(let r)):
            id(r.eventId, "event_id"); id(r.scanId, "scan_id"); id(r.userId, "user_id")
            id(r.cloudAccountId, "cloud_account_id"); id(r.resourceId, "resource_id")
            time(r.detectedAt, "detected_at"); r.resourceCreatedAt.map { time($0, "resource_created_at") }
            money(r.estimatedMonthlyCost, "estimated_monthly_cost")
            if r.tags.keys.count > limits.maxTags { violated("accepted \(r.tags.keys.count) tags") }
            for m in r.metrics where !m.avg.isFinite || !m.p95.isFinite { violated("accepted non-finite metric \(m.name)") }
        case (.userActions, .action(let r)):
            id(r.eventId, "event_id"); id(r.userId, "user_id"); id(r.cloudAccountId, "cloud_account_id"); id(r.resourceId, "resource_id")
            time(r.detectedAt, "detected_at"); time(r.actionAt, "action_at")
            if r.actionAt < r.detectedAt { violated("accepted action_at before detected_at") }
            r.costSavedMonthly.map { money($0, "cost_saved_monthly") }
        case (.resourceLifecycle, .lifecycle(let r)):
            id(r.eventId, "event_id"); id(r.cloudAccountId, "cloud_account_id"); id(r.resourceId, "resource_id")
            time(r.occurredAt, "occurred_at")
        case (.metricSamples, .metrics(let r)):
            id(r.cloudAccountId, "cloud_account_id"); id(r.resourceId, "resource_id")
            if r.points.isEmpty || r.points.count > limits.maxMetricPoints { violated("accepted \(r.points.count) points") }
            for p in r.points {
                time(p.ts, "points[].ts")
                if !p.value.isFinite || abs(p.value) > limits.maxMetricValue { violated("accepted point value \(p.value)") }
            }
        case (.privacyRequests, .privacy(let r)):
            id(r.eventId, "event_id"); id(r.userId, "user_id"); time(r.requestedAt, "requested_at")
        default:
            violated("\(topic.rawValue) payload decoded as a different record kind")
        }
    }

    // MARK: Anonymized rows

    static func checkHash(_ p: Pseudonym, _ name: String) {
        let h = p.hex
        let u = h.utf8
        guard Pseudonym(hex: h) == p else { violated("\(name) does not survive its hex round trip") }
        guard u.count == 64, u.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            violated("\(name) is not 64 lowercase hex characters: \"\(h.prefix(80))\"")
        }
    }

    /// A row field that carries a copy of a non-identifying input field (`source`), or none.
    struct Field {
        var name: String
        var value: String
        var source: String?

        init(name: String, value: String, source: String? = nil) {
            self.name = name
            self.value = value
            self.source = source
        }

        /// A pseudonym field, as its text (hex) is what is stored.
        init(name: String, value: Pseudonym) { self.init(name: name, value: value.hex) }
    }

    /// No row field may equal a raw identifier or tag value (nor its trimmed form), unless the field
    /// is a verbatim copy of its own non-identifying input field that happens to hold the same text
    /// (e.g. resource_type "vm" and resource_id "vm": a coincidence in the input, not a leak).
    static func checkNoRawValues(_ fields: [Field], secrets: [(name: String, value: String?)]) {
        var forbidden: [String: String] = [:]
        for (name, value) in secrets {
            guard let value, !value.isEmpty else { continue }
            forbidden[value] = name
            let trimmed = String(Pseudonymizer.trimWhitespace(value))
            if !trimmed.isEmpty { forbidden[trimmed] = name + " (trimmed)" }
        }
        for f in fields {
            guard let secret = forbidden[f.value] else { continue }
            if let source = f.source, source == f.value { continue }
            violated("row field \(f.name) equals the raw \(secret): \"\(f.value.prefix(80))\"")
        }
    }

    /// Every tag value of the record as sent (the decoder keeps only the environment tag's).
    static func tagValues(_ parsed: Result<JSONValue, JSONParseError>) -> [(key: String, name: String, value: String?)] {
        guard case .success(.object(let root)) = parsed, case .object(let tags)? = root["tags"] else { return [] }
        return tags.map { key, value in
            if case .string(let s) = value { (key, "value of tag \(key.prefix(40))", s) } else { (key, "value of tag \(key.prefix(40))", nil) }
        }
    }

    static func checkDomainSeparation(_ hashes: [(Pseudonymizer.Domain, Pseudonym)]) {
        for i in hashes.indices {
            for j in hashes.indices where j > i && hashes[i].0 != hashes[j].0 && hashes[i].1 == hashes[j].1 {
                violated("\(hashes[i].0) and \(hashes[j].0) pseudonyms are equal: domains are not separated")
            }
        }
    }

    static func checkAnonymized(_ record: InputRecord, _ anonymized: AnonymizedRecord, parsed: Result<JSONValue, JSONParseError>) {
        let p = FuzzFixture.anonymizer.pseudonymizer
        switch (record, anonymized) {
        case (.scan(let r), .training(let row)):
            for (name, h) in [("scan_hash", row.scanHash), ("resource_hash", row.resourceHash), ("account_hash", row.accountHash),
                              ("user_hash", row.userHash), ("event_hash", row.eventHash)] { checkHash(h, name) }
            row.parentHash.map { checkHash($0, "parent_hash") }
            checkDomainSeparation([(.scan, row.scanHash), (.resource, row.resourceHash), (.account, row.accountHash),
                                   (.user, row.userHash), (.event, row.eventHash)])
            if !FuzzFixture.buckets.contains(row.regionBucket) { violated("region bucket \"\(row.regionBucket.prefix(80))\" is not one of the nine") }
            if let env = row.envClass, !FuzzFixture.environmentClasses.contains(env) { violated("env class \"\(env.prefix(80))\"") }
            if let age = row.resourceAgeDays, age < 0 { violated("resource_age_days \(age) < 0") }
            if let h = row.createdHourUTC, !(0...23).contains(h) { violated("created_hour_utc \(h)") }
            if let d = row.createdDOW, !(1...7).contains(d) { violated("created_dow \(d)") }
            if (row.resourceAgeDays == nil) != (r.resourceCreatedAt == nil) { violated("resource_age_days present without resource_created_at or vice versa") }
            // The input's keys as the reference parser read them: the decoder normalizes them
            // itself (TagKeys), so this is the check of that rule too.
            let inputKeys = Set(tagValues(parsed).map { $0.key.lowercased() })
            let tagKeys = row.tagKeys.strings
            if tagKeys != Array(Set(tagKeys)).sorted() { violated("tag keys not sorted and unique") }
            if Set(tagKeys) != inputKeys { violated("tag keys are not the input's keys, lower-cased") }
            checkMetricsJSON(row.metricsJSON, r.metrics)
            if row.detectedAt != r.detectedAt || row.provider != r.provider { violated("detected_at/provider changed") }
            if row.userHash != p.pseudonym(.user, " \t" + r.userId.description + "\u{3000}") { violated("user pseudonym depends on surrounding white space") }
            var fields = [
                Field(name: "scan_hash", value: row.scanHash), Field(name: "resource_hash", value: row.resourceHash),
                Field(name: "account_hash", value: row.accountHash), Field(name: "user_hash", value: row.userHash),
                Field(name: "event_hash", value: row.eventHash),
                Field(name: "resource_type", value: row.resourceType, source: r.resourceType),
                Field(name: "scenario", value: row.scenario, source: r.scenario),
                Field(name: "confidence", value: row.confidence.rawValue, source: r.confidence.rawValue),
                Field(name: "currency", value: row.currency.description, source: r.currency.description),
            ]
            // metrics_json is not compared whole ("{}" may equal an id): checkMetricsJSON proved it
            // holds only the record's metric names, numbers and trends.
            row.parentHash.map { fields.append(Field(name: "parent_hash", value: $0)) }
            // Closed vocabularies (bucket, env class) are checked above; tag keys are data by design
            // (SPEC §3 keeps them), but each must be an input key, never an id or a tag value.
            for k in tagKeys { fields.append(Field(name: "tag_keys[]", value: k, source: inputKeys.contains(k) ? k : nil)) }
            checkNoRawValues(fields, secrets: [
                ("resource_id", r.resourceId.description), ("cloud_account_id", r.cloudAccountId.description), ("user_id", r.userId.description),
                ("event_id", r.eventId.description), ("scan_id", r.scanId.description), ("parent_resource_id", r.parentResourceId?.description),
            ] + tagValues(parsed).map { ($0.name, $0.value) })
        case (.action(let r), .action(let row)):
            for (name, h) in [("event_hash", row.eventHash), ("user_hash", row.userHash), ("account_hash", row.accountHash),
                              ("resource_hash", row.resourceHash)] { checkHash(h, name) }
            checkDomainSeparation([(.event, row.eventHash), (.user, row.userHash), (.account, row.accountHash), (.resource, row.resourceHash)])
            if !row.timeToActionHours.isFinite || row.timeToActionHours < 0 { violated("time_to_action_hours \(row.timeToActionHours)") }
            checkNoRawValues([
                Field(name: "event_hash", value: row.eventHash), Field(name: "user_hash", value: row.userHash),
                Field(name: "account_hash", value: row.accountHash), Field(name: "resource_hash", value: row.resourceHash),
                Field(name: "resource_type", value: row.resourceType, source: r.resourceType),
            ], secrets: [("resource_id", r.resourceId.description), ("cloud_account_id", r.cloudAccountId.description), ("user_id", r.userId.description), ("event_id", r.eventId.description)])
        case (.lifecycle(let r), .lifecycle(let row)):
            for (name, h) in [("event_hash", row.eventHash), ("account_hash", row.accountHash), ("resource_hash", row.resourceHash)] { checkHash(h, name) }
            checkDomainSeparation([(.event, row.eventHash), (.account, row.accountHash), (.resource, row.resourceHash)])
            var fields = [
                Field(name: "event_hash", value: row.eventHash), Field(name: "account_hash", value: row.accountHash),
                Field(name: "resource_hash", value: row.resourceHash),
                Field(name: "resource_type", value: row.resourceType, source: r.resourceType),
                Field(name: "to_state", value: row.toState, source: r.toState),
            ]
            row.fromState.map { fields.append(Field(name: "from_state", value: $0, source: r.fromState)) }
            checkNoRawValues(fields, secrets: [("resource_id", r.resourceId.description), ("cloud_account_id", r.cloudAccountId.description), ("event_id", r.eventId.description)])
        case (.metrics(let r), .metricPoints(let rows)):
            if rows.count != r.points.count { violated("\(r.points.count) points became \(rows.count) rows") }
            for (row, point) in zip(rows, r.points) {
                checkHash(row.resourceHash, "resource_hash"); checkHash(row.accountHash, "account_hash")
                checkDomainSeparation([(.account, row.accountHash), (.resource, row.resourceHash)])
                if row.ts != point.ts || row.value != point.value { violated("metric point changed") }
                var fields = [
                    Field(name: "resource_hash", value: row.resourceHash), Field(name: "account_hash", value: row.accountHash),
                    Field(name: "metric", value: row.metric, source: r.metric),
                ]
                row.unit.map { fields.append(Field(name: "unit", value: $0, source: r.unit)) }
                checkNoRawValues(fields, secrets: [("resource_id", r.resourceId.description), ("cloud_account_id", r.cloudAccountId.description)])
            }
        case (.privacy(let r), .privacy(let row)):
            checkHash(row.eventHash, "event_hash"); checkHash(row.userHash, "user_hash")
            checkDomainSeparation([(.event, row.eventHash), (.user, row.userHash)])
            checkNoRawValues([Field(name: "event_hash", value: row.eventHash), Field(name: "user_hash", value: row.userHash)],
                             secrets: [("user_id", r.userId.description), ("event_id", r.eventId.description)])
        default:
            violated("anonymizer returned a different row kind for \(record)")
        }
    }

    /// metrics_json is strict JSON (our own parser reads it), keyed by exactly the record's metric
    /// names, each holding only avg, p95 and trend with the record's values.
    static func checkMetricsJSON(_ text: String, _ metrics: [MetricSummary]) {
        guard case .object(let o)? = try? JSONParser().parse(Array(text.utf8)) else {
            violated("metrics_json is not a JSON object: \(text.prefix(200))")
        }
        if Set(o.keys) != Set(metrics.map(\.name)) || o.count != metrics.count { violated("metrics_json keys differ from the metric names") }
        for m in metrics {
            guard case .object(let s)? = o[m.name], Set(s.keys) == ["avg", "p95", "trend"],
                  case .number(let avg)? = s["avg"], case .number(let p95)? = s["p95"] else {
                violated("metrics_json entry for \(m.name) is malformed: \(text.prefix(200))")
            }
            if avg != m.avg || p95 != m.p95 { violated("metrics_json changed \(m.name) avg/p95 (\(m.avg), \(m.p95)) to (\(avg), \(p95))") }
            switch (s["trend"], m.trend) {
            case (.null?, nil): break
            case (.string(let t)?, let expected?) where t == expected.rawValue: break
            default: violated("metrics_json trend of \(m.name) differs")
            }
        }
    }

    // MARK: JSON helpers

    static func depth(of v: JSONValue) -> Int {
        switch v {
        case .array(let a): 1 + (a.map(depth(of:)).max() ?? 0)
        case .object(let o): 1 + (o.values.map(depth(of:)).max() ?? 0)
        default: 0
        }
    }

    static func forEachString(in v: JSONValue, _ body: (String) -> Void) {
        switch v {
        case .string(let s): body(s)
        case .array(let a): for e in a { forEachString(in: e, body) }
        case .object(let o): for (k, e) in o { body(k); forEachString(in: e, body) }
        default: break
        }
    }

    static func serialize(_ v: JSONValue, into out: inout [UInt8]) {
        switch v {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let d): out += Array("\(d)".utf8)  // shortest round-trip form, e.g. 1e-05, -0.0
        case .string(let s): serializeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, e) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                serialize(e, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, (k, e)) in o.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                serializeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                serialize(e, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Escapes with every form the parser must read: short escapes, \u00XX and, for scalars above
    /// the BMP, UTF-16 surrogate pairs (every other such scalar stays raw UTF-8).
    static func serializeString(_ s: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        func u16(_ v: UInt32) {
            out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), hex[Int(v >> 12 & 0xF)], hex[Int(v >> 8 & 0xF)], hex[Int(v >> 4 & 0xF)], hex[Int(v & 0xF)]]
        }
        out.append(UInt8(ascii: "\""))
        var toggle = false
        for scalar in s.unicodeScalars {
            switch scalar.value {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0x2F: out += toggle ? [0x5C, 0x2F] : [0x2F]; toggle.toggle()
            case 0..<0x20: u16(scalar.value)
            case 0x10000...:
                toggle.toggle()
                if toggle {
                    let v = scalar.value - 0x10000
                    u16(0xD800 + (v >> 10)); u16(0xDC00 + (v & 0x3FF))
                } else {
                    out += Array(String(scalar).utf8)
                }
            default: out += Array(String(scalar).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
