import Foundation
import Testing
@testable import CloudWasteStream

/// Every region mapping listed in SPEC §3, read from the shipped `config/regions.json`.
@Suite struct RegionTableTests {
    static let regionsPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/regions.json").path

    private func table() throws -> RegionTable {
        try RegionTable.load(path: Self.regionsPath)
    }

    @Test(arguments: [
        // AWS
        (Provider.aws, "us-east-1", "us-*"),
        (.aws, "eu-west-3", "eu-*"),
        (.aws, "ap-southeast-2", "ap-*"),
        (.aws, "us-gov-west-1", "us-*"),
        (.aws, "il-central-1", "me-*"),
        // Azure
        (.azure, "eastus2", "us-*"),
        (.azure, "westeurope", "eu-*"),
        (.azure, "uksouth", "eu-*"),
        (.azure, "southeastasia", "ap-*"),
        (.azure, "centralindia", "ap-*"),
        (.azure, "brazilsouth", "sa-*"),
        (.azure, "canadacentral", "ca-*"),
        (.azure, "uaenorth", "me-*"),
        (.azure, "southafricanorth", "af-*"),
        // GCP
        (.gcp, "us-central1", "us-*"),
        (.gcp, "europe-west1", "eu-*"),
        (.gcp, "asia-east1", "ap-*"),
        (.gcp, "australia-southeast1", "ap-*"),
        (.gcp, "northamerica-northeast1", "ca-*"),
        (.gcp, "southamerica-east1", "sa-*"),
        // Microsoft 365 is global whatever the region says.
        (.microsoft365, "global", "global"),
        (.microsoft365, "emea", "global"),
        (.microsoft365, "NAM", "global"),
        // `global` for every provider.
        (.aws, "global", "global"),
        (.azure, "global", "global"),
        (.gcp, "global", "global"),
    ])
    func specMappings(_ provider: Provider, _ region: String, _ bucket: String) throws {
        let result = try table().bucket(provider: provider, region: region)
        #expect(result.bucket == bucket, "\(provider) \(region)")
        #expect(result.known)
    }

    @Test(arguments: [
        (Provider.aws, "mars-north-1"),
        (.aws, "eastus2"),            // an Azure name is not an AWS region
        (.aws, ""),
        (.azure, "us-east-1"),        // an AWS name is not an Azure region
        (.azure, "atlantis"),
        (.gcp, "moon-central1"),
        (.gcp, "westeurope"),
    ])
    func unknownRegionsAreOther(_ provider: Provider, _ region: String) throws {
        let result = try table().bucket(provider: provider, region: region)
        #expect(result.bucket == "other")
        #expect(result.bucket == RegionTable.unknownBucket)
        #expect(!result.known)
    }

    /// The table keeps its rules in an array by `Provider.index`.
    @Test func providerIndexIsItsPositionAmongAllCases() {
        #expect(Provider.allCases.map(\.index) == Array(Provider.allCases.indices))
    }

    @Test func lookupIgnoresCaseAndSurroundingSpaces() throws {
        let t = try table()
        #expect(t.bucket(provider: .azure, region: "WestEurope").bucket == "eu-*")
        #expect(t.bucket(provider: .aws, region: " US-EAST-1 ").bucket == "us-*")
        #expect(t.bucket(provider: .gcp, region: "GLOBAL").bucket == "global")
        #expect(t.bucket(provider: .gcp, region: "GLOBAL").known)
    }

    @Test func prefixesDoNotMatchInsideNames() throws {
        // "us-" must be a prefix, not a substring.
        let r = try table().bucket(provider: .aws, region: "xus-east-1")
        #expect(r.bucket == "other" && !r.known)
    }

    @Test func everyBucketIsOneOfTheSpecBuckets() throws {
        let allowed: Set<String> = ["us-*", "ca-*", "sa-*", "eu-*", "me-*", "af-*", "ap-*", "global", "other"]
        let data = try #require(FileManager.default.contents(atPath: Self.regionsPath))
        let root = try JSONParser().parse([UInt8](data))
        guard case .object(let o) = root, case .object(let providers)? = o["providers"] else {
            Issue.record("regions.json has no providers object")
            return
        }
        #expect(Set(providers.keys) == Set(Provider.allCases.map(\.rawValue)))
        var checked = 0
        for (_, spec) in providers {
            guard case .object(let s) = spec else { continue }
            for section in ["exact", "prefixes"] {
                guard case .object(let map)? = s[section] else { continue }
                for (_, v) in map {
                    guard case .string(let bucket) = v else { Issue.record("non-string bucket"); continue }
                    #expect(allowed.contains(bucket), "\(bucket)")
                    checked += 1
                }
            }
        }
        #expect(checked > 50)
    }

    @Test func longestPrefixWins() throws {
        let json = #"{"providers":{"aws":{"prefixes":{"us-":"us-*","us-gov-":"global"}}}}"#
        let t = try RegionTable(json: Array(json.utf8))
        #expect(t.bucket(provider: .aws, region: "us-gov-west-1").bucket == "global")
        #expect(t.bucket(provider: .aws, region: "us-east-1").bucket == "us-*")
        // A provider without rules knows nothing (except `global`).
        let gcp = t.bucket(provider: .gcp, region: "us-central1")
        #expect(gcp.bucket == "other" && !gcp.known)
    }

    /// Every exact name of the shipped table is found at its own bucket (the names sit in an
    /// open-addressing table: collisions must probe on), and names one byte off are not.
    @Test func everyExactNameIsFoundAndNearMissesAreNot() throws {
        let t = try table()
        let data = try #require(FileManager.default.contents(atPath: Self.regionsPath))
        guard case .object(let o) = try JSONParser().parse([UInt8](data)), case .object(let providers)? = o["providers"] else {
            Issue.record("regions.json has no providers object")
            return
        }
        var checked = 0
        var nearMisses = 0
        for (name, spec) in providers {
            let provider = try #require(Provider(rawValue: name))
            guard case .object(let s) = spec, case .object(let exact)? = s["exact"] else { continue }
            // With prefixes, a near miss can still match one.
            let hasPrefixes = if case .object(let p)? = s["prefixes"] { !p.isEmpty } else { false }
            for (region, value) in exact {
                guard case .string(let bucket) = value else { continue }
                #expect(t.bucket(provider: provider, region: region) == (bucket, true), "\(provider) \(region)")
                checked += 1
                guard !hasPrefixes else { continue }
                for nearMiss in [String(region.dropLast()), region + "x", "x" + region.dropFirst(), region.dropLast() + "x"]
                where nearMiss != region && exact[nearMiss] == nil {
                    #expect(!t.bucket(provider: provider, region: nearMiss).known, "\(provider) \(nearMiss)")
                    nearMisses += 1
                }
            }
        }
        #expect(checked > 60)
        #expect(nearMisses > 200)  // Azure's 70 names, which have no prefixes
    }

    @Test func exactBeatsPrefix() throws {
        let json = #"{"providers":{"aws":{"exact":{"us-east-9":"eu-*"},"prefixes":{"us-":"us-*"}}}}"#
        let t = try RegionTable(json: Array(json.utf8))
        #expect(t.bucket(provider: .aws, region: "us-east-9").bucket == "eu-*")
    }

    @Test func invalidTablesAreRejected() {
        #expect(throws: RegionTable.Invalid.self) { try RegionTable(json: Array("[]".utf8)) }
        #expect(throws: RegionTable.Invalid.self) { try RegionTable(json: Array("{}".utf8)) }
        #expect(throws: RegionTable.Invalid.self) { try RegionTable(json: Array(#"{"providers":{"oracle":{}}}"#.utf8)) }
        #expect(throws: RegionTable.Invalid.self) { try RegionTable(json: Array("not json".utf8)) }
        #expect(throws: RegionTable.Invalid.self) { try RegionTable.load(path: Self.regionsPath + ".missing") }
    }
}
