import Foundation

/// `manifest.json` of a dataset, which is also its data card: what each file holds (rows, bytes,
/// SHA-256, rows per label), the features with their types, how labels and splits were made, the
/// time range and the key ids. Written last, so a folder without one is unfinished.
public struct DatasetManifest: Sendable, Equatable, Encodable {
    public struct File: Sendable, Equatable, Encodable {
        public var split: String
        public var file: String
        public var rows: Int
        public var bytes: Int64
        public var sha256: String
        /// Rows per label value (every label listed, zeros included).
        public var labels: [String: Int]
    }

    public var createdAt: Timestamp
    public var schema: String
    public var options: DatasetExporter.Options
    /// The instant of the snapshot the files were read in.
    public var snapshotAt: Timestamp
    /// `--days`: detections from this instant on (nil: all).
    public var detectedFrom: Timestamp?
    public var files: [File]
    public var minDetectedAt: Timestamp?
    public var maxDetectedAt: Timestamp?
    public var keyIds: [String]
    public var currencies: [String]

    public var totalRows: Int { files.reduce(0) { $0 + $1.rows } }

    /// Rows per label over every split.
    public var rowsPerLabel: [String: Int] {
        var out: [String: Int] = [:]
        for f in files { out.merge(f.labels, uniquingKeysWith: +) }
        return out
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(1, forKey: .manifestVersion)
        try c.encode("dataset", forKey: .kind)
        try c.encode(createdAt.description, forKey: .createdAt)
        try c.encode(schema, forKey: .schema)
        try c.encode(options.format.rawValue, forKey: .format)
        try c.encode(options.gzip, forKey: .gzip)
        try c.encode(totalRows, forKey: .totalRows)
        try c.encode(files, forKey: .files)
        try c.encode(DataCard(manifest: self), forKey: .dataCard)
    }

    enum CodingKeys: String, CodingKey { case manifestVersion, kind, createdAt, schema, format, gzip, totalRows, files, dataCard }

    /// What a data scientist needs to use the files without reading this program.
    struct DataCard: Encodable {
        struct Feature: Encodable { var name: String; var type: String; var description: String }
        struct SplitRule: Encodable {
            var rule: String
            var trainPercent: Int
            var validationPercent: Int
            var testPercent: Int
        }

        var description = "One example per detection (ml_training_data row) of wasted cloud resources, pseudonymized "
            + "in flight (HMAC-SHA256 pseudonyms, region buckets, tag keys without values). Amounts are in the row's "
            + "currency and never converted or added across currencies."
        var rowsPerSplit: [String: Int]
        var rowsPerLabel: [String: Int]
        var rowsPerSplitAndLabel: [String: [String: Int]]
        var features: [Feature]
        var label: [String: String]
        var billedAfterDetection: String
        var split: SplitRule
        var timeRange: [String: String?]
        var keyIds: [String]
        var currencies: [String]

        init(manifest m: DatasetManifest) {
            let window = m.options.labelWindowDays
            rowsPerSplit = Dictionary(uniqueKeysWithValues: m.files.map { ($0.split, $0.rows) })
            rowsPerLabel = m.rowsPerLabel
            rowsPerSplitAndLabel = Dictionary(uniqueKeysWithValues: m.files.map { ($0.split, $0.labels) })
            features = DatasetExporter.columns.map { Feature(name: $0.name, type: $0.type, description: $0.meaning) }
            label = [
                "column": "label",
                "values": DatasetExporter.labels.joined(separator: ", "),
                "definition": "the action (deleted, ignored, kept) of the first user action on the same resource_hash with "
                    + "detected_at <= action_at <= detected_at + \(window) days (both edges included; ties broken by source "
                    + "position), else none",
                "label_window_days": String(window),
            ]
            billedAfterDetection = "sum of the latest unblended billed amounts of the resource, in the row's currency, for the "
                + "\(window) UTC days starting with the detection day; null when billing reported none of those days"
            split = SplitRule(
                rule: "int(first 8 hex digits of account_hash, 16) mod 100 < \(m.options.trainPercent) → train, "
                    + "< \(m.options.trainPercent + m.options.validationPercent) → validation, else test; no account is in two splits",
                trainPercent: m.options.trainPercent, validationPercent: m.options.validationPercent, testPercent: m.options.testPercent)
            timeRange = [
                "detected_from": m.detectedFrom?.description, "snapshot_at": m.snapshotAt.description,
                "min_detected_at": m.minDetectedAt?.description, "max_detected_at": m.maxDetectedAt?.description,
            ]
            keyIds = m.keyIds
            currencies = m.currencies
        }
    }

    public var jsonBytes: [UInt8] { JSONCoding.bytes(self) }
}
