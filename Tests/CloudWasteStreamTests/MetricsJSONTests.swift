import Foundation
import Testing
@testable import CloudWasteStream

/// The metrics jsonb text: numbers written without a String must be the very text Swift's own
/// shortest round-trip formatting gives (`jsonNumber`), or jsonb would store another value.
@Suite struct MetricsJSONTests {
    static func written(_ d: Double) -> String {
        var out: [UInt8] = []
        MetricsJSON.appendNumber(d, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func numbersAreSwiftsShortestText() {
        var rng = SystemRandomNumberGenerator()
        var values: [Double] = [0, -0.0, 1, -1, 0.5, -0.5, 0.01, -0.01, 0.1, 0.07, 1.05, 12.3, 12.34, 99.99, 100.01,
                                999_999_999.99, 1e9 + 0.5, 1e15, 1e15 + 2, 1e-5, 0.001, 1.005, 2.675, 5e-324, 1.7976931348623157e308,
                                123_456.78, 0.30000000000000004, 4.35, 8.2, 1e14 + 0.25]
        for _ in 0..<20_000 {
            let cents = Int64.random(in: -100_000_000_000...100_000_000_000, using: &rng)
            values.append(Double(cents) / 100)                          // the common shape: cents
            values.append(Double(cents) / 1000)                         // a third decimal place
            values.append(Double(bitPattern: rng.next()))               // anything at all
            values.append((Double.random(in: 0..<5, using: &rng) * 100).rounded() / 100)  // what scanners send
        }
        for d in values where d.isFinite {
            #expect(Self.written(d) == jsonNumber(d), "\(d.bitPattern)")
        }
    }

    @Test func summariesAreWrittenInOneObject() {
        let text = String(decoding: MetricsJSON.bytes([
            MetricSummary(name: "CPUUtilization", avg: 1.5, p95: 3, trend: .down),
            MetricSummary(name: "NetworkIn", avg: -0.25, p95: 1234.56, trend: nil),
        ]), as: UTF8.self)
        #expect(text == #"{"CPUUtilization":{"avg":1.5,"p95":3,"trend":"down"},"NetworkIn":{"avg":-0.25,"p95":1234.56,"trend":null}}"#)
    }

    /// The row's text is written into room reserved beforehand: the longest numbers there are
    /// (the smallest normal and the largest magnitude, negative; the negative subnormal; a negative
    /// 15-digit integer) and the longest names fit it, and it is the same text as the array's.
    @Test func theReservedTextFitsTheLongestValues() {
        let longest: [Double] = [-2.2250738585072014e-308, -1.7976931348623157e308, -999_999_999_999_999, -5e-324,
                                 -0.30000000000000004, -999_999_999.99]
        var metrics: [MetricSummary] = []
        for (i, d) in longest.enumerated() {
            metrics.append(MetricSummary(name: String(repeating: "M", count: 64 - i), avg: d, p95: d, trend: i % 2 == 0 ? nil : .flat))
        }
        for count in 0...metrics.count {
            let some = Array(metrics.prefix(count))
            let reserved = MetricsJSON.withText(some) { Array($0) }
            #expect(reserved == MetricsJSON.bytes(some))
        }
    }
}
