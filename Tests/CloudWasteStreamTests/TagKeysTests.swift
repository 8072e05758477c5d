import CloudWasteDevTools
import CloudWastePostgres
import Testing
@testable import CloudWasteStream

/// Tag keys are lower-cased, de-duplicated and sorted while a record is decoded: the byte path
/// for ASCII keys must give exactly what the String rule gives, and the packed elements must be
/// what the encoder writes for the same keys as Strings.
@Suite struct TagKeysTests {
    /// Random ASCII keys from a small alphabet (so that duplicates, case variants and prefixes of
    /// one another are frequent), inserted one by one, against `TagKeys(normalizing:)`.
    @Test func asciiInsertionGivesTheStringRule() {
        var rng = SplitMix64(seed: 19)  // seeded: a failure can be reproduced
        let alphabet = Array("aAbBzZ-_.0 ~".utf8)
        for _ in 0..<2_000 {
            let keys: [String] = (0..<Int.random(in: 0...12, using: &rng)).map { _ in
                String(decoding: (0..<Int.random(in: 1...4, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
            }
            var inserted = TagKeys()
            for key in keys { Array(key.utf8).withUnsafeBufferPointer { inserted.insert(lowercasingASCII: $0) } }
            let expected = TagKeys(normalizing: keys)
            #expect(inserted == expected, "\(keys)")
            #expect(inserted.strings == Array(Set(keys.map { $0.lowercased() })).sorted(), "\(keys)")
        }
    }

    @Test func elementsAreWhatTheEncoderWritesForTheStrings() {
        for keys: [String] in [[], ["env"], ["costcenter", "environment", "owner"], ["propriétaire", "a", String(repeating: "k", count: 128)]] {
            let tagKeys = TagKeys(normalizing: keys)
            var packed = PostgresBinaryCopyEncoder()
            tagKeys.elements.withUnsafeBytes { packed.textArray(count: tagKeys.count, elements: $0) }
            var strings = PostgresBinaryCopyEncoder()
            strings.textArray(tagKeys.strings)
            #expect(packed.bytes == strings.bytes, "\(keys)")
        }
    }

    /// Built in a recycled array that held more keys, the result is the same as in a new one.
    @Test func recycledStorageGivesTheSameKeys() {
        let arrays = RecycledArrays()
        arrays.recycle(metricSummaries: [], tagKeys: TagKeys(normalizing: (0..<20).map { "old-key-\($0)" }))
        var keys = arrays.takeTagKeys()
        #expect(keys.isEmpty)
        for key in ["Team", "owner", "TEAM"] { Array(key.utf8).withUnsafeBufferPointer { keys.insert(lowercasingASCII: $0) } }
        #expect(keys == ["owner", "team"])
    }

    /// A take after a recycle writes into the same bytes: the recycled array is emptied while it
    /// is the only reference to them. Had anything else still held them (a parameter copied instead
    /// of consumed did, in every scan record), emptying them would have allocated a new buffer.
    @Test func recycledStorageIsReusedInPlace() {
        let arrays = RecycledArrays()
        var keys = arrays.takeTagKeys()
        for key in ["team", "owner", "cost-center"] { Array(key.utf8).withUnsafeBufferPointer { keys.insert(lowercasingASCII: $0) } }
        let bytes = keys.elements.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        arrays.recycle(metricSummaries: [], tagKeys: keys)
        keys = TagKeys()  // the finished row lets go of them
        let next = arrays.takeTagKeys()
        #expect(next.isEmpty)
        #expect(next.elements.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == bytes)
    }

    /// Keys that are not plain ASCII as sent (non-ASCII, or escaped) send the whole record down
    /// the String rule, wherever they stand among the others; the environment tag is the one whose
    /// key as sent sorts first, whichever path its key took (`ENV`, escaped, before `env`).
    @Test func aRecordWithAnyOtherKeyGetsTheStringRuleForAll() throws {
        let members = [#""Owner":"x""#, #""ÉQUIPE":"y""#, #""\u0045NV":"prod""#, #""owner":null"#, #""Équipe":"z""#, #""b":"w""#,
                       #""env":"dev""#]
        for rotation in members.indices {
            let rotated = Array(members[rotation...] + members[..<rotation])
            let payload = RecordDecoderTests.scanWith("\"tags\":{\(rotated.joined(separator: ","))}")
            guard case .scan(let r) = try RecordDecoderTests.decoder().decode(.scanResources, payload) else {
                Issue.record("not a scan"); return
            }
            #expect(r.tags.keys.strings == ["b", "env", "owner", "équipe"], "\(rotated)")
            #expect(r.tags.environment == ScanTags.EnvironmentTag(key: "ENV", value: "prod"))
        }
    }
}
