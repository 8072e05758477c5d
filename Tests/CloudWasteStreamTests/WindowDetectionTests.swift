import Testing
@testable import CloudWasteStream

/// A batch's detections reduced to one window row per account, month, resource, currency and user:
/// the latest detection wins, every record is counted, rows come in key order (the lock order).
@Suite struct WindowDetectionTests {
    static func detection(account: String, resource: String, currency: CurrencyCode = .usd, user: String = "u", day: Int64, cost: Double,
                          partition: Int32 = 0, offset: Int64) -> WindowDetection {
        let row = TrainingRow(
            scanHash: Pseudonym(label: "s\(offset)"), resourceHash: Pseudonym(label: resource), accountHash: Pseudonym(label: account),
            userHash: Pseudonym(label: user), eventHash: Pseudonym(label: "e\(offset)"),
            provider: .aws, regionBucket: "us", resourceType: "ebs_volume", scenario: "unattached", confidence: .high,
            estimatedMonthlyCost: cost, currency: currency, resourceAgeDays: nil, createdHourUTC: nil, createdDOW: nil,
            metrics: [], tagKeys: [], envClass: nil, parentHash: nil,
            detectedAt: Timestamp(seconds: 1_790_000_000 + day * 86_400))
        return WindowDetection(row, source: SourcePosition(topic: "scan", partition: partition, offset: offset))
    }

    @Test func latestPerKeyWithAllRecordsCounted() {
        let input = [
            Self.detection(account: "b", resource: "r1", day: 1, cost: 10, offset: 1),
            Self.detection(account: "a", resource: "r2", day: 2, cost: 20, offset: 2),
            Self.detection(account: "b", resource: "r1", day: 3, cost: 30, offset: 3),  // replaces offset 1
            Self.detection(account: "b", resource: "r1", day: 2, cost: 99, offset: 4),  // older: counted, not kept
            Self.detection(account: "b", resource: "r1", currency: "EUR", day: 1, cost: 5, offset: 5),
            Self.detection(account: "a", resource: "r1", day: 2, cost: 7, offset: 6),
        ]
        let reduced = WindowDetection.reduce(input)
        #expect(reduced.map { "\($0.accountHash.label)/\($0.resourceHash.label)/\($0.currency)" } == ["a/r1/USD", "a/r2/USD", "b/r1/EUR", "b/r1/USD"])
        #expect(reduced.map(\.cost) == [7, 20, 5, 30])
        #expect(reduced.map(\.records) == [1, 1, 1, 3])
        #expect(reduced.map(\.records).reduce(0, +) == input.count)
    }

    @Test func sameDetectionTimeIsDecidedBySourcePosition() {
        let earlier = Self.detection(account: "a", resource: "r", day: 1, cost: 1, partition: 0, offset: 9)
        let later = Self.detection(account: "a", resource: "r", day: 1, cost: 2, partition: 1, offset: 0)
        for input in [[earlier, later], [later, earlier]] {
            let reduced = WindowDetection.reduce(input)
            #expect(reduced.count == 1 && reduced[0].cost == 2 && reduced[0].records == 2)
        }
    }

    /// Each user's latest report of a resource is kept, so that a privacy request can correct the
    /// state from that user's rows alone.
    @Test func eachUsersLatestIsKept() {
        let input = [
            Self.detection(account: "a", resource: "r", user: "v", day: 3, cost: 30, offset: 1),
            Self.detection(account: "a", resource: "r", user: "u", day: 1, cost: 10, offset: 2),
            Self.detection(account: "a", resource: "r", user: "v", day: 2, cost: 20, offset: 3),
        ]
        let reduced = WindowDetection.reduce(input)
        #expect(reduced.map { "\($0.userHash.label)=\($0.cost)×\($0.records)" } == ["u=10.0×1", "v=30.0×2"])
    }

    @Test func oneOrNoDetectionIsKeptAsItIs() {
        #expect(WindowDetection.reduce([]).isEmpty)
        let one = Self.detection(account: "a", resource: "r", day: 1, cost: 1, offset: 0)
        #expect(WindowDetection.reduce([one]) == [one])
    }
}

extension Pseudonym {
    /// A readable stand-in for tests: the label's bytes, then zeros (so labels order as pseudonyms do).
    init(label: String) {
        let bytes = Array(label.utf8) + [UInt8](repeating: 0, count: 32 - label.utf8.count)
        self = bytes.withUnsafeBytes { Pseudonym(bytes: $0) }
    }

    var label: String { String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }
}
