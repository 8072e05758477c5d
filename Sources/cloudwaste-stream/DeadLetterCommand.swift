import ArgumentParser
import CloudWastePostgres
import CloudWasteStream
import Foundation

struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "List, show and re-drive dead letters.",
        subcommands: [List.self, Show.self, Redrive.self])

    /// `topic:partition:offset`
    static func parseSources(_ values: [String]) throws -> [SourcePosition] {
        try values.map { v in
            let parts = v.split(separator: ":")
            guard parts.count >= 3, let offset = Int64(parts.last!), let partition = Int32(parts[parts.count - 2]) else {
                throw UsageFailure("--source takes topic:partition:offset, not '\(v)'")
            }
            return SourcePosition(topic: parts.dropLast(2).joined(separator: ":"), partition: partition, offset: offset)
        }
    }

    static func print(_ entries: [DeadLetterRedrive.Entry]) {
        if entries.isEmpty { Swift.print("no dead letters match"); return }
        for e in entries {
            Swift.print("\(e.source.topic):\(e.source.partition):\(e.source.offset)  \(e.receivedAt)  \(e.payloadBytes) B  \(e.reason)\(e.redrivenAt.map { "  (re-driven \($0))" } ?? "")")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Dead letters, newest first.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Only reasons starting with this, e.g. unknown_provider.") var reason: String?
        @Option(help: "At most this many.") var limit = 100
        func run() async throws {
            try await withExitCodes {
                let config = try options.load()
                guard limit > 0 else { throw UsageFailure("--limit must be positive") }
                let tool = DeadLetterRedrive(db: try PostgresConnection(connectionString: config.postgresURL), config: config)
                DeadLetterCommand.print(try tool.list(reasonPrefix: reason, limit: limit))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter's metadata.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "topic:partition:offset") var source: String
        func run() async throws {
            try await withExitCodes {
                let config = try options.load()
                let tool = DeadLetterRedrive(db: try PostgresConnection(connectionString: config.postgresURL), config: config)
                let entries = try tool.list(sources: try DeadLetterCommand.parseSources([source]), limit: 1)
                guard let e = entries.first else { throw RuntimeFailure("no dead letter at \(source)") }
                Swift.print("source:      \(e.source.topic) partition \(e.source.partition) offset \(e.source.offset)")
                Swift.print("reason:      \(e.reason)")
                Swift.print("received:    \(e.receivedAt)")
                Swift.print("payload:     \(e.payloadBytes) bytes, sha256 \(e.payloadSHA256 ?? "none")")
                Swift.print("re-driven:   \(e.redrivenAt ?? "no")")
                Swift.print("raw bytes:   in topic \(config.deadLetterTopic) (headers cw.source.*)")
            }
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-publish chosen dead letters to their source topic, once.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Re-drive dead letters whose reason starts with this.") var reason: String?
        @Option(help: "Re-drive this one (topic:partition:offset); repeatable.") var source: [String] = []
        @Flag(help: "Also re-drive dead letters that were re-driven before.") var force = false
        func run() async throws {
            try await withExitCodes {
                let config = try options.load()
                guard reason != nil || !source.isEmpty else { throw UsageFailure("choose what to re-drive with --reason or --source") }
                let tool = DeadLetterRedrive(db: try PostgresConnection(connectionString: config.postgresURL), config: config)
                let entries = try tool.list(reasonPrefix: reason, sources: try DeadLetterCommand.parseSources(source),
                                            includeRedriven: force, limit: 1_000_000)
                let (count, missing) = try tool.redrive(entries, force: force)
                Swift.print("re-drove \(count) dead letters to their source topics")
                if !missing.isEmpty {
                    Swift.print("not found in \(config.deadLetterTopic) (expired?): \(missing.map { "\($0.topic):\($0.partition):\($0.offset)" }.joined(separator: ", "))")
                }
            }
        }
    }
}
