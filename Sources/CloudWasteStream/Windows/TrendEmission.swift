/// A cost-trend row to publish after its transaction committed.
public struct TrendEmission: Sendable, Equatable {
    public var accountHash: String
    public var month: String
    public var currency: String
    public var revision: Int
    /// The row as JSON; empty for a deleted row (published as a tombstone).
    public var json: String
    /// The Kafka key: one row per account, month and currency (SPEC §4), so a compacted topic
    /// keeps every currency's row of a month.
    public var key: String { "\(accountHash):\(month):\(currency)" }

    /// The newest revision per key, in key order. Each key is built once (building it per
    /// comparison of the sort cost two heap strings a comparison: most of the allocations of a
    /// benchmark run, on the output thread).
    static func latestPerKey(_ emissions: [TrendEmission]) -> [TrendEmission] {
        var latest: [String: TrendEmission] = [:]
        latest.reserveCapacity(emissions.count)
        for e in emissions {
            let key = e.key
            if latest[key].map({ e.revision > $0.revision }) ?? true { latest[key] = e }
        }
        return latest.sorted { $0.key < $1.key }.map(\.value)
    }
}
