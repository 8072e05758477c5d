import ArgumentParser
import CloudWasteStream
import Foundation
import Logging

@main
struct CloudWasteStreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloudwaste-stream",
        abstract: "Kafka → anonymize → PostgreSQL, exactly once, for CloudWaste's ML tables.",
        subcommands: [RunCommand.self, DemoCommand.self, MigrateCommand.self, GenerateCommand.self,
                      StatsCommand.self, ForgetCommand.self, DeadLetterCommand.self, BenchCommand.self, BenchDecodeCommand.self, BenchUpsertCommand.self,
                      ExportCommand.self, RetentionCommand.self, ReplayCommand.self, MockBrokerCommand.self]
    )
}

/// Options every subcommand shares (SPEC §10).
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default: config/cloudwaste-stream.toml if present).")
    var config: String?

    func load() throws -> StreamConfig {
        do { return try StreamConfig.load(path: config) } catch { throw UsageFailure(error.description) }
    }
}

/// Bad usage or configuration: exit code 2, one line on stderr.
struct UsageFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A failure while running: exit code 1, one line on stderr.
struct RuntimeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs `body`, mapping failures onto SPEC §10's exit codes with a one-line message.
func withExitCodes(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as UsageFailure {
        FileHandle.standardError.write(Data("cloudwaste-stream: \(e.description)\n".utf8))
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("cloudwaste-stream: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

func makeLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    let level = ProcessInfo.processInfo.environment["CLOUDWASTE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
    logger.logLevel = level ?? .info
    return logger
}

func loadRegions(_ config: StreamConfig) throws -> RegionTable {
    do { return try RegionTable.load(path: config.regionTablePath) } catch { throw UsageFailure(error.description) }
}

func loadKey(_ config: StreamConfig) throws -> HMACKey {
    do { return try config.loadKey() } catch { throw UsageFailure(error.description) }
}
