import ArgumentParser
import CloudWasteStream
import Foundation

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Rebuild the tables from the topics into a shadow schema, verify, then swap them in.")

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Rebuild from the earliest offsets (the default).") var fromBeginning = false
    @Option(help: "Rebuild from the first records at or after this RFC 3339 time.") var from: String?
    @Option(parsing: .upToNextOption, help: "Only these input topics (short names, e.g. scan-resources user-actions).") var topics: [String] = []
    @Option(help: "Rebuild under a new HMAC key (key rotation); the file holds 32+ bytes as hex or base64.") var newKeyFile: String?
    @Flag(help: "Swap without asking.") var yes = false

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let key: HMACKey
            if let newKeyFile {
                do { key = try HMACKey.load(file: newKeyFile) } catch { throw UsageFailure("\(error)") }
            } else {
                key = try loadKey(config)
            }
            let regions = try loadRegions(config)
            guard !(fromBeginning && from != nil) else { throw UsageFailure("choose --from-beginning or --from, not both") }
            var start = Replayer.Start.beginning
            if let from {
                guard let t = Timestamp.parseRFC3339(from) else { throw UsageFailure("--from must be an RFC 3339 time such as 2026-06-01T00:00:00Z") }
                start = .timestamp(t)
            }
            var selected = InputTopic.allCases
            if !topics.isEmpty {
                selected = try topics.flatMap { $0.split(separator: ",") }.map { name in
                    guard let t = InputTopic(rawValue: String(name)) else {
                        throw UsageFailure("unknown topic '\(name)': use \(InputTopic.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return t
                }
                if selected.contains(.scanResources) != selected.contains(.userActions) {
                    throw UsageFailure("cost trends need both scan-resources and user-actions: rebuild them together")
                }
            }
            if !yes && isatty(0) == 0 { throw UsageFailure("replay swaps tables at the end: pass --yes when running without a terminal") }
            let replayer = Replayer(config: config, key: key, regions: regions, logger: makeLogger("cloudwaste.replay"))
            print("rebuilding \(selected.map(\.rawValue).joined(separator: ", ")) into schema \(replayer.shadowSchema) under key \(key.keyId)…")
            let report = try replayer.rebuild(from: start, topics: selected) { print($0) }
            print("rebuilt \(report.records) records in \(String(format: "%.1f", report.seconds)) s")
            print("table                          live   rebuilt")
            for table in Replayer.swappedTables {
                let c = report.rowCounts[table]!
                print("\(table.padding(toLength: 28, withPad: " ", startingAt: 0)) \(String(c.live).leftPadded(7)) \(String(c.rebuilt).leftPadded(9))")
            }
            if !yes {
                print("swap the rebuilt tables in? [y/N] ", terminator: "")
                guard readLine()?.lowercased() == "y" else {
                    print("not swapped; the rebuild stays in \(replayer.shadowSchema) (run replay again to resume or swap)")
                    return
                }
            }
            let old = try replayer.swap()
            print("swapped in; the previous tables are in schema \(old) (drop it when satisfied)")
        }
    }
}
