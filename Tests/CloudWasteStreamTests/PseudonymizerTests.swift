import Foundation
import Testing
@testable import CloudWasteStream
import CloudWasteDevTools

/// Keyed pseudonyms (SPEC §3) against vectors computed independently with Python's `hmac` module,
/// with the key bytes 0, 1, …, 31.
@Suite struct PseudonymizerTests {
    static let keyBytes = (0..<32).map { UInt8($0) }
    static let keyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    static let keyBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

    private func makePseudonymizer() throws -> Pseudonymizer {
        Pseudonymizer(key: try HMACKey(bytes: Self.keyBytes))
    }

    // MARK: - Known-answer vectors

    @Test(arguments: [
        (Pseudonymizer.Domain.user, "user-1@example.com", Provider?.none,
         "957bca9367fba7a3e229e8850180592878b895b21cece435353c07ce1b1f02ce"),
        (.account, "123456789012", .aws,
         "9464de54d755ee452dc916857f997bf5f111c242eb9341d18cd7009f328d4625"),
        (.resource, "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", .aws,
         "e97c72551044fe099663e1e4c9fd0f787aa14b5067687e7d24c32512f0dd3749"),
        (.account, "0f8fad5b-d9cb-469f-a165-70867728950e", .azure,
         "cf7bea18aa051d78818baf9a18dbd7b17f26d235075f28d02c0eefffd96d9fcf"),
        (.resource, "/subscriptions/0f8fad5b-d9cb-469f-a165-70867728950e/resourcegroups/rg-prod/providers/microsoft.compute/disks/disk-1", .azure,
         "f1a402489665f9011ee6d0f124b37096d50c39c8ae35a181516afe9cf8094a0f"),
        (.scan, "scan-1", nil,
         "3ad85676006659f1d6e71ebb148adc4be5072cf7803757e650aa7aa25ff6ce9b"),
        (.event, "evt-1", nil,
         "4078190d756d16e90f59b068b0347caea2cbb2ee0daf5189bed0dd86c948f45e"),
    ])
    func knownAnswers(_ domain: Pseudonymizer.Domain, _ id: String, _ provider: Provider?, _ expected: String) throws {
        let p = try makePseudonymizer()
        #expect(p.pseudonym(domain, id, provider: provider).hex == expected)
        // The provider only matters for Azure account/resource ids; these are already normalized.
        #expect(p.pseudonym(domain, id).hex == expected)
    }

    @Test func keyIdIsFirstEightHexOfSHA256() throws {
        let key = try HMACKey(bytes: Self.keyBytes)
        #expect(key.keyId == "630dcd29")
        #expect(try makePseudonymizer().keyId == "630dcd29")
        #expect(sha256Hex(Self.keyBytes).hasPrefix("630dcd29"))
        #expect(sha256Hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// Plain SHA-256 (payload fingerprints, key ids, `forget`'s consent event) against FIPS 180-2's
    /// vectors: one block, padding that spills into a second block, a message of two blocks, and
    /// a million bytes.
    @Test func plainSHA256MatchesTheStandardVectors() {
        #expect(sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let paddingSpills = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(sha256Hex(paddingSpills) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let twoBlocks = Array(("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                               + "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu").utf8)
        #expect(twoBlocks.count == 112)
        #expect(sha256Hex(twoBlocks) == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        #expect(sha256Hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        #expect(Pseudonym(sha256Of: twoBlocks).hex == sha256Hex(twoBlocks))
    }

    @Test func pseudonymsAre64LowercaseHex() throws {
        let p = try makePseudonymizer()
        for domain in [Pseudonymizer.Domain.user, .account, .resource, .scan, .event] {
            let h = p.pseudonym(domain, "some id").hex
            #expect(h.count == 64)
            #expect(h.allSatisfy { "0123456789abcdef".contains($0) })
        }
    }

    @Test func repeatedCallsReuseTheContextCorrectly() throws {
        let p = try makePseudonymizer()
        let first = p.pseudonym(.user, "user-1@example.com").hex
        _ = p.pseudonym(.resource, String(repeating: "x", count: 5000)).hex
        _ = p.pseudonym(.event, "").hex
        #expect(p.pseudonym(.user, "user-1@example.com").hex == first)
        #expect(first == "957bca9367fba7a3e229e8850180592878b895b21cece435353c07ce1b1f02ce")
    }

    // MARK: - Normalization

    @Test func surroundingWhitespaceIsTrimmed() throws {
        let p = try makePseudonymizer()
        let expected = "957bca9367fba7a3e229e8850180592878b895b21cece435353c07ce1b1f02ce"
        #expect(p.pseudonym(.user, "  user-1@example.com").hex == expected)
        #expect(p.pseudonym(.user, "user-1@example.com \t\n").hex == expected)
        #expect(p.pseudonym(.user, "\u{00A0}user-1@example.com\u{2003}").hex == expected)
        // Inner white space is part of the id.
        #expect(p.pseudonym(.user, "user-1 @example.com").hex != expected)
        #expect(p.pseudonym(.account, " 123456789012 ", provider: .aws).hex
            == "9464de54d755ee452dc916857f997bf5f111c242eb9341d18cd7009f328d4625")
    }

    @Test func upperCaseGUIDEqualsLowerCaseForAnyProvider() throws {
        let p = try makePseudonymizer()
        let lower = "cf7bea18aa051d78818baf9a18dbd7b17f26d235075f28d02c0eefffd96d9fcf"
        #expect(p.pseudonym(.account, "0F8FAD5B-D9CB-469F-A165-70867728950E", provider: .microsoft365).hex == lower)
        #expect(p.pseudonym(.account, "0f8FAD5b-d9cb-469F-a165-70867728950E", provider: .aws).hex == lower)
        #expect(p.pseudonym(.account, " 0F8FAD5B-D9CB-469F-A165-70867728950E ", provider: .azure).hex == lower)
        #expect(p.pseudonym(.account, "0F8FAD5B-D9CB-469F-A165-70867728950E").hex == lower)
    }

    /// ASCII ids are normalized in a buffer on the stack; the result must be what the Unicode-aware
    /// `normalize` gives, for ids made of the characters normalization is about.
    @Test func asciiNormalizationMatchesTheUnicodeAwareOne() {
        var rng = SplitMix64(seed: 11)
        let alphabet = Array("0123456789abcdefABCDEFxyzXYZ-/: \t\n".utf8)
        let guid = Array("0F8FAD5B-D9CB-469F-A165-70867728950E".utf8)
        for n in 0..<20_000 {
            var id: [UInt8] = (0..<Int(rng.next() % 48)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            if n % 3 == 0 { id.insert(contentsOf: guid, at: Int(rng.next() % UInt64(id.count + 1))) }
            for lowercaseAll in [false, true] {
                let reference = Pseudonymizer.normalize(String(decoding: id, as: UTF8.self), lowercaseAll: lowercaseAll)
                let viaBuffer = id.withUnsafeBufferPointer { bytes in
                    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bytes.count) {
                        Array(Pseudonymizer.normalizeASCII(bytes, lowercaseAll: lowercaseAll, into: $0))
                    }
                }
                #expect(viaBuffer == reference, "\(String(decoding: id, as: UTF8.self))")
            }
        }
    }

    @Test func guidRunsInsideIdsAreLowercasedButNothingElse() {
        func norm(_ s: String) -> String { String(decoding: Pseudonymizer.normalize(s, lowercaseAll: false), as: UTF8.self) }
        #expect(norm("User/0F8FAD5B-D9CB-469F-A165-70867728950E/Disk") == "User/0f8fad5b-d9cb-469f-a165-70867728950e/Disk")
        #expect(norm("A0F8FAD5B-D9CB-469F-A165-70867728950E") == "A0F8FAD5B-D9CB-469F-A165-70867728950E")  // preceded by hex
        #expect(norm("0F8FAD5B-D9CB-469F-A165-70867728950EF") == "0F8FAD5B-D9CB-469F-A165-70867728950EF")  // followed by hex
        #expect(norm("0F8FAD5B-D9CB-469F-A165-70867728950") == "0F8FAD5B-D9CB-469F-A165-70867728950")    // too short
        #expect(norm("0F8FAD5BXD9CB-469F-A165-70867728950E") == "0F8FAD5BXD9CB-469F-A165-70867728950E")  // wrong separator
        #expect(norm("x0F8FAD5B-D9CB-469F-A165-70867728950E,AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE")
            == "x0f8fad5b-d9cb-469f-a165-70867728950e,aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        #expect(norm("arn:aws:ec2:us-east-1:123456789012:volume/Vol-0ABC") == "arn:aws:ec2:us-east-1:123456789012:volume/Vol-0ABC")
        #expect(String(decoding: Pseudonymizer.normalize(" /Subscriptions/X ", lowercaseAll: true), as: UTF8.self) == "/subscriptions/x")
    }

    @Test func azureResourceIdsAreCaseInsensitive() throws {
        let p = try makePseudonymizer()
        let expected = "f1a402489665f9011ee6d0f124b37096d50c39c8ae35a181516afe9cf8094a0f"
        let mixed = "/subscriptions/0F8FAD5B-D9CB-469F-A165-70867728950E/resourceGroups/RG-Prod/providers/Microsoft.Compute/disks/Disk-1"
        #expect(p.pseudonym(.resource, mixed, provider: .azure).hex == expected)
        // Without the Azure rule only the GUID is lowercased, so the rest still differs.
        #expect(p.pseudonym(.resource, mixed, provider: .aws).hex != expected)
        #expect(p.pseudonym(.resource, mixed).hex != expected)
    }

    @Test func azureLowercasingAppliesOnlyToAccountAndResourceDomains() throws {
        let p = try makePseudonymizer()
        #expect(p.pseudonym(.user, "User-1@Example.com", provider: .azure).hex != p.pseudonym(.user, "user-1@example.com", provider: .azure).hex)
        #expect(p.pseudonym(.scan, "Scan-1", provider: .azure).hex != p.pseudonym(.scan, "scan-1", provider: .azure).hex)
        #expect(p.pseudonym(.account, "Tenant-A", provider: .azure).hex == p.pseudonym(.account, "tenant-a", provider: .azure).hex)
    }

    @Test func awsArnsAndGcpNamesAreCaseSensitive() throws {
        let p = try makePseudonymizer()
        let expected = "e97c72551044fe099663e1e4c9fd0f787aa14b5067687e7d24c32512f0dd3749"
        #expect(p.pseudonym(.resource, "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc", provider: .aws).hex == expected)
        #expect(p.pseudonym(.resource, "arn:aws:ec2:us-east-1:123456789012:volume/vol-0ABC", provider: .aws).hex != expected)
        #expect(p.pseudonym(.resource, "ARN:AWS:EC2:US-EAST-1:123456789012:VOLUME/VOL-0ABC", provider: .aws).hex != expected)
        #expect(p.pseudonym(.resource, "projects/p/zones/z/disks/Disk-A", provider: .gcp).hex
            != p.pseudonym(.resource, "projects/p/zones/z/disks/disk-a", provider: .gcp).hex)
    }

    @Test func domainsSeparateTheSameId() throws {
        let p = try makePseudonymizer()
        let id = "123456789012"
        let hashes = [Pseudonymizer.Domain.user, .account, .resource, .scan, .event].map { p.pseudonym($0, id).hex }
        #expect(Set(hashes).count == 5)
    }

    @Test func differentKeysGiveDifferentPseudonyms() throws {
        let a = try makePseudonymizer()
        let b = Pseudonymizer(key: try HMACKey(bytes: Array(Self.keyBytes.reversed())))
        #expect(a.pseudonym(.account, "123456789012").hex != b.pseudonym(.account, "123456789012").hex)
        #expect(a.keyId != b.keyId)
        // Not an unkeyed SHA-256 of the message.
        #expect(a.pseudonym(.account, "123456789012").hex != sha256Hex(Array("account:123456789012".utf8)))
    }

    // MARK: - HMACKey

    @Test func hmacKeyParsesHexAndBase64() throws {
        let fromHex = try HMACKey(text: Self.keyHex)
        #expect(fromHex.bytes == Self.keyBytes)
        #expect(fromHex.keyId == "630dcd29")
        #expect(try HMACKey(text: Self.keyHex.uppercased()).bytes == Self.keyBytes)
        #expect(try HMACKey(text: "  \(Self.keyHex)\n").bytes == Self.keyBytes)
        let fromBase64 = try HMACKey(text: "base64:" + Self.keyBase64)
        #expect(fromBase64.bytes == Self.keyBytes)
        #expect(try HMACKey(text: "base64:" + Self.keyBase64 + "\n").bytes == Self.keyBytes)
        #expect(fromHex.hex == Self.keyHex)
    }

    @Test func hmacKeyAcceptsLongerKeys() throws {
        let bytes = (0..<64).map { UInt8($0 * 3 % 256) }
        #expect(try HMACKey(bytes: bytes).bytes.count == 64)
    }

    @Test func shortKeysAreRejectedWithAMessage() {
        do {
            _ = try HMACKey(bytes: Array(0..<16))
            Issue.record("a 16-byte key was accepted")
        } catch {
            #expect(error.description.contains("16 bytes"))
            #expect(error.description.contains("32"))
        }
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(bytes: Array(0..<31)) }
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(text: "000102030405060708090a0b0c0d0e0f") }  // 16 bytes as hex
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(text: "base64:AAECAwQFBgcICQoLDA0ODw==") }  // 16 bytes as base64
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(text: "") }
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(text: "not a key at all!") }
    }

    @Test func wrappedBase64KeyFilesAreAccepted() throws {
        // `openssl rand -base64 64` wraps its output at 64 columns.
        let bytes = (0..<64).map { UInt8($0) }
        let wrapped = Data(bytes).base64EncodedString(options: .lineLength64Characters) + "\n"
        #expect(wrapped.dropLast().contains("\n") || wrapped.contains("\r"))
        #expect(try HMACKey(text: "base64:" + wrapped).bytes == bytes)
        #expect(try HMACKey(text: "base64:" + wrapped.replacingOccurrences(of: "\n", with: "\r\n")).bytes == bytes)
    }

    /// SPEC §3 (v1.1): never guessed, never weak. Each text is refused with a line that says how
    /// to make a key, and never repeats the key.
    @Test(arguments: [
        ("changemechangemechangemechangemechangemechange", "neither hex nor base64"),  // 48 letters, was read as base64
        (String(repeating: "z", count: 64), "neither hex nor base64"),
        (String(repeating: "0", count: 64), "every byte is the same"),                 // all-zero key
        ("base64:" + String(repeating: "AAAA", count: 11), "every byte is the same"),  // 33 zero bytes
        (String(repeating: "ab", count: 28), "56 hex digits (28 bytes)"),             // was read as base64: 42 bytes
        (String(repeating: "a1", count: 31), "62 hex digits"),
        (String(repeating: "a", count: 65), "odd number of hex digits"),
        ("000102030405060708090a0b0c0d0e0f", "32 hex digits (16 bytes)"),             // was reported as 24 bytes
        (String(repeating: "deadbeef", count: 8), "a pattern of 4 bytes repeated"),
        ("base64:" + Data("correct horse battery staple, my secret key".utf8).base64EncodedString(), "printable text"),
        ("base64:***not base64***", "not valid base64"),
        ("", "neither hex nor base64"),
    ])
    func weakOrMisreadKeysAreRefused(text: String, reason: String) {
        do {
            _ = try HMACKey(text: text)
            Issue.record("accepted: \(text.prefix(20))…")
        } catch {
            #expect(error.description.contains(reason), "\(error.description)")
            #expect(error.description.contains("openssl rand -hex 32"))
            if text.count > 8 { #expect(!error.description.contains(text)) }
        }
    }

    @Test func keyFilesAreCheckedLikeTheVariable() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-weak-\(UUID().uuidString)").path
        try (String(repeating: "00", count: 32) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try HMACKey.load(file: path)
            Issue.record("a zero key file was accepted")
        } catch {
            #expect(error.description.contains(path))
            #expect(error.description.contains("every byte is the same"))
            #expect(error.description.contains("openssl rand -hex 32"))
        }
    }

    @Test func nonASCIIHexDigitsAreRejectedNotACrash() {
        // Character.isHexDigit accepts full-width digits such as "０" (U+FF10); only ASCII hex is a key.
        #expect(throws: HMACKey.Invalid.self) { try HMACKey(text: String(repeating: "\u{FF10}", count: 64)) }
    }

    @Test func descriptionDoesNotRevealTheKey() throws {
        let key = try HMACKey(bytes: Self.keyBytes)
        for text in [key.description, String(describing: key), "\(key)"] {
            #expect(!text.contains(Self.keyHex))
            #expect(!text.contains(Self.keyBase64))
            #expect(!text.contains("0001020304"))
            #expect(text.contains("630dcd29"))
        }
    }

    @Test func keyFileLoading() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-key-\(UUID().uuidString)").path
        try (Self.keyHex + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try HMACKey.load(file: path).bytes == Self.keyBytes)
        #expect(throws: HMACKey.Invalid.self) { try HMACKey.load(file: path + ".missing") }
    }

    @Test func generatedKeysAreRandom() {
        let a = HMACKey.generate(), b = HMACKey.generate()
        #expect(a.bytes.count == 32)
        #expect(a.bytes != b.bytes)
    }

    // MARK: - The id cache (accounts, users and scans)

    /// The pseudonym without the cache: what every lookup must return.
    private func uncached(_ p: Pseudonymizer, _ domain: Pseudonymizer.Domain, _ id: String, _ provider: Provider?) -> Pseudonym {
        let lowercaseAll = provider == .azure && (domain == .account || domain == .resource)
        var id = id
        return id.withUTF8 { p.hashed(domain, bytes: $0, lowercaseAll: lowercaseAll) }
    }

    @Test func theIdCacheGivesEveryIdItsOwnPseudonym() throws {
        let p = try makePseudonymizer()
        // More distinct ids than slots, of every shape the normalization treats differently, asked
        // for in rounds that repeat and interleave them, under both normalizations.
        let ids: [String] = (0..<6_000).map { i in
            switch i % 6 {
            case 0: String(format: "%012d", 100_000_000_000 + i * 7_919)
            case 1: UUID().uuidString  // upper-case GUID: lowercased
            case 2: " user-\(i)@example.com\t"  // surrounding white space: trimmed
            case 3: "User-\(i)-ÄÖ"  // non-ASCII: the Unicode-aware normalization
            case 4: "projects/p-\(i)"
            default: String(repeating: "x", count: 55 + i % 12) + "\(i)"  // around the 62-byte limit
            }
        }
        for round in 0..<3 {
            for (i, id) in ids.enumerated() where (i + round) % (round + 1) == 0 {
                for domain in [Pseudonymizer.Domain.account, .user, .scan] {
                    for provider in [Provider.aws, .azure] {
                        #expect(p.pseudonym(domain, id, provider: provider) == uncached(p, domain, id, provider), "\(domain) \(id)")
                    }
                }
            }
        }
        let lookups = p.cacheLookups
        #expect(lookups.hits > 0)
        #expect(lookups.misses > 0)
    }

    @Test func idsThatShareASlotDisplaceEachOtherWithoutMixingUp() throws {
        let p = try makePseudonymizer()
        // Ids that fall into the same slot, as a hostile producer could send on purpose.
        func slot(_ id: String) -> Int {
            var id = id
            return id.withUTF8 { Int(truncatingIfNeeded: PseudonymCache.hash($0, variant: 0)) & (PseudonymCache.slotCount - 1) }
        }
        let first = "acct-0"
        let rivals = (1...200_000).lazy.map { "acct-\($0)" }.filter { slot($0) == slot(first) }.prefix(3)
        let ids = [first] + rivals
        #expect(ids.count == 4)
        for _ in 0..<3 {
            for id in ids { #expect(p.pseudonym(.account, id) == uncached(p, .account, id, nil)) }
        }
        #expect(p.cacheLookups.hits == 0)  // each one displaced the one before
        for _ in 0..<3 { #expect(p.pseudonym(.account, first) == uncached(p, .account, first, nil)) }
        #expect(p.cacheLookups.hits == 2)
    }

    @Test func onlyRecurringDomainsAndShortIdsAreCached() throws {
        let p = try makePseudonymizer()
        for domain in [Pseudonymizer.Domain.event, .resource] { _ = p.pseudonym(domain, "id-1") }
        let long = String(repeating: "a", count: PseudonymCache.maxIdBytes + 1)
        _ = p.pseudonym(.user, long)
        _ = p.pseudonym(.user, long)
        #expect(p.cacheLookups.hits == 0 && p.cacheLookups.misses == 0)
        _ = p.pseudonym(.user, String(long.dropLast()))
        _ = p.pseudonym(.user, String(long.dropLast()))
        #expect(p.cacheLookups.hits == 1 && p.cacheLookups.misses == 1)
    }
}
