import CloudWastePostgres
import Testing
@testable import CloudWasteStream

/// A currency code held as four bytes must order, print and encode as its three letters would.
@Suite struct CurrencyCodeTests {
    @Test func ordersAndPrintsAsItsLetters() {
        let codes = ["USD", "EUR", "AAA", "ZZZ", "CHF", "USE", "UAD", "JPY"]
        let parsed = codes.map { CurrencyCode($0.utf8)! }
        #expect(parsed.map(\.description) == codes)
        #expect(parsed.sorted().map(\.description) == codes.sorted())
        #expect(Set(parsed).count == codes.count)
    }

    @Test func onlyThreeUpperCaseLettersAreCodes() {
        for text in ["usd", "US", "USDX", "", "U5D", "ÜSD", "US ", "@SD", "[SD"] {
            #expect(CurrencyCode(text.utf8) == nil, "\(text)")
        }
    }

    @Test func encodesAsTheTextOfItsLetters() {
        var code = PostgresBinaryCopyEncoder()
        code.currency("EUR")
        var text = PostgresBinaryCopyEncoder()
        text.text("EUR")
        #expect(code.bytes == text.bytes)
    }
}
