import Foundation

/// Region → continent bucket, from `config/regions.json` (data, not code, so a new cloud region is
/// a one-line change).
public struct RegionTable: Sendable {
    public static let unknownBucket = "other"
    public static let globalBucket = "global"
    /// By provider, in `Provider.allCases` order (an array: a record's lookup hashes no enum).
    private var rules: [RegionRules?]

    public struct Invalid: Error, CustomStringConvertible { public var description: String }

    public init(json bytes: [UInt8]) throws(Invalid) {
        guard case .object(let root)? = try? JSONParser().parse(bytes),
              case .object(let providers)? = root["providers"] else {
            throw Invalid(description: "the region table is not a JSON object with a 'providers' object")
        }
        var rules: [Provider: RegionRules] = [:]
        for (name, value) in providers {
            guard let provider = Provider(rawValue: name), case .object(let spec) = value else {
                throw Invalid(description: "the region table names an unknown provider '\(name)'")
            }
            func strings(_ key: String) -> [String: String] {
                guard case .object(let o)? = spec[key] else { return [:] }
                return o.compactMapValues { if case .string(let s) = $0 { s } else { nil } }
            }
            var defaultBucket: String?
            if case .string(let d)? = spec["default"] { defaultBucket = d }
            rules[provider] = RegionRules(defaultBucket: defaultBucket, exact: strings("exact"), prefixes: strings("prefixes"))
        }
        self.rules = Provider.allCases.map { rules[$0] }
    }

    /// Reads the table from `path`, or from `config/regions.json` in the working directory or
    /// beside the executable's package when `path` is nil.
    public static func load(path: String?) throws(Invalid) -> RegionTable {
        let candidates = path.map { [$0] } ?? ConfigLocator.candidates(relative: "config/regions.json")
        for candidate in candidates {
            if let data = FileManager.default.contents(atPath: candidate) {
                return try RegionTable(json: [UInt8](data))
            }
        }
        throw Invalid(description: "region table not found (looked at \(candidates.joined(separator: ", "))): set anonymization.region_table in the config")
    }

    /// The bucket, and whether the region was known.
    public func bucket(provider: Provider, region: String) -> (bucket: String, known: Bool) {
        // Regions normally arrive trimmed and lower-case; only normalize when they do not.
        var r = region.utf8.allSatisfy({ $0 > 0x20 && !($0 >= 65 && $0 <= 90) }) ? region : region.trimmingCharacters(in: .whitespaces).lowercased()
        return r.withUTF8 { name in
            if ShortBytes.equal(name, ShortBytes.of("global")) { return (Self.globalBucket, true) }
            guard let rule = rules[provider.index] else { return (Self.unknownBucket, false) }
            return rule.bucket(name).map { ($0, true) } ?? (Self.unknownBucket, false)
        }
    }
}

/// Finds files of the project (config/, topics/) from the working directory or from the executable
/// (which lives in `.build/<triple>/<config>/` in a checkout).
enum ConfigLocator {
    static func candidates(relative: String) -> [String] {
        var out = [FileManager.default.currentDirectoryPath + "/" + relative]
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            out.append(dir.appendingPathComponent(relative).path)
            dir = dir.deletingLastPathComponent()
        }
        return out
    }
}
