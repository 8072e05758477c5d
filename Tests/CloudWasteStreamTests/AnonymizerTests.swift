import Foundation
import Testing
@testable import CloudWasteStream
import CloudWasteDevTools

/// SPEC §3 applied to decoded records: pseudonyms, region buckets, tag keys, env class, derived
/// features, and no raw value left in any row.
@Suite struct AnonymizerTests {
    static let now = Timestamp.parseRFC3339("2026-11-29T00:00:00Z")!
    static let keyBytes = (0..<32).map { UInt8($0) }
    static let regionsPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/regions.json").path

    // Independent HMAC-SHA256 vectors (Python hmac) under the key 0…31.
    static let userHash = "957bca9367fba7a3e229e8850180592878b895b21cece435353c07ce1b1f02ce"      // user-1@example.com
    static let accountHash = "9464de54d755ee452dc916857f997bf5f111c242eb9341d18cd7009f328d4625"   // 123456789012
    static let resourceHash = "e97c72551044fe099663e1e4c9fd0f787aa14b5067687e7d24c32512f0dd3749"  // arn:…volume/vol-0abc
    static let scanHash = "3ad85676006659f1d6e71ebb148adc4be5072cf7803757e650aa7aa25ff6ce9b"      // scan-1
    static let eventHash = "4078190d756d16e90f59b068b0347caea2cbb2ee0daf5189bed0dd86c948f45e"     // evt-1

    static let accountId = "123456789012"
    static let resourceId = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc"
    static let parentId = "arn:aws:ec2:us-east-1:123456789012:instance/i-0fedcba9876543210"
    static let email = "user-1@example.com"
    static let resourceName = "legacy-build-cache-7781"
    static let tagValues = ["Production", "team-zeta-secret", "owner.person@example.org", "cc-4410-secret"]

    static let scanJSON = """
        {
          "event_id": "evt-1",
          "scan_id": "scan-1",
          "detected_at": "2026-03-14T06:12:44Z",
          "user_id": "user-1@example.com",
          "cloud_account_id": "123456789012",
          "provider": "aws",
          "region": "eu-west-3",
          "resource_type": "ebs_volume",
          "resource_id": "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc",
          "scenario": "unattached",
          "confidence": "critical",
          "estimated_monthly_cost": 40.96,
          "resource_name": "legacy-build-cache-7781",
          "resource_created_at": "2025-08-02T14:03:11+02:00",
          "currency": "USD",
          "metrics": {"VolumeWriteOps": {"avg": 0.2, "p95": 1.0, "trend": "down"}, "VolumeReadOps": {"avg": 0, "p95": 0, "trend": "flat"}, "BurstBalance": {"avg": 99.5, "p95": 100}},
          "tags": {"Environment": "Production", "Team": "team-zeta-secret", "team": "team-zeta-secret", "Owner": "owner.person@example.org", "CostCenter": "cc-4410-secret", "Empty": null},
          "parent_resource_id": "arn:aws:ec2:us-east-1:123456789012:instance/i-0fedcba9876543210",
          "scanner_host": "scanner-7.internal.example.net"
        }
        """

    static func decoder() -> RecordDecoder { RecordDecoder(now: { now }) }

    static func anonymizer() throws -> Anonymizer {
        Anonymizer(key: try HMACKey(bytes: keyBytes), regions: try RegionTable.load(path: regionsPath))
    }

    static func decode(_ topic: InputTopic, _ json: String) throws -> InputRecord {
        try decoder().decode(topic, Array(json.utf8))
    }

    static func trainingRow(_ json: String = scanJSON) throws -> TrainingRow {
        let record = try decode(.scanResources, json)
        guard case .training(let row) = try anonymizer().anonymize(record) else {
            throw TestFailure("not a training row")
        }
        return row
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// The scan record with some fields replaced (values are JSON literals; nil removes the field).
    static func scan(_ changes: [String: String?]) -> String {
        var lines = scanJSON.split(separator: "\n").map(String.init)
        for (field, value) in changes {
            guard let i = lines.firstIndex(where: { $0.hasPrefix("  \"\(field)\":") }) else {
                preconditionFailure("no field \(field)")
            }
            if let value {
                lines[i] = "  \"\(field)\": \(value),"
            } else {
                lines[i] = ""
            }
        }
        return lines.joined(separator: "\n")
    }

    // MARK: - Scan records

    @Test func scanRecordPseudonymsMatchIndependentVectors() throws {
        let row = try Self.trainingRow()
        #expect(row.userHash.hex == Self.userHash)
        #expect(row.accountHash.hex == Self.accountHash)
        #expect(row.resourceHash.hex == Self.resourceHash)
        #expect(row.scanHash.hex == Self.scanHash)
        #expect(row.eventHash.hex == Self.eventHash)
        #expect(try Self.anonymizer().keyId == "630dcd29")
    }

    @Test func scanRecordKeptFields() throws {
        let row = try Self.trainingRow()
        #expect(row.provider == .aws)
        #expect(row.regionBucket == "eu-*")
        #expect(row.resourceType == "ebs_volume")
        #expect(row.scenario == "unattached")
        #expect(row.confidence == .critical)
        #expect(row.estimatedMonthlyCost == 40.96)
        #expect(row.currency == "USD")
        #expect(row.detectedAt == Timestamp.parseRFC3339("2026-03-14T06:12:44Z"))
    }

    @Test func tagKeysAreSortedLowercasedAndDeduplicated() throws {
        let row = try Self.trainingRow()
        #expect(row.tagKeys == ["costcenter", "empty", "environment", "owner", "team"])
        #expect(TagKeys(normalizing: ["B", "a", "b", "A", "c"]).strings == ["a", "b", "c"])
        #expect(TagKeys(normalizing: []).strings == [])
    }

    @Test func noTagsGiveEmptyKeysAndNoEnvironment() throws {
        let row = try Self.trainingRow(Self.scan(["tags": "{}"]))
        #expect(row.tagKeys == [])
        #expect(row.envClass == nil)
        let absent = try Self.trainingRow(Self.scan(["tags": nil]))
        #expect(absent.tagKeys == [])
        #expect(absent.envClass == nil)
    }

    @Test func environmentClassFromRecords() throws {
        #expect(try Self.trainingRow().envClass == "prod")
        #expect(try Self.trainingRow(Self.scan(["tags": #"{"stage": "UAT", "team": "x"}"#])).envClass == "staging")
        #expect(try Self.trainingRow(Self.scan(["tags": #"{"env": "sandbox"}"#])).envClass == "other")
        #expect(try Self.trainingRow(Self.scan(["tags": #"{"team": "prod"}"#])).envClass == nil)
        #expect(try Self.trainingRow(Self.scan(["tags": #"{"ENV": " Dev "}"#])).envClass == "dev")
        #expect(try Self.trainingRow(Self.scan(["tags": #"{"environment": null}"#])).envClass == "other")
    }

    @Test(arguments: [
        ("Environment", "Production", "prod"), ("env", "prd", "prod"), ("env", "LIVE", "prod"),
        ("stage", "UAT", "staging"), ("Stage", "pre-prod", "staging"), ("env", "stg", "staging"),
        ("env", "development", "dev"), ("environment", "DEV", "dev"),
        ("env", "qa", "test"), ("ENVIRONMENT", "Testing", "test"),
        ("env", "sandbox", "other"), ("env", "", "other"), ("stage", "production-eu", "other"),
        ("env", "staging", "staging"), ("env", "Stage", "staging"), ("env", "preprod", "staging"),
        ("env", "dev", "dev"), ("env", "develop", "dev"), ("env", "test", "test"), ("env", "prod", "prod"),
        ("env", "prod-1", "other"), ("env", "pro", "other"), ("env", "tests", "other"),
    ])
    func environmentValues(_ key: String, _ value: String, _ expected: String) {
        #expect(Anonymizer.environmentClass(ScanTags([(key, value)])) == expected)
        // Other tags around it do not matter.
        #expect(Anonymizer.environmentClass(ScanTags([("owner", "prod"), (key, value), ("zz", "dev")])) == expected)
    }

    @Test func environmentClassWithoutAnAllowListedKeyIsNil() {
        #expect(Anonymizer.environmentClass(ScanTags([])) == nil)
        #expect(Anonymizer.environmentClass(ScanTags([("team", "prod"), ("environment_name", "prod"), ("tier", "dev")])) == nil)
        #expect(Anonymizer.environmentClass(ScanTags([("env", nil)])) == "other")
    }

    /// The key match folds ASCII letters only, on the key's bytes: same-length keys that differ in
    /// one byte, or in a character that is not a letter, are not environment keys.
    @Test func environmentKeysMatchInAnyASCIICaseOnly() {
        for key in ["env", "ENV", "eNv", "stage", "STAGE", "Stage", "environment", "ENVIRONMENT", "EnViRoNmEnT", "environmenT"] {
            #expect(ScanTags.namesEnvironment(key), "\(key)")
        }
        for key in ["", "en", "enw", "env ", " env", "en-", "stagE1", "stagf", "environmenu", "environment_", "Env\u{0}",
                    "e\u{301}nv", "énv", "ΕNV", "enV\u{7F}", "ENV\u{80}",
                    // the right length in bytes, a different byte anywhere
                    "xnv", "ev\u{0}", "\u{0}nv", "Xtage", "stag\u{7F}", "st ge", "Xnvironment", "envirOnmenX", "environ-ent",
                    "e\u{301}", "é\u{0}\u{0}\u{0}"] {
            #expect(!ScanTags.namesEnvironment(key), "\(key.debugDescription)")
        }
        // The bytes just outside A–Z (`@`, `[`) and their lower-case neighbours (`` ` ``, `{`) are not folded.
        for key in ["@nv", "[nv", "`nv", "{nv", "sta@e"] { #expect(!ScanTags.namesEnvironment(key), "\(key)") }
    }

    @Test func environmentClassIsDeterministicWithSeveralKeys() {
        let a = Anonymizer.environmentClass(ScanTags([("stage", "dev"), ("env", "prod")]))
        let b = Anonymizer.environmentClass(ScanTags([("env", "prod"), ("stage", "dev")]))
        #expect(a == b)
    }

    @Test func resourceAgeAndCreationFeatures() throws {
        let row = try Self.trainingRow()
        // 2026-03-14T06:12:44Z − 2025-08-02T12:03:11Z = 223 days 18:09:33.
        #expect(row.resourceAgeDays == 223)
        #expect(row.createdHourUTC == 12)  // 14:03 at +02:00
        #expect(row.createdDOW == 6)       // Saturday
    }

    @Test func creationFeaturesUseUTC() throws {
        // Sunday 01:30 at +03:00 is Saturday 22:30 UTC.
        let row = try Self.trainingRow(Self.scan(["resource_created_at": #""2025-08-03T01:30:00+03:00""#]))
        #expect(row.createdHourUTC == 22)
        #expect(row.createdDOW == 6)
    }

    @Test func resourceAgeIsFlooredAndNeverNegative() throws {
        let almostOneDay = try Self.trainingRow(Self.scan(["resource_created_at": #""2026-03-13T06:12:45Z""#]))
        #expect(almostOneDay.resourceAgeDays == 0)
        let oneDay = try Self.trainingRow(Self.scan(["resource_created_at": #""2026-03-13T06:12:44Z""#]))
        #expect(oneDay.resourceAgeDays == 1)
        let same = try Self.trainingRow(Self.scan(["resource_created_at": #""2026-03-14T06:12:44Z""#]))
        #expect(same.resourceAgeDays == 0)
        // Created after it was detected (clock skew): 0, not negative.
        let later = try Self.trainingRow(Self.scan(["resource_created_at": #""2026-03-20T00:00:00Z""#]))
        #expect(later.resourceAgeDays == 0)
        #expect(later.createdHourUTC == 0)
        #expect(later.createdDOW == 5)  // Friday
        let muchLater = try Self.trainingRow(Self.scan(["resource_created_at": #""2026-06-01T00:00:00Z""#]))
        #expect(muchLater.resourceAgeDays == 0)
    }

    @Test func resourceAgeFloorCountsFractionalSeconds() throws {
        // 23:59:59.5 elapsed is not yet a day.
        let json = Self.scan([
            "detected_at": #""2026-03-14T00:00:00Z""#,
            "resource_created_at": #""2026-03-13T00:00:00.5Z""#,
        ])
        let row = try Self.trainingRow(json)
        #expect(row.resourceAgeDays == 0)
    }

    @Test func unknownCreationTimeGivesNulls() throws {
        let row = try Self.trainingRow(Self.scan(["resource_created_at": "null"]))
        #expect(row.resourceAgeDays == nil)
        #expect(row.createdHourUTC == nil)
        #expect(row.createdDOW == nil)
    }

    @Test func parentHashIsTheResourcePseudonymOfTheParent() throws {
        let row = try Self.trainingRow()
        let p = Pseudonymizer(key: try HMACKey(bytes: Self.keyBytes))
        #expect(row.parentHash == p.pseudonym(.resource, Self.parentId, provider: .aws))
        #expect(row.parentHash != row.resourceHash)
        #expect(try Self.trainingRow(Self.scan(["parent_resource_id": "null"])).parentHash == nil)
        // A snapshot's parent hash joins with the volume's own resource hash.
        let child = try Self.trainingRow(Self.scan(["parent_resource_id": "\"\(Self.resourceId)\""]))
        #expect(child.parentHash?.hex == Self.resourceHash)
    }

    @Test func azureIdsAreCaseInsensitiveInRows() throws {
        let json = Self.scan([
            "provider": #""azure""#,
            "region": #""westeurope""#,
            "cloud_account_id": #""0F8FAD5B-D9CB-469F-A165-70867728950E""#,
            "resource_id": #""/subscriptions/0F8FAD5B-D9CB-469F-A165-70867728950E/resourceGroups/RG-Prod/providers/Microsoft.Compute/disks/Disk-1""#,
            "parent_resource_id": #""/SUBSCRIPTIONS/0f8fad5b-d9cb-469f-a165-70867728950e/RESOURCEGROUPS/rg-prod/providers/microsoft.compute/disks/disk-1""#,
        ])
        let row = try Self.trainingRow(json)
        #expect(row.accountHash.hex == "cf7bea18aa051d78818baf9a18dbd7b17f26d235075f28d02c0eefffd96d9fcf")
        #expect(row.resourceHash.hex == "f1a402489665f9011ee6d0f124b37096d50c39c8ae35a181516afe9cf8094a0f")
        #expect(row.parentHash == row.resourceHash)
        #expect(row.regionBucket == "eu-*")
    }

    @Test func metricsJSONHasFixedKeysInNameOrder() throws {
        let row = try Self.trainingRow()
        #expect(row.metricsJSON == #"{"BurstBalance":{"avg":99.5,"p95":100,"trend":null},"VolumeReadOps":{"avg":0,"p95":0,"trend":"flat"},"VolumeWriteOps":{"avg":0.2,"p95":1,"trend":"down"}}"#)
        // It is valid JSON.
        let parsed = try JSONParser().parse(Array(row.metricsJSON.utf8))
        guard case .object(let o) = parsed else { Issue.record("not an object"); return }
        #expect(o["VolumeWriteOps"] == .object(["avg": .number(0.2), "p95": .number(1), "trend": .string("down")]))
        #expect(try Self.trainingRow(Self.scan(["metrics": "{}"])).metricsJSON == "{}")
        #expect(try Self.trainingRow(Self.scan(["metrics": nil])).metricsJSON == "{}")
    }

    @Test func metricsJSONNumbers() throws {
        let json = Self.metricsJSON([
            MetricSummary(name: "a", avg: -2.5, p95: 1e15, trend: .up),
            MetricSummary(name: "b", avg: 1e-7, p95: -0.0, trend: nil),
        ])
        let parsed = try JSONParser().parse(Array(json.utf8))
        #expect(parsed == .object([
            "a": .object(["avg": .number(-2.5), "p95": .number(1e15), "trend": .string("up")]),
            "b": .object(["avg": .number(1e-7), "p95": .number(0), "trend": .null]),
        ]))
    }

    static func metricsJSON(_ m: [MetricSummary]) -> String { Anonymizer.metricsJSON(m) }

    @Test func unknownRegionGoesToOtherAndIsReported() throws {
        let anonymizer = try Self.anonymizer()
        let seen = Box()
        anonymizer.onUnknownRegion = { seen.providers.append($0) }
        let record = try Self.decode(.scanResources, Self.scan(["region": #""mars-north-1""#]))
        guard case .training(let row) = anonymizer.anonymize(record) else { Issue.record("not training"); return }
        #expect(row.regionBucket == "other")
        #expect(seen.providers == [.aws])
        _ = anonymizer.anonymize(try Self.decode(.scanResources, Self.scanJSON))
        #expect(seen.providers == [.aws])  // a known region is not reported
    }

    final class Box: @unchecked Sendable { var providers: [Provider] = [] }

    // MARK: - Other topics

    static let actionJSON = """
        {"event_id": "evt-1", "user_id": "user-1@example.com", "cloud_account_id": "123456789012", "provider": "aws",
         "resource_id": "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", "resource_type": "ebs_volume",
         "action": "deleted", "detected_at": "2026-03-14T06:00:00Z", "action_at": "2026-03-15T09:30:00+02:00",
         "cost_saved_monthly": 40.96, "comment": "deleted by user-1@example.com"}
        """

    @Test func userActionTimeToActionHours() throws {
        let record = try Self.decode(.userActions, Self.actionJSON)
        guard case .action(let row) = try Self.anonymizer().anonymize(record) else { Issue.record("not an action"); return }
        // 2026-03-14T06:00Z → 2026-03-15T07:30Z = 25.5 h.
        #expect(row.timeToActionHours == 25.5)
        #expect(row.eventHash.hex == Self.eventHash)
        #expect(row.userHash.hex == Self.userHash)
        #expect(row.accountHash.hex == Self.accountHash)
        #expect(row.resourceHash.hex == Self.resourceHash)
        #expect(row.action == .deleted)
        #expect(row.costSavedMonthly == 40.96)
        #expect(row.actionAt == Timestamp.parseRFC3339("2026-03-15T07:30:00Z"))
    }

    @Test func userActionAtTheSameInstantIsZeroHours() throws {
        let json = Self.actionJSON.replacingOccurrences(of: "2026-03-15T09:30:00+02:00", with: "2026-03-14T08:00:00+02:00")
        let record = try Self.decode(.userActions, json)
        guard case .action(let row) = try Self.anonymizer().anonymize(record) else { Issue.record("not an action"); return }
        #expect(row.timeToActionHours == 0)
    }

    static let billedJSON = """
        {"event_id": "evt-1", "cloud_account_id": "123456789012", "provider": "aws",
         "resource_id": "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", "usage_date": "2026-03-14",
         "amount": 1.3152, "currency": "USD", "cost_type": "amortized", "source": "cur"}
        """

    static let lifecycleJSON = """
        {"event_id": "evt-1", "cloud_account_id": "123456789012", "provider": "aws",
         "resource_id": "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", "resource_type": "ebs_volume",
         "from_state": "in-use", "to_state": "available", "occurred_at": "2026-03-14T06:00:00Z"}
        """

    static let metricsSampleJSON = """
        {"cloud_account_id": "123456789012", "provider": "aws",
         "resource_id": "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", "metric": "VolumeReadOps",
         "points": [{"ts": "2026-03-14T06:00:00Z", "value": 1.5}, {"ts": "2026-03-14T06:05:00Z", "value": 0}], "unit": "Count"}
        """

    static let privacyJSON = """
        {"event_id": "evt-1", "user_id": "user-1@example.com", "request": "erase", "requested_at": "2026-03-14T06:00:00Z"}
        """

    @Test func lifecycleMetricsAndPrivacyRows() throws {
        let a = try Self.anonymizer()
        guard case .lifecycle(let l) = a.anonymize(try Self.decode(.resourceLifecycle, Self.lifecycleJSON)) else {
            Issue.record("not lifecycle"); return
        }
        #expect(l.eventHash.hex == Self.eventHash && l.accountHash.hex == Self.accountHash && l.resourceHash.hex == Self.resourceHash)
        #expect(l.fromState == "in-use" && l.toState == "available")

        guard case .metricPoints(let points) = a.anonymize(try Self.decode(.metricSamples, Self.metricsSampleJSON)) else {
            Issue.record("not metric points"); return
        }
        #expect(points.count == 2)
        #expect(points.allSatisfy { $0.resourceHash.hex == Self.resourceHash && $0.accountHash.hex == Self.accountHash })
        #expect(points.map(\.value) == [1.5, 0])
        #expect(points.allSatisfy { $0.metric == "VolumeReadOps" && $0.unit == "Count" })

        guard case .privacy(let p) = a.anonymize(try Self.decode(.privacyRequests, Self.privacyJSON)) else {
            Issue.record("not privacy"); return
        }
        #expect(p.userHash.hex == Self.userHash && p.eventHash.hex == Self.eventHash && p.request == .erase)

        guard case .billed(let b) = a.anonymize(try Self.decode(.billedCosts, Self.billedJSON)) else {
            Issue.record("not billed"); return
        }
        #expect(b.eventHash.hex == Self.eventHash && b.accountHash.hex == Self.accountHash && b.resourceHash.hex == Self.resourceHash)
        #expect(b.usageDate.dayKey == "2026-03-14" && b.amount == 1.3152 && b.currency == "USD")
        #expect(b.costType == .amortized && b.source == "cur")
    }

    // MARK: - Leak check

    @Test func noRawValueLeaksIntoAnyRow() throws {
        let a = try Self.anonymizer()
        let inputs: [(InputTopic, String)] = [
            (.scanResources, Self.scanJSON),
            (.userActions, Self.actionJSON),
            (.resourceLifecycle, Self.lifecycleJSON),
            (.metricSamples, Self.metricsSampleJSON),
            (.privacyRequests, Self.privacyJSON),
            (.billedCosts, Self.billedJSON),
        ]
        let secrets = [
            Self.accountId, Self.resourceId, "vol-0abc", Self.parentId, "i-0fedcba9876543210", Self.email, "example.com",
            Self.resourceName, "evt-1", "scan-1", "scanner-7", "arn:",
        ] + Self.tagValues
        for (topic, json) in inputs {
            let row = a.anonymize(try Self.decode(topic, json))
            let text = String(describing: row) + String(reflecting: row) + "\(row)"
            for secret in secrets {
                #expect(!text.contains(secret), "\(topic): row contains \(secret)")
            }
        }
    }

    @Test func leakCheckForAzureRecord() throws {
        let a = try Self.anonymizer()
        let raw = try String(contentsOfFile: URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("topics/scan-resources/examples/valid/02-azure-unattached-managed-disk.json").path,
            encoding: .utf8)
        let row = a.anonymize(try Self.decode(.scanResources, raw))
        let text = String(describing: row)
        for secret in ["3f2c9a7e", "3F2C9A7E", "RG-Prod-Data", "sqlvm01", "Production", "cc-4410", "équipe-données",
                       "7c2d9e41", "a9d8c7b6", "5e8d2b1a", "/subscriptions"] {
            #expect(!text.contains(secret), "row contains \(secret)")
        }
        guard case .training(let t) = row else { Issue.record("not training"); return }
        #expect(t.tagKeys == ["cost-center", "environment", "owner", "propriétaire"])
        #expect(t.envClass == "prod")
        #expect(t.currency == "EUR")
        #expect(t.createdHourUTC == 8)
    }
}

/// The pipeline's decoder keeps ids as pseudonyms hashed from the message's bytes; a decoder
/// without a key keeps their text for the anonymizer to hash. Both must give the same rows, for
/// every topic and for the ids whose normalization matters (white space, GUID case, Azure, escapes).
@Suite struct IdentifiersHashedWhileDecodingTests {
    static func rows(_ topic: InputTopic, _ bytes: [UInt8], pseudonymizeWhileDecoding: Bool) throws -> AnonymizedRecord {
        let anonymizer = try AnonymizerTests.anonymizer()
        let record = try AnonymizerTests.decoder().decode(topic, bytes, pseudonymizer: pseudonymizeWhileDecoding ? anonymizer.pseudonymizer : nil)
        if pseudonymizeWhileDecoding, case .scan(let scan) = record {
            // Nothing of the raw ids is kept.
            for id in [scan.eventId, scan.scanId, scan.userId, scan.cloudAccountId, scan.resourceId] {
                guard case .pseudonym = id else { throw AnonymizerTests.TestFailure("an id kept as text: \(id)") }
            }
        }
        return anonymizer.anonymize(record)
    }

    static func expectSameRows(_ topic: InputTopic, _ json: String) throws {
        let bytes = Array(json.utf8)
        let expected = try rows(topic, bytes, pseudonymizeWhileDecoding: false)
        #expect(try rows(topic, bytes, pseudonymizeWhileDecoding: true) == expected, "\(json)")
    }

    @Test(arguments: [
        #""evt-1""#, #"" evt-1 ""#, #""\u00a0evt-1\t""#, #""\u0065vt-1""#, #""évt-1""#,
        #""1B4E28BA-2FA1-11D2-883F-0016D3CCA427""#, #""x-1B4E28BA-2FA1-11D2-883F-0016D3CCA427-y""#,
    ])
    func scanIdsOfEveryShape(_ id: String) throws {
        for provider in Provider.allCases {
            try Self.expectSameRows(.scanResources, AnonymizerTests.scan([
                "event_id": id, "scan_id": id, "user_id": id, "cloud_account_id": id, "resource_id": id,
                "parent_resource_id": id, "provider": "\"\(provider.rawValue)\"",
            ]))
        }
    }

    /// The preparer's way: a scan's arrays are refilled from the last scan's, handed back once
    /// its row is made. Rows equal to decoding into fresh arrays, record after record.
    @Test func recycledArraysGiveTheSameRows() throws {
        let messages = TrafficGenerator(seed: 11, badRecordShare: 0.02).messages(count: 3_000)
        let anonymizer = try AnonymizerTests.anonymizer()
        let decoder = AnonymizerTests.decoder()
        let arrays = RecycledArrays()
        var tape = JSONTape()
        var recycled = 0
        var rejected = 0
        for m in messages {
            // Same rows, or the same rejection, whichever arrays the record was decoded into.
            let expected = Result { () throws(RecordRejection) in
                anonymizer.anonymize(try decoder.decode(m.topic, m.value, pseudonymizer: anonymizer.pseudonymizer))
            }
            let actual = Result { () throws(RecordRejection) in
                try m.value.withUnsafeBufferPointer { (bytes) throws(RecordRejection) in
                    anonymizer.anonymize(try decoder.decode(m.topic, bytes, tape: &tape, pseudonymizer: anonymizer.pseudonymizer, arrays: arrays))
                }
            }
            #expect(actual == expected)
            if case .failure = actual { rejected += 1 }
            if case .success(.training(let row)) = actual {
                arrays.recycle(metricSummaries: row.metrics, tagKeys: row.tagKeys)
                recycled += 1
            }
        }
        #expect(recycled > 1_000)
        #expect(rejected > 10)
    }

    @Test func generatedTrafficOfEveryTopic() throws {
        let messages = TrafficGenerator(seed: 7, badRecordShare: 0).messages(count: 3_000)
        #expect(Set(messages.map(\.topic)).count >= 5)
        for m in messages {
            let expected = try? Self.rows(m.topic, m.value, pseudonymizeWhileDecoding: false)
            let actual = try? Self.rows(m.topic, m.value, pseudonymizeWhileDecoding: true)
            #expect(actual == expected)
        }
    }
}
