import CloudWasteDevTools
import CloudWasteKafka
import CloudWastePostgres
@testable import CloudWasteStream
import Foundation
import Testing
import TestSupport

/// SPEC §6: monthly event-time windows, compared with an independent brute-force computation.
@Suite(.serialized) struct WindowTests {
    struct Scan { var account: String; var resource: String; var type: String; var cost: Double; var currency: String; var at: Timestamp; var provider: Provider }
    struct Delete { var account: String; var resource: String; var saved: Double; var currency: String; var at: Timestamp; var provider: Provider }
    /// A billed day; `units` is the amount in ten-thousandths, so the expected sums are exact.
    struct Billed { var account: String; var resource: String; var day: Timestamp; var units: Int; var currency: String; var costType: String }

    static func scanJSON(_ s: Scan, event: String) -> [UInt8] {
        Array("{\"event_id\":\"\(event)\",\"scan_id\":\"scan-\(event)\",\"detected_at\":\"\(s.at)\",\"user_id\":\"user-\(s.account)\",\"cloud_account_id\":\"\(s.account)\",\"provider\":\"\(s.provider.rawValue)\",\"region\":\"us-east-1\",\"resource_type\":\"\(s.type)\",\"resource_id\":\"\(s.resource)\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":\(s.cost),\"currency\":\"\(s.currency)\"}".utf8)
    }

    static func deleteJSON(_ d: Delete, event: String) -> [UInt8] {
        let detected = Timestamp(micros: d.at.micros - 3_600_000_000)
        // USD actions leave the currency out (the default), the others name it.
        let currency = d.currency == "USD" ? "" : ",\"currency\":\"\(d.currency)\""
        return Array("{\"event_id\":\"\(event)\",\"user_id\":\"user-\(d.account)\",\"cloud_account_id\":\"\(d.account)\",\"provider\":\"\(d.provider.rawValue)\",\"resource_id\":\"\(d.resource)\",\"resource_type\":\"ebs_volume\",\"action\":\"deleted\",\"detected_at\":\"\(detected)\",\"action_at\":\"\(d.at)\",\"cost_saved_monthly\":\(d.saved)\(currency)}".utf8)
    }

    static func billedJSON(_ b: Billed, event: String) -> [UInt8] {
        let amount = Self.decimal4(b.units)
        return Array("{\"event_id\":\"\(event)\",\"cloud_account_id\":\"\(b.account)\",\"provider\":\"aws\",\"resource_id\":\"\(b.resource)\",\"usage_date\":\"\(b.day.dayKey)\",\"amount\":\(amount),\"currency\":\"\(b.currency)\",\"cost_type\":\"\(b.costType)\",\"source\":\"cur\"}".utf8)
    }

    struct Row: Equatable, CustomStringConvertible {
        var detected: Int, waste: String, eliminated: Int, saved: String, top: [String], billedResources: Int, billed: String
        var description: String {
            "detected=\(detected) waste=\(waste) eliminated=\(eliminated) saved=\(saved) top=\(top) billed=\(billedResources)/\(billed)"
        }
    }

    /// Random streams of scans (rescans, duplicates, a resource now and then scanned in another
    /// currency), deletions and billed days (restated, amortized, for resources no scan reports,
    /// before and after the scans), shuffled across topics and event time, against a brute force
    /// of SPEC §6 per account, month and currency.
    @Test(arguments: [101, 202, 303]) func randomStreamsMatchBruteForce(seed: Int) async throws {
        var rng = SplitMix64(seed: UInt64(seed))
        let env = try await TestEnvironment()
        let accounts = (0..<5).map { "acct-\(seed)-\($0)" }
        let currencies = ["USD", "EUR", "USD", "GBP", "USD"]
        let types = ["ebs_volume", "ec2_instance", "elastic_ip", "rds_instance", "nat_gateway", "snapshot", "load_balancer"]
        let base = Timestamp.parseRFC3339("2026-01-01T00:00:00Z")!.micros
        var scans: [Scan] = []
        var deletes: [Delete] = []
        var bills: [Billed] = []
        for (a, account) in accounts.enumerated() {
            func currency() -> String { rng.nextDouble() < 0.15 ? (currencies[a] == "USD" ? "EUR" : "USD") : currencies[a] }
            for r in 0..<14 {
                let resource = "res-\(account)-\(r)"
                let type = types[r % types.count]
                if r < 12 {  // the last two are billed but never detected
                    for _ in 0..<(1 + Int(rng.next() % 6)) {  // rescans of the same resource
                        let at = Timestamp(micros: base + Int64(rng.next() % (120 * 86_400_000_000)))  // Jan..Apr, any order
                        scans.append(Scan(account: account, resource: resource, type: type, cost: Double(rng.next() % 50_000) / 100,
                                          currency: currency(), at: at, provider: .aws))
                    }
                }
                if r < 12, rng.nextDouble() < 0.3 {
                    for _ in 0..<(1 + Int(rng.next() % 2)) {
                        let at = Timestamp(micros: base + Int64(rng.next() % (120 * 86_400_000_000)))
                        deletes.append(Delete(account: account, resource: resource, saved: Double(rng.next() % 30_000) / 100,
                                              currency: currency(), at: at, provider: .aws))
                    }
                }
                for _ in 0..<Int(rng.next() % 8) {  // Dec..May: days outside the detected months too
                    let day = Timestamp(micros: base + (Int64(rng.next() % 180) - 31) * 86_400_000_000)
                    let costType = rng.nextDouble() < 0.2 ? "amortized" : "unblended"
                    bills.append(Billed(account: account, resource: resource, day: day, units: Int(rng.next() % 200_000),
                                        currency: currency(), costType: costType))
                    if rng.nextDouble() < 0.3 {  // restated: the same day again, corrected
                        var restated = bills.last!
                        restated.units = Int(rng.next() % 200_000)
                        bills.append(restated)
                    }
                }
            }
        }
        var messages: [(InputTopic, String?, [UInt8]?)] = []
        for (i, s) in scans.enumerated() {
            messages.append((.scanResources, s.account, Self.scanJSON(s, event: "s\(seed)-\(i)")))
            if rng.nextDouble() < 0.1 { messages.append((.scanResources, s.account, Self.scanJSON(s, event: "s\(seed)-\(i)"))) }  // duplicate delivery
        }
        for (i, d) in deletes.enumerated() { messages.append((.userActions, d.account, Self.deleteJSON(d, event: "d\(seed)-\(i)"))) }
        for (i, b) in bills.enumerated() { messages.append((.billedCosts, b.account, Self.billedJSON(b, event: "b\(seed)-\(i)"))) }
        // Interleave topics and shuffle within the stream (out of order event times).
        for i in stride(from: messages.count - 1, to: 0, by: -1) { messages.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        try env.publish(messages)
        try env.runPipeline()

        // Brute force. Billed days in the order they were published: an account's records share a
        // partition, so the last one published for a resource, day and cost type is the latest.
        let p = Pseudonymizer(key: env.key)
        func month(_ account: String, _ t: Timestamp) -> String { p.pseudonym(.account, account).hex + "|" + t.monthKey }
        var latestBill: [String: Billed] = [:]
        for (topic, _, value) in messages where topic == .billedCosts {
            let b = bills[Int(Self.eventNumber(value!))!]
            latestBill["\(b.resource)|\(b.day.dayKey)|\(b.costType)"] = b
        }
        var latestScan: [String: Scan] = [:]  // account-month|currency|resource
        var detectedResources: [String: Set<String>] = [:]  // account-month → resources, any currency
        for s in scans {
            let k = month(s.account, s.at) + "|" + s.currency + "|" + s.resource
            if latestScan[k].map({ s.at > $0.at }) ?? true { latestScan[k] = s }
            detectedResources[month(s.account, s.at), default: []].insert(s.resource)
        }
        var latestDelete: [String: Delete] = [:]
        for d in deletes {
            let k = month(d.account, d.at) + "|" + d.currency + "|" + d.resource
            if latestDelete[k].map({ d.at > $0.at }) ?? true { latestDelete[k] = d }
        }
        func group(_ key: String) -> String { key.split(separator: "|").prefix(3).joined(separator: "|") }
        var detected: [String: [Scan]] = [:]
        for (k, s) in latestScan { detected[group(k), default: []].append(s) }
        var eliminated: [String: [Delete]] = [:]
        for (k, d) in latestDelete { eliminated[group(k), default: []].append(d) }
        var billed: [String: (resources: Set<String>, units: Int)] = [:]
        for b in latestBill.values where b.costType == "unblended" {
            let m = month(b.account, b.day)
            guard detectedResources[m]?.contains(b.resource) == true else { continue }
            billed[m + "|" + b.currency, default: ([], 0)].resources.insert(b.resource)
            billed[m + "|" + b.currency, default: ([], 0)].units += b.units
        }
        var expected: [String: Row] = [:]
        for key in Set(detected.keys).union(eliminated.keys).union(billed.keys) {
            let ss = detected[key] ?? []
            let ds = eliminated[key] ?? []
            var byType: [String: (Int, Double)] = [:]
            for s in ss { byType[s.type, default: (0, 0)].0 += 1; byType[s.type, default: (0, 0)].1 += (s.cost * 10000).rounded() / 10000 }
            let top = byType.sorted { ($0.value.1, $1.key) > ($1.value.1, $0.key) }.prefix(5).map(\.key)
            let units = billed[key]?.units ?? 0
            expected[key] = Row(detected: ss.count, waste: String(format: "%.4f", ss.reduce(0) { $0 + $1.cost }),
                                eliminated: ds.count, saved: String(format: "%.4f", ds.reduce(0) { $0 + $1.saved }), top: top,
                                billedResources: billed[key]?.resources.count ?? 0,
                                billed: Self.decimal4(units))
        }
        let db = try env.connect()
        let result = try db.query("""
            SELECT encode(account_hash, 'hex') || '|' || to_char(month, 'YYYY-MM-DD') || '|' || currency, resources_detected,
                   waste_detected_monthly_cost::text, resources_eliminated, waste_eliminated_monthly_cost::text,
                   (SELECT string_agg(e->>'resource_type', ',' ORDER BY ord) FROM jsonb_array_elements(top_categories) WITH ORDINALITY AS x(e, ord)),
                   billed_resources, billed_waste_monthly_cost::text
              FROM cost_trend_data
            """)
        var actual: [String: Row] = [:]
        for r in result.rows {
            actual[r[0]!] = Row(detected: Int(r[1]!)!, waste: r[2]!, eliminated: Int(r[3]!)!, saved: r[4]!,
                                top: r[5].map { $0.split(separator: ",").map(String.init) } ?? [],
                                billedResources: Int(r[6]!)!, billed: r[7]!)
        }
        #expect(Set(expected.keys.map { $0.split(separator: "|")[2] }) == ["USD", "EUR", "GBP"])
        #expect(expected.values.contains { $0.billedResources > 0 && $0.detected == 0 })  // billed in a currency no scan used
        #expect(actual.count == expected.count)
        for (k, row) in expected { #expect(actual[k] == row, "group \(k)") }
        // Months whose end + 72 h lies behind the watermark (latest event time, all partitions idle) are final.
        #expect(try db.query("SELECT count(*) FROM cost_trend_data WHERE finalized AND month < '2026-03-01'").decode(Int.self) > 0)
        #expect(try db.query("SELECT count(*) FROM cost_trend_data WHERE finalized AND month >= '2026-04-01'").decode(Int.self) == 0)
        // Every row reached the topic under its own account:month:currency key.
        let emitted = try env.readTopic("cloudwaste.cost-trends.v1")
        let published = Set(emitted.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } })
        #expect(published == Set(actual.keys.map { $0.replacingOccurrences(of: "|", with: ":") }))
        // Each message has every field the topic's schema requires.
        let schemaURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("topics/cost-trends/schema.json")
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: schemaURL)) as! [String: Any]
        let required = Set(schema["required"] as! [String])
        for m in emitted.prefix(50) {
            guard let v = m.value else { continue }
            let fields = Set((try JSONSerialization.jsonObject(with: Data(v)) as! [String: Any]).keys)
            #expect(required.isSubset(of: fields), "missing \(required.subtracting(fields))")
        }
    }

    /// Ten-thousandths as a decimal with 4 places, as numeric(18,4) prints it.
    static func decimal4(_ units: Int) -> String { "\(units / 10_000)." + String(String(units % 10_000 + 10_000).dropFirst()) }

    /// The event number of a generated record (`"event_id":"b<seed>-<n>"` → n).
    static func eventNumber(_ value: [UInt8]) -> Substring {
        let text = String(decoding: value, as: UTF8.self)
        let id = text.split(separator: "\"")[3]
        return id.split(separator: "-").last!
    }

    @Test func monthBoundariesFollowUTC() async throws {
        let env = try await TestEnvironment()
        let cases: [(String, String)] = [
            ("2026-03-31T23:59:59Z", "2026-03-01"),
            ("2026-04-01T00:00:00Z", "2026-04-01"),
            ("2026-04-01T05:00:00+14:00", "2026-03-01"),  // 2026-03-31T15:00Z
            ("2026-03-31T20:00:00-12:00", "2026-04-01"),  // 2026-04-01T08:00Z
            ("2024-02-29T12:00:00Z", "2024-02-01"),
            ("2025-12-31T23:59:59.999999Z", "2025-12-01"),
        ]
        var messages: [(InputTopic, String?, [UInt8]?)] = []
        for (i, (time, _)) in cases.enumerated() {
            let json = "{\"event_id\":\"b\(i)\",\"scan_id\":\"s\(i)\",\"detected_at\":\"\(time)\",\"user_id\":\"u\",\"cloud_account_id\":\"acct-\(i)\",\"provider\":\"gcp\",\"region\":\"europe-west1\",\"resource_type\":\"persistent_disk\",\"resource_id\":\"projects/p/zones/z/disks/d\(i)\",\"scenario\":\"idle\",\"confidence\":\"low\",\"estimated_monthly_cost\":5}"
            messages.append((.scanResources, "acct-\(i)", Array(json.utf8)))
        }
        try env.publish(messages)
        try env.runPipeline()
        let db = try env.connect()
        let p = Pseudonymizer(key: env.key)
        for (i, (_, month)) in cases.enumerated() {
            let r = try db.query("SELECT to_char(month, 'YYYY-MM-DD') FROM cost_trend_data WHERE account_hash = \(p.pseudonym(.account, "acct-\(i)"))")
            #expect(r.string(0, 0) == month, "case \(i)")
        }
    }

    /// Recomputing cost_trend_data only every so often (windows.recompute_interval_ms) must give
    /// the rows of recomputing after every batch, and leave nothing deferred when the run ends.
    @Test func deferredRecomputeGivesTheRowsOfRecomputingEveryBatch() async throws {
        let env = try await TestEnvironment()
        try env.publish(TrafficGenerator(seed: 71, badRecordShare: 0).messages(count: 4000).filter { $0.topic != .privacyRequests })
        var results: [String?] = []
        for interval in [0, 60_000] {
            var config = env.config
            config.postgresURL = try await TestPostgres.newDatabase("recompute")
            config.groupId = "recompute-\(interval)"
            config.batchMaxRecords = 300
            config.windowRecomputeIntervalMs = interval
            try env.runPipeline(config: config)
            let db = try env.connect(config.postgresURL)
            #expect(try db.query("SELECT count(*) FROM window_dirty_months").decode(Int.self) == 0)
            #expect(try db.query("SELECT count(*) FROM cost_trend_data").decode(Int.self) > 0)
            results.append(try TableChecksums.compute(db)["cost_trend_data"])
        }
        #expect(results[0] == results[1])
    }

    @Test func lateRecordReopensAFinalizedMonthAndIsReEmitted() async throws {
        let env = try await TestEnvironment(partitions: [.scanResources: 1, .userActions: 1])
        func scan(_ event: String, _ resource: String, _ at: String, _ cost: Double, currency: String = "USD") -> (InputTopic, String?, [UInt8]?) {
            (.scanResources, "acct", Array("{\"event_id\":\"\(event)\",\"scan_id\":\"\(event)\",\"detected_at\":\"\(at)\",\"user_id\":\"u\",\"cloud_account_id\":\"acct\",\"provider\":\"azure\",\"region\":\"westeurope\",\"resource_type\":\"managed_disk\",\"resource_id\":\"\(resource)\",\"scenario\":\"unattached\",\"confidence\":\"high\",\"estimated_monthly_cost\":\(cost),\"currency\":\"\(currency)\"}".utf8))
        }
        try env.publish([scan("e1", "disk-1", "2026-01-10T00:00:00Z", 10), scan("e2", "disk-2", "2026-02-10T00:00:00Z", 20),
                         scan("e3", "disk-3", "2026-03-20T00:00:00Z", 30)])
        try env.runPipeline()
        let db = try env.connect()
        let jan: PostgresQuery = "SELECT revision, late_records, finalized, resources_detected FROM cost_trend_data WHERE month = '2026-01-01'"
        let before = try db.query(jan).rows[0]
        #expect(before[1] == "0")
        #expect(before[2] == "t")
        #expect(before[3] == "1")
        // A record for January arrives after January was finalized.
        try env.publish([scan("e4", "disk-4", "2026-01-15T00:00:00Z", 40)])
        try env.runPipeline()
        let after = try db.query(jan).rows[0]
        #expect(Int(after[0]!)! > Int(before[0]!)!)
        #expect(after[1] == "1")
        #expect(after[3] == "2")
        // The re-emitted row carries the new revision; consumers keep the highest revision per key.
        let emitted = try env.readTopic("cloudwaste.cost-trends.v1").filter { $0.key.map { String(decoding: $0, as: UTF8.self).contains(":2026-01-01:") } ?? false }
        let revisions = emitted.compactMap { m -> Int? in
            guard let v = m.value, case .object(let o)? = try? JSONParser().parse(v), case .number(let r)? = o["revision"] else { return nil }
            return Int(r)
        }
        #expect(revisions.max() == Int(after[0]!))
        #expect(revisions == revisions.sorted())

        // January's bill arrives later still: a day of a detected disk, its restatement, and a day
        // of a disk no scan reported (not part of the row, so not a late record of it).
        func bill(_ event: String, _ resource: String, _ amount: String) -> (InputTopic, String?, [UInt8]?) {
            (.billedCosts, "acct", Array("{\"event_id\":\"\(event)\",\"cloud_account_id\":\"acct\",\"provider\":\"azure\",\"resource_id\":\"\(resource)\",\"usage_date\":\"2026-01-12\",\"amount\":\(amount),\"currency\":\"USD\"}".utf8))
        }
        try env.publish([bill("b1", "DISK-1", "3.5"), bill("b2", "disk-9", "1")])
        try env.runPipeline()
        // (A restatement within the same batch replaces the day before it reaches PostgreSQL and
        // counts once; here it comes on its own.)
        try env.publish([bill("b3", "disk-1", "4.25")])
        try env.runPipeline()
        let billed = try db.query("SELECT revision, late_records, billed_resources, billed_waste_monthly_cost::text FROM cost_trend_data WHERE month = '2026-01-01'").rows[0]
        #expect(Int(billed[0]!)! > Int(after[0]!)!)
        #expect(billed[1] == "3")  // the scan, the bill and its restatement (Azure ids: case-insensitive)
        #expect(billed[2] == "1")
        #expect(billed[3] == "4.2500")
        let lastEmitted = try env.readTopic("cloudwaste.cost-trends.v1").last { $0.key.map { String(decoding: $0, as: UTF8.self).contains(":2026-01-01:") } ?? false }
        guard let v = lastEmitted?.value, case .object(let o)? = try? JSONParser().parse(v) else { Issue.record("no emission"); return }
        #expect(o["billed_waste_monthly_cost"] == .number(4.25))
        #expect(o["currency"] == .string("USD"))

        // A late record in a currency the finalized month had no row for: its new row is final
        // at once and counts the record as late.
        try env.publish([scan("e5", "disk-5", "2026-01-20T00:00:00Z", 50, currency: "EUR")])
        try env.runPipeline()
        let eur = try db.query("SELECT revision, late_records, finalized, resources_detected FROM cost_trend_data WHERE month = '2026-01-01' AND currency = 'EUR'").rows
        #expect(eur == [["1", "1", "t", "1"]])
        #expect(try db.query("SELECT late_records FROM cost_trend_data WHERE month = '2026-01-01' AND currency = 'USD'").string(0, 0) == "3")
    }
}
