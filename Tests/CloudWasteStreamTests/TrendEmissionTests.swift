import Testing
@testable import CloudWasteStream

@Suite struct TrendEmissionTests {
    private func emission(_ account: String, _ month: String, _ currency: String, revision: Int) -> TrendEmission {
        TrendEmission(accountHash: account, month: month, currency: currency, revision: revision, json: revision == 0 ? "" : "{\"r\":\(revision)}")
    }

    @Test func theNewestRevisionPerKeyInKeyOrder() {
        let emissions = [
            emission("bb", "2026-03-01", "USD", revision: 2),
            emission("aa", "2026-04-01", "EUR", revision: 1),
            emission("bb", "2026-03-01", "USD", revision: 4),
            emission("aa", "2026-03-01", "USD", revision: 7),
            emission("bb", "2026-03-01", "USD", revision: 3),
            emission("aa", "2026-04-01", "EUR", revision: 0),  // an older tombstone loses to revision 1
            emission("aa", "2026-04-01", "AUD", revision: 1),
        ]
        let latest = TrendEmission.latestPerKey(emissions)
        #expect(latest.map(\.key) == ["aa:2026-03-01:USD", "aa:2026-04-01:AUD", "aa:2026-04-01:EUR", "bb:2026-03-01:USD"])
        #expect(latest.map(\.revision) == [7, 1, 1, 4])
        #expect(TrendEmission.latestPerKey([]).isEmpty)
    }

    @Test func manyRowsComeOutSortedOnce() {
        let emissions = (0..<5_000).reversed().map { i in emission(String(format: "%064x", i % 300), "2026-0\(1 + i % 9)-01", "USD", revision: i) }
        let latest = TrendEmission.latestPerKey(emissions)
        #expect(latest.map(\.key) == latest.map(\.key).sorted())
        #expect(Set(latest.map(\.key)).count == latest.count)
        let newest = Dictionary(emissions.map { ($0.key, $0.revision) }, uniquingKeysWith: max)
        #expect(latest.count == newest.count)
        #expect(latest.allSatisfy { newest[$0.key] == $0.revision })
    }
}
