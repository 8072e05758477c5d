import ArgumentParser
import CloudWastePostgres
import CloudWasteSecrets
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
                      ExportCommand.self, DatasetCommand.self, RetentionCommand.self, ReplayCommand.self, MockBrokerCommand.self]
    )

    /// SPEC §10's exit codes for everything, the argument parser's errors included: 0 success
    /// (and --help), 2 bad usage or configuration, 1 runtime failure.
    static func main() async {
        do {
            try ProcessLogging.bootstrap(environment: ProcessInfo.processInfo.environment)
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)  // the one-line message is already on stderr
        } catch let e as UsageFailure {
            FileHandle.standardError.write(Data("cloudwaste-stream: \(SecretRedactor.redact(e.description))\n".utf8))
            Foundation.exit(2)
        } catch {
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))  // --help
                Foundation.exit(0)
            }
            // The parser's own message and usage line, but SPEC §10's exit code.
            FileHandle.standardError.write(Data("cloudwaste-stream: \(SecretRedactor.redact(fullMessage(for: error)))\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// Options every subcommand shares (SPEC §10).
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default: config/cloudwaste-stream.toml if present).")
    var config: String?

    /// The configuration, validated, with its secrets registered for redaction (by `validate`).
    func load() throws -> StreamConfig {
        do {
            return try StreamConfig.load(path: config)
        } catch {
            throw UsageFailure(error.description)
        }
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
        FileHandle.standardError.write(Data("cloudwaste-stream: \(SecretRedactor.redact(e.description))\n".utf8))
        throw ExitCode(2)
    } catch let e as ExitCode {
        throw e
    } catch let e as PostgresError where e.kind == .connection && e.message.hasPrefix("invalid ") {
        // libpq refuses an option value before connecting: configuration, not an outage.
        FileHandle.standardError.write(Data("cloudwaste-stream: \(e.message): check postgres.url / CLOUDWASTE_POSTGRES_URL\n".utf8))
        throw ExitCode(2)
    } catch {
        FileHandle.standardError.write(Data("cloudwaste-stream: \(SecretRedactor.redact("\(error)"))\n".utf8))
        throw ExitCode(1)
    }
}

func makeLogger(_ label: String) -> Logger { Logger(label: label) }

func loadRegions(_ config: StreamConfig) throws -> RegionTable {
    do { return try RegionTable.load(path: config.regionTablePath) } catch { throw UsageFailure(error.description) }
}

func loadKey(_ config: StreamConfig) throws -> HMACKey {
    do { return try config.loadKey() } catch { throw UsageFailure(error.description) }
}
