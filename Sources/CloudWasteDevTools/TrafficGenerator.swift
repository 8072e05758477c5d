public import CloudWasteStream

/// Realistic scanner traffic for the demo, the benchmark and tests: accounts on AWS, Azure, GCP
/// and Microsoft 365 with their own id shapes and regions, daily scans over several months, user
/// actions, lifecycle events, metric samples, privacy requests, billed costs (a day after the scan
/// that saw the resource, some restated a day later with a corrected amount, some for resources
/// before any scan detects them; Azure subscriptions billed in EUR every other one), and a
/// configurable share of bad records. Deterministic for a seed.
public struct TrafficGenerator: Sendable {
    public struct Message: Sendable {
        public var topic: InputTopic
        public var key: String
        public var value: [UInt8]

        public init(topic: InputTopic, key: String, value: [UInt8]) {
            self.topic = topic
            self.key = key
            self.value = value
        }
    }

    public var seed: UInt64
    public var badRecordShare: Double
    /// First day of the generated period (UTC); scans run daily from there.
    public var start: Timestamp
    public var months: Int
    /// The kinds of privacy request to generate (none: a test brings its own).
    public var privacyRequests: [String]

    public init(seed: UInt64 = 42, badRecordShare: Double = 0.01, start: Timestamp = Timestamp.parseRFC3339("2026-06-01T00:00:00Z")!, months: Int = 4,
                privacyRequests: [String] = ["opt_out", "opt_in", "erase"]) {
        self.seed = seed
        self.badRecordShare = badRecordShare
        self.start = start
        self.months = months
        self.privacyRequests = privacyRequests
    }

    struct Account {
        var id: String
        var provider: Provider
        var user: String
        var regions: [String]
        /// What the account is billed in: every scan, action and billed record of it uses it.
        var currency: String
        var resources: [(id: String, type: String, cost: Double, created: Timestamp, parent: String?)]
    }

    /// About `count` messages, produced lazily in event-time order per account.
    public func messages(count: Int) -> [Message] {
        var rng = SplitMix64(seed: seed)
        let days = months * 30
        // About 14 scan records per account and day, ~600 records per account: enough accounts
        // for every provider and for keys to spread over partitions, still weeks of history each.
        let accountCount = max(8, count / 600 + 1)
        var accounts: [Account] = (0..<accountCount).map { makeAccount($0, &rng) }
        var out: [Message] = []
        out.reserveCapacity(count)
        var day = 0
        var scanNo = 0
        /// Billed days to restate (send again with a corrected amount) at the start of the next day.
        var restatements: [Message] = []
        while out.count < count {
            let dayStart = Timestamp(micros: start.micros + Int64(day % days) * 86_400_000_000)
            for m in restatements where out.count < count { out.append(m) }
            restatements = []
            for a in accounts.indices {
                if out.count >= count { break }
                scanNo += 1
                let account = accounts[a]
                let scanId = "scan-\(seed)-\(scanNo)"
                for (r, res) in account.resources.enumerated() {
                    if out.count >= count { break }
                    if rng.nextDouble() < 0.3 {
                        // Billing covers resources that no scan reports (yet): a later scan may detect them.
                        if rng.nextDouble() < 0.05 {
                            out.append(billed(account: account, resource: res.id, day: dayStart, amount: res.cost / 30,
                                              eventId: "bill-\(seed)-\(scanNo)-\(r)-early", costType: "unblended"))
                        }
                        continue
                    }
                    let detected = Timestamp(micros: dayStart.micros + Int64(rng.next() % 86_000) * 1_000_000)
                    if rng.nextDouble() < badRecordShare {
                        out.append(Message(topic: .scanResources, key: account.id, value: badRecord(&rng, account: account)))
                        continue
                    }
                    let cost = (res.cost * (0.9 + rng.nextDouble() * 0.2) * 100).rounded() / 100
                    out.append(Message(topic: .scanResources, key: account.id, value: Array(scanJSON(
                        eventId: "evt-\(seed)-\(scanNo)-\(r)", scanId: scanId, detected: detected, account: account,
                        resource: res, cost: cost, region: account.regions[r % account.regions.count], rng: &rng).utf8)))
                    let roll = rng.nextDouble()
                    if roll < 0.02 {
                        let action = ["deleted", "deleted", "ignored", "kept"][Int(rng.next() % 4)]
                        let actionAt = Timestamp(micros: detected.micros + Int64(1 + rng.next() % 72) * 3_600_000_000)
                        var json = "{\"event_id\":\"act-\(seed)-\(scanNo)-\(r)\",\"user_id\":\"\(account.user)\",\"cloud_account_id\":\"\(account.id)\",\"provider\":\"\(account.provider.rawValue)\",\"resource_id\":\"\(res.id)\",\"resource_type\":\"\(res.type)\",\"action\":\"\(action)\",\"detected_at\":\"\(detected)\",\"action_at\":\"\(actionAt)\""
                        if action == "deleted" { json += ",\"cost_saved_monthly\":\(cost)" }
                        if account.currency != "USD" { json += ",\"currency\":\"\(account.currency)\"" }
                        out.append(Message(topic: .userActions, key: account.id, value: Array((json + "}").utf8)))
                        if action == "deleted" {
                            out.append(Message(topic: .resourceLifecycle, key: account.id, value: Array("{\"event_id\":\"lc-\(seed)-\(scanNo)-\(r)\",\"cloud_account_id\":\"\(account.id)\",\"provider\":\"\(account.provider.rawValue)\",\"resource_id\":\"\(res.id)\",\"resource_type\":\"\(res.type)\",\"from_state\":\"stopped\",\"to_state\":\"deleted\",\"occurred_at\":\"\(actionAt)\"}".utf8)))
                            accounts[a].resources[r].id = res.id + "-v2"  // a replacement resource appears
                        }
                    } else if roll < 0.14 {
                        // Yesterday's bill for this resource; some are restated tomorrow.
                        let yesterday = Timestamp(micros: dayStart.micros - 86_400_000_000)
                        let amount = (res.cost / 30 * (0.8 + rng.nextDouble() * 0.4) * 10_000).rounded() / 10_000
                        let costType = rng.nextDouble() < 0.15 ? "amortized" : "unblended"
                        out.append(billed(account: account, resource: res.id, day: yesterday, amount: amount,
                                          eventId: "bill-\(seed)-\(scanNo)-\(r)", costType: costType))
                        if rng.nextDouble() < 0.25 {
                            restatements.append(billed(account: account, resource: res.id, day: yesterday,
                                                       amount: (amount * 1.07 * 10_000).rounded() / 10_000,
                                                       eventId: "bill-\(seed)-\(scanNo)-\(r)-restated", costType: costType))
                        }
                    } else if roll < 0.18 {
                        var points: [String] = []
                        for h in 0..<6 {
                            let ts = Timestamp(micros: dayStart.micros + Int64(h * 4) * 3_600_000_000)
                            points.append("{\"ts\":\"\(ts)\",\"value\":\((rng.nextDouble() * 1000).rounded() / 100)}")
                        }
                        out.append(Message(topic: .metricSamples, key: account.id, value: Array("{\"cloud_account_id\":\"\(account.id)\",\"provider\":\"\(account.provider.rawValue)\",\"resource_id\":\"\(res.id)\",\"metric\":\"CPUUtilization\",\"unit\":\"Percent\",\"points\":[\(points.joined(separator: ","))]}".utf8)))
                    }
                }
                if rng.nextDouble() < 0.002, !privacyRequests.isEmpty {
                    let request = privacyRequests[Int(rng.next() % UInt64(privacyRequests.count))]
                    out.append(Message(topic: .privacyRequests, key: account.user, value: Array("{\"event_id\":\"priv-\(seed)-\(scanNo)\",\"user_id\":\"\(account.user)\",\"request\":\"\(request)\",\"requested_at\":\"\(dayStart)\"}".utf8)))
                }
            }
            day += 1
        }
        return Array(out.prefix(count))
    }

    /// `count` metric-samples records of `points` points each (one per minute), about 42 bytes a
    /// point: the large records that batch limits by rows and bytes exist for.
    public func largeMetricSamples(count: Int, points: Int) -> [Message] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { i in
            let account = "large-account-\(i)"
            var json = "{\"cloud_account_id\":\"\(account)\",\"provider\":\"aws\",\"resource_id\":\"arn:aws:ec2:us-east-1:\(account):instance/i-\(i)\",\"metric\":\"CPUUtilization\",\"unit\":\"Percent\",\"points\":["
            json.reserveCapacity(points * 48)
            for p in 0..<points {
                if p > 0 { json += "," }
                json += "{\"ts\":\"\(Timestamp(micros: start.micros + Int64(p) * 60_000_000))\",\"value\":\((rng.nextDouble() * 10000).rounded() / 100)}"
            }
            return Message(topic: .metricSamples, key: account, value: Array((json + "]}").utf8))
        }
    }

    /// A billed-cost record as the billing exports of each provider would give it.
    private func billed(account: Account, resource: String, day: Timestamp, amount: Double, eventId: String, costType: String) -> Message {
        let source = switch account.provider {
        case .aws: "cost_explorer"
        case .azure: "azure_cost_management"
        case .gcp: "gcp_billing_export"
        case .microsoft365: "microsoft365_billing"
        }
        let json = "{\"event_id\":\"\(eventId)\",\"cloud_account_id\":\"\(account.id)\",\"provider\":\"\(account.provider.rawValue)\",\"resource_id\":\"\(resource)\",\"usage_date\":\"\(day.dayKey)\",\"amount\":\(amount),\"currency\":\"\(account.currency)\",\"cost_type\":\"\(costType)\",\"source\":\"\(source)\"}"
        return Message(topic: .billedCosts, key: account.id, value: Array(json.utf8))
    }

    private func makeAccount(_ i: Int, _ rng: inout SplitMix64) -> Account {
        let provider = Provider.allCases[i % 4]
        func hex(_ n: Int) -> String {
            var s = ""
            for _ in 0..<n { s += String(rng.next() % 16, radix: 16) }
            return s
        }
        func guid() -> String { "\(hex(8))-\(hex(4))-\(hex(4))-\(hex(4))-\(hex(12))" }
        let user = "user-\(i)@customer\(i % 97).example.com"
        var resources: [(id: String, type: String, cost: Double, created: Timestamp, parent: String?)] = []
        let id: String
        let regions: [String]
        switch provider {
        case .aws:
            id = String(100_000_000_000 + Int(rng.next() % 899_999_999_999))
            regions = ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1", "il-central-1"]
        case .azure:
            id = guid().uppercased()
            regions = ["eastus2", "westeurope", "uksouth", "southeastasia", "brazilsouth", "uaenorth"]
        case .gcp:
            id = "project-\(hex(6))"
            regions = ["us-central1", "europe-west1", "asia-east1", "northamerica-northeast1"]
        case .microsoft365:
            id = guid()
            regions = ["global"]
        }
        let types: [(String, Double)] = switch provider {
        case .aws: [("ebs_volume", 40), ("ec2_instance", 180), ("elastic_ip", 3.6), ("rds_instance", 250), ("nat_gateway", 32)]
        case .azure: [("managed_disk", 35), ("virtual_machine", 160), ("public_ip", 3.2), ("sql_database", 210)]
        case .gcp: [("persistent_disk", 30), ("compute_instance", 150), ("static_ip", 7.3), ("cloud_sql", 190)]
        case .microsoft365: [("m365_license", 22), ("onedrive_storage", 5), ("teams_room", 15)]
        }
        for r in 0..<20 {
            let (type, base) = types[r % types.count]
            let rid: String = switch provider {
            case .aws: "arn:aws:ec2:us-east-1:\(id):volume/vol-\(hex(17))"
            case .azure: "/subscriptions/\(id)/resourceGroups/RG-Prod-\(r)/providers/Microsoft.Compute/disks/Disk-\(hex(6))"
            case .gcp: "projects/\(id)/zones/us-central1-a/disks/disk-\(hex(8))"
            case .microsoft365: "\(guid())"
            }
            let created = Timestamp(micros: start.micros - Int64(rng.next() % 400) * 86_400_000_000 - Int64(rng.next() % 86_400) * 1_000_000)
            resources.append((rid, type, base * (0.5 + rng.nextDouble()), created, r % 5 == 4 ? resources.first?.id : nil))
        }
        let currency = provider == .azure && (i / 4) % 2 == 0 ? "EUR" : "USD"
        return Account(id: id, provider: provider, user: user, regions: regions, currency: currency, resources: resources)
    }

    private func scanJSON(eventId: String, scanId: String, detected: Timestamp, account: Account,
                          resource: (id: String, type: String, cost: Double, created: Timestamp, parent: String?),
                          cost: Double, region: String, rng: inout SplitMix64) -> String {
        let env = ["prod", "production", "staging", "dev", "test", "sandbox"][Int(rng.next() % 6)]
        let trend = ["down", "flat", "up"][Int(rng.next() % 3)]
        var json = "{\"event_id\":\"\(eventId)\",\"scan_id\":\"\(scanId)\",\"detected_at\":\"\(detected)\",\"user_id\":\"\(account.user)\",\"cloud_account_id\":\"\(account.id)\",\"provider\":\"\(account.provider.rawValue)\",\"region\":\"\(region)\",\"resource_type\":\"\(resource.type)\",\"resource_id\":\"\(resource.id)\",\"scenario\":\"idle_\(resource.type)\",\"confidence\":\"\(["critical", "high", "medium", "low"][Int(rng.next() % 4)])\",\"estimated_monthly_cost\":\(cost),\"resource_name\":\"name-\(eventId)\",\"resource_created_at\":\"\(resource.created)\",\"currency\":\"\(account.currency)\""
        json += ",\"metrics\":{\"CPUUtilization\":{\"avg\":\((rng.nextDouble() * 500).rounded() / 100),\"p95\":\((rng.nextDouble() * 2000).rounded() / 100),\"trend\":\"\(trend)\"}}"
        json += ",\"tags\":{\"Environment\":\"\(env)\",\"Owner\":\"owner-\(eventId)@example.com\",\"CostCenter\":\"cc-\(rng.next() % 100)\"}"
        if let parent = resource.parent { json += ",\"parent_resource_id\":\"\(parent)\"" }
        return json + "}"
    }

    private func badRecord(_ rng: inout SplitMix64, account: Account) -> [UInt8] {
        switch rng.next() % 6 {
        case 0: return Array("{\"event_id\":\"x\",\"scan_id\":".utf8)
        case 1: return Array("{\"event_id\":\"e\",\"scan_id\":\"s\",\"detected_at\":\"2026-02-30T00:00:00Z\"}".utf8)
        case 2: return Array("{\"event_id\":\"e\",\"scan_id\":\"s\",\"detected_at\":\"2026-06-01T00:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"\(account.id)\",\"provider\":\"oracle\"}".utf8)
        case 3: return [0xFF, 0xFE, 0x7B, 0x7D]
        case 4: return Array("[1,2,3]".utf8)
        default: return Array("{\"event_id\":\"e\",\"scan_id\":\"s\",\"detected_at\":\"2026-06-01T00:00:00Z\",\"user_id\":\"u\",\"cloud_account_id\":\"a\",\"provider\":\"aws\",\"region\":\"us-east-1\",\"resource_type\":\"ebs_volume\",\"resource_id\":\"r\",\"scenario\":\"idle\",\"confidence\":\"high\",\"estimated_monthly_cost\":-5}".utf8)
        }
    }
}

/// A small, fast, seedable PRNG (SplitMix64) so generated traffic is reproducible.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
