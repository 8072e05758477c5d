import ArgumentParser
import CloudWastePostgres
import CloudWasteStream
import Foundation

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the last N days of the ML tables as JSON Lines or CSV (optionally gzip) plus manifest.json.",
        discussion: """
            Rows are streamed from PostgreSQL with constant memory. Each file is written as NAME.partial and \
            renamed when complete; manifest.json (files, rows, bytes, SHA-256, time range, key ids) is \
            written last, so a folder without it is an unfinished export.
            """)

    @OptionGroup var options: GlobalOptions
    @Option(help: "Rows whose time column falls in the last N days (default: schedules.export_days).") var days: Int?
    @Option(help: "jsonl or csv (default: schedules.export_format).") var format: String?
    @Flag(help: "Compress each file with gzip (.gz).") var gzip = false
    @Option(parsing: .upToNextOption, help: "Tables to export, space- or comma-separated (default: all seven ML tables).")
    var tables: [String] = []
    @Option(help: "Output folder, created if missing; must not already hold a manifest.json (default: schedules.export_directory/<UTC time>).")
    var out: String?

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let days = self.days ?? config.exportDays
            let formatText = format ?? config.exportFormat
            guard let format = Exporter.Format(rawValue: formatText) else {
                throw UsageFailure("--format must be jsonl or csv, not '\(formatText)'")
            }
            let tables = self.tables.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let directory = URL(fileURLWithPath: out ?? URL(fileURLWithPath: config.exportRoot)
                .appendingPathComponent(Scheduler.folderName(for: .now())).path)
            // Bad usage fails before connecting, so it is exit code 2 even with PostgreSQL down.
            do { try Exporter.validate(days: days, tables: tables, outputDirectory: directory) } catch { throw UsageFailure("\(error)") }
            let db = try PostgresConnection(connectionString: config.postgresURL)
            let manifest: ExportManifest
            do {
                manifest = try Exporter(logger: makeLogger("cloudwaste.export")).run(
                    db: db, schema: config.postgresSchema, days: days, format: format, gzip: gzip, tables: tables, outputDirectory: directory)
            } catch let e as ExportError {
                throw e.isUsage ? UsageFailure(e.description) as any Error : RuntimeFailure(e.description)
            }
            for f in manifest.files {
                print("\(f.file)  \(f.rows) rows  \(f.bytes) bytes  sha256 \(f.sha256)")
            }
            print("exported \(manifest.totalRows) rows from \(manifest.from) to \(manifest.to) into \(directory.path) (manifest: \(Exporter.manifestName))")
        }
    }
}

struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Delete rows older than the configured age (retention.days, retention.tables.<table>), in small batches.")

    @OptionGroup var options: GlobalOptions
    @Flag(help: "Only count the rows that would be deleted.") var dryRun = false

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            let cleaner = RetentionCleaner(config: config)
            do { try cleaner.validate() } catch { throw UsageFailure("\(error)") }
            let db = try PostgresConnection(connectionString: config.postgresURL)
            let results = dryRun ? try cleaner.count(db) : try cleaner.run(db)
            print("table                          days  older than                   \(dryRun ? "would delete" : "deleted")")
            for r in results {
                print(r.table.padding(toLength: 30, withPad: " ", startingAt: 0) + " " + String(r.days).padding(toLength: 5, withPad: " ", startingAt: 0)
                      + " " + r.cutoff.description.padding(toLength: 28, withPad: " ", startingAt: 0) + " " + String(r.deletedRows))
            }
            let total = results.reduce(0) { $0 + $1.deletedRows }
            print(dryRun ? "\(total) rows would be deleted (nothing was deleted)" : "deleted \(total) rows")
        }
    }
}
