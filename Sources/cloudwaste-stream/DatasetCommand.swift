import ArgumentParser
import CloudWastePostgres
import CloudWasteStream
import Foundation

struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Write the ML-ready dataset: one labelled example per detection, split train/validation/test by account.",
        discussion: """
            label = the action of the first user action on the same resource within --label-window-days of the \
            detection (else none); billed_after_detection = the unblended billed amount of the resource over the \
            window's days from the detection day, in the example's currency (null when unknown). The split is by \
            account pseudonym (int(first 8 hex digits, 16) mod 100), so no account is in two splits. Files are \
            streamed with constant memory, written as NAME.partial and renamed; manifest.json (the data card) comes last.
            """)

    @OptionGroup var options: GlobalOptions
    @Option(help: "Output folder, created if missing; must not already hold a manifest.json.") var out: String
    @Option(help: "csv or jsonl.") var format = "csv"
    @Flag(help: "Compress each file with gzip (.gz).") var gzip = false
    @Option(help: "Keep detections of the last N days (default: all).") var days: Int?
    @Option(help: "Days after a detection in which a user action labels it.") var labelWindowDays = 30
    @Option(help: "Percent of the account buckets that go to train.") var trainPercent = 80
    @Option(help: "Percent of the account buckets that go to validation (test gets the rest).") var validationPercent = 10

    func run() async throws {
        try await withExitCodes {
            let config = try options.load()
            guard let format = Exporter.Format(rawValue: format) else { throw UsageFailure("--format must be jsonl or csv, not '\(format)'") }
            var dataset = DatasetExporter.Options()
            dataset.format = format
            dataset.gzip = gzip
            dataset.days = days
            dataset.labelWindowDays = labelWindowDays
            dataset.trainPercent = trainPercent
            dataset.validationPercent = validationPercent
            let directory = URL(fileURLWithPath: out)
            do { try DatasetExporter.validate(dataset, outputDirectory: directory) } catch { throw UsageFailure("\(error)") }
            let db = try PostgresConnection(connectionString: config.postgresURL)
            let manifest: DatasetManifest
            do {
                manifest = try DatasetExporter(logger: makeLogger("cloudwaste.dataset")).run(
                    db: db, schema: config.postgresSchema, options: dataset, outputDirectory: directory)
            } catch let e as ExportError {
                throw e.isUsage ? UsageFailure(e.description) as any Error : RuntimeFailure(e.description)
            }
            for f in manifest.files {
                let labels = DatasetExporter.labels.map { "\($0) \(f.labels[$0] ?? 0)" }.joined(separator: ", ")
                print("\(f.file)  \(f.rows) examples (\(labels))  \(f.bytes) bytes  sha256 \(f.sha256)")
            }
            let peak = ProcessMemory.peakResidentBytes.map { ", peak RSS \($0 / 1_048_576) MiB" } ?? ""
            print("dataset: \(manifest.totalRows) examples into \(directory.path) (data card: \(Exporter.manifestName))\(peak)")
        }
    }
}
