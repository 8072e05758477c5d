import CloudWasteDevTools
@testable import CloudWasteStream
import Testing

/// The batch's key → slot table against a Dictionary, on keys shaped as the tables' keys are:
/// detections share a scan (first pseudonym) and differ in the resource; metric points share a
/// resource and differ only in the name or the timestamp.
@Suite struct RowKeyIndexTests {
    static func pseudonym(_ n: UInt64) -> Pseudonym {
        withUnsafeBytes(of: (n, n &* 31, ~n, n ^ 0x5555).self) { Pseudonym(bytes: $0) }
    }

    static func keys(count: Int, seed: UInt64) -> [RowKey] {
        var rng = SplitMix64(seed: seed)
        let scans = (0..<4).map { _ in pseudonym(rng.next()) }
        let resources = (0..<(count / 8 + 1)).map { _ in pseudonym(rng.next()) }
        let names = ["CPUUtilization", "NetworkIn", "a", "a_metric_name_longer_than_fifteen_bytes", "unblended"]
        func pick<T>(_ values: [T]) -> T { values[Int(rng.next() % UInt64(values.count))] }
        return (0..<count).map { _ in
            switch rng.next() % 3 {
            case 0: RowKey(a: pick(scans), b: pick(resources))
            case 1: RowKey(a: pick(resources), name: pick(names), c: Int64(rng.next() % 16) * 60_000_000)
            default: RowKey(a: pick(resources))
            }
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func updatesReturnWhatADictionaryWouldHold(seed: UInt64) {
        var index = RowKeyIndex()
        for round in 0..<3 {
            var reference: [String: Int] = [:]
            var keysByText: [String: RowKey] = [:]
            for (slot, key) in Self.keys(count: 5_000, seed: seed &* 10 &+ UInt64(round)).enumerated() {
                keysByText[Self.text(key)] = key
                #expect(index.update(slot, for: key) == reference.updateValue(slot, forKey: Self.text(key)))
            }
            #expect(index.count == reference.count)
            #expect(reference.count > 500 && reference.count < 5_000)  // both new keys and repeated ones

            // Dropping every third slot and renumbering the rest, as a discard does.
            var kept = index.compactMapSlots { $0 % 3 == 0 ? nil : $0 * 2 }
            let keptReference = reference.compactMapValues { $0 % 3 == 0 ? nil : $0 * 2 }
            #expect(kept.count == keptReference.count)
            for (text, key) in keysByText { #expect(kept.update(-1, for: key) == keptReference[text]) }

            index.removeAll()
            #expect(index.count == 0)
            for key in keysByText.values { #expect(index.update(0, for: key) == nil) }
            index.removeAll()
        }
    }

    static func text(_ key: RowKey) -> String { "\(key.a.hex)|\(key.b?.hex ?? "-")|\(key.name)|\(key.c)" }
}
