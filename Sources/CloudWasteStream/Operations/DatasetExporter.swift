public import CloudWastePostgres
public import Foundation
public import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `cloudwaste-stream dataset` (SPEC §8): the ML-ready export. One labelled example per
/// ml_training_data row, in three files (train, validation, test) plus a `manifest.json` that is
/// also the dataset's data card.
///
/// - **Label**: the action of the first user action on the same resource_hash with
///   `detected_at ≤ action_at ≤ detected_at + window` (ties: source position), else `none`.
///   Both window edges are inclusive. `hours_to_action` is that action's distance in hours.
/// - **billed_after_detection**: Σ of the resource's latest unblended billed amounts, in the
///   example's currency, over the `window` UTC days that start with the detection day; null when
///   billing reported none of those days (unknown is not zero). `billed_days` says how many it
///   found. Amounts in another currency are never added in.
/// - **Split** by account, so that no account is in two splits:
///   `int(first 8 hex digits of account_hash, 16) mod 100` below `trainPercent` → train, below
///   `trainPercent + validationPercent` → validation, else test.
/// - Streamed with constant memory, one consistent snapshot, each file written as `.partial` and
///   renamed, the manifest last: the protocol of `Exporter`.
public struct DatasetExporter: Sendable {
    public struct Options: Sendable, Equatable {
        public var format: Exporter.Format = .csv
        public var gzip = false
        /// Keep detections of the last N days (nil: all).
        public var days: Int?
        public var labelWindowDays = 30
        public var trainPercent = 80
        public var validationPercent = 10

        public init() {}

        public var testPercent: Int { 100 - trainPercent - validationPercent }
    }

    public enum Split: String, CaseIterable, Sendable { case train, validation, test }

    /// Label values, in data-card order.
    public static let labels = ["deleted", "ignored", "kept", "none"]

    /// The columns of an example: name, type as written, meaning. The SELECT below writes them in
    /// this order; the data card lists them from here.
    public static let columns: [(name: String, type: String, meaning: String)] = [
        ("split", "string", "train, validation or test (by account, see split_rule)"),
        ("scan_hash", "string", "pseudonym of the scan (HMAC-SHA256, 64 hex)"),
        ("resource_hash", "string", "pseudonym of the resource"),
        ("account_hash", "string", "pseudonym of the cloud account; decides the split"),
        ("provider", "string", "aws, azure, gcp or microsoft365"),
        ("region_bucket", "string", "continent bucket of the region (us-*, eu-*, ..., global, other)"),
        ("resource_type", "string", "kind of resource, e.g. ebs_volume"),
        ("scenario", "string", "why the scanner flagged it"),
        ("confidence", "string", "the scanner's confidence: critical, high, medium or low"),
        ("estimated_monthly_cost", "float", "the scanner's monthly estimate, in currency"),
        ("currency", "string", "ISO 4217 code of every amount in the row"),
        ("resource_age_days", "integer or null", "days from creation to detection"),
        ("created_hour_utc", "integer or null", "hour of creation, 0-23 UTC"),
        ("created_dow", "integer or null", "ISO weekday of creation, 1-7"),
        ("metrics", "JSON object", "{metric: {avg, p95, trend}}"),
        ("tag_keys", "JSON array of strings", "tag keys, lower-cased and sorted; never values"),
        ("env_class", "string or null", "prod, staging, dev, test or other from an environment tag"),
        ("has_parent", "integer", "1 when the resource has a parent (a snapshot's volume, ...), else 0"),
        ("detected_at", "timestamp (UTC)", "when the scan saw the resource"),
        ("key_id", "string", "first 8 hex of SHA-256 of the pseudonym key"),
        ("label", "string", "deleted, ignored, kept or none (see label_definition)"),
        ("hours_to_action", "float or null", "hours from detection to the labelling action"),
        ("billed_after_detection", "float or null", "unblended billed amount after detection, in currency (null: unknown)"),
        ("billed_days", "integer", "billed days found for billed_after_detection"),
    ]

    let logger: Logger
    let isCancelled: @Sendable () -> Bool

    public init(logger: Logger = Logger(label: "cloudwaste.dataset"), isCancelled: @escaping @Sendable () -> Bool = { false }) {
        self.logger = logger
        self.isCancelled = isCancelled
    }

    /// Checks the options and the output folder before touching PostgreSQL (bad usage: exit 2).
    public static func validate(_ options: Options, outputDirectory: URL) throws(ExportError) {
        if let days = options.days, !(1...36_500).contains(days) {
            throw ExportError(usage: "--days must be a whole number of days between 1 and 36500, not \(days)")
        }
        guard (1...3650).contains(options.labelWindowDays) else {
            throw ExportError(usage: "--label-window-days must be between 1 and 3650, not \(options.labelWindowDays)")
        }
        guard (0...100).contains(options.trainPercent), (0...100).contains(options.validationPercent), options.testPercent >= 0 else {
            throw ExportError(usage: "--train-percent and --validation-percent must be 0-100 and add up to at most 100 (test gets the rest), not \(options.trainPercent) and \(options.validationPercent)")
        }
        try Exporter.prepareOutputDirectory(outputDirectory)
    }

    /// The split of an account pseudonym (the same rule as the SQL, for tests and tools).
    public static func split(accountHash: String, _ options: Options) -> Split {
        let bucket = Int(UInt32(accountHash.prefix(8), radix: 16) ?? 0) % 100
        return bucket < options.trainPercent ? .train : bucket < options.trainPercent + options.validationPercent ? .validation : .test
    }

    public func run(db: PostgresConnection, schema: String, options: Options, outputDirectory: URL) throws -> DatasetManifest {
        try Self.validate(options, outputDirectory: outputDirectory)
        let s = PostgresIdentifier(schema)
        var written: [String] = []
        do {
            try db.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            try db.query("SET LOCAL TimeZone = 'UTC'; SET LOCAL client_encoding = 'UTF8'")
            let now = try db.transactionStart()
            let from = options.days.map { Timestamp(micros: now.micros - Int64($0) * 86_400_000_000) }
            let storage = try PseudonymStorage.of(table: "ml_training_data", column: "account_hash", schema: schema, in: db)
            let examples = Self.examplesQuery(schema: s, options: options, from: from, pseudonyms: storage)

            // The data card's figures, from the same snapshot as the files (and checked against them).
            let counts = try db.query("SELECT split, label, count(*) FROM (\(examples)) e GROUP BY 1, 2")
            var perSplitLabel: [String: [String: Int]] = [:]
            for (split, label, count) in try counts.decodeRows(as: (String, String, Int).self) {
                perSplitLabel[split, default: [:]][label] = count
            }
            let summary = try db.query("""
                SELECT (extract(epoch FROM min(detected_at)) * 1000000)::bigint, (extract(epoch FROM max(detected_at)) * 1000000)::bigint,
                       string_agg(DISTINCT key_id, ',' ORDER BY key_id), string_agg(DISTINCT currency, ',' ORDER BY currency)
                  FROM \(s).ml_training_data m WHERE \(Self.detectionFilter(from: from))
                """)

            var files: [DatasetManifest.File] = []
            for split in Split.allCases {
                let name = "\(split.rawValue).\(options.format.fileExtension)\(options.gzip ? ".gz" : "")"
                let finalPath = outputDirectory.appendingPathComponent(name).path
                let expected = perSplitLabel[split.rawValue, default: [:]].values.reduce(0, +)
                // In key order, so that the same rows give the same file (and checksum).
                let select: PostgresQuery = "SELECT * FROM (\(examples)) e WHERE split = \(literal: split.rawValue) ORDER BY scan_hash COLLATE \"C\", resource_hash COLLATE \"C\""
                let (rows, bytes, sha256) = try Exporter(logger: logger, isCancelled: isCancelled).writeFile(
                    db: db, copy: Exporter.copyStatement(select, format: options.format), format: options.format, gzip: options.gzip,
                    finalPath: finalPath, what: "\(split.rawValue) split", expectedRows: expected)
                written.append(finalPath)
                files.append(DatasetManifest.File(split: split.rawValue, file: name, rows: rows, bytes: bytes, sha256: sha256,
                                                  labels: Dictionary(uniqueKeysWithValues: Self.labels.map { ($0, perSplitLabel[split.rawValue]?[$0] ?? 0) })))
                logger.info("dataset \(split.rawValue): \(rows) examples, \(bytes) bytes → \(name)")
            }
            try db.query("COMMIT")
            let (minMicros, maxMicros, keyIds, currencies) = try summary.decodeRow(0, as: (Int64?, Int64?, String?, String?).self)
            let manifest = DatasetManifest(
                createdAt: .now(), schema: schema, options: options, snapshotAt: now, detectedFrom: from, files: files,
                minDetectedAt: minMicros.map { Timestamp(micros: $0) }, maxDetectedAt: maxMicros.map { Timestamp(micros: $0) },
                keyIds: keyIds.map { $0.split(separator: ",").map(String.init) } ?? [],
                currencies: currencies.map { $0.split(separator: ",").map(String.init) } ?? [])
            try Exporter.writeManifest(manifest.jsonBytes, into: outputDirectory)
            return manifest
        } catch {
            if db.isConnected { _ = try? db.query("ROLLBACK") }
            for path in written { unlink(path) }
            throw error
        }
    }

    static func detectionFilter(from: Timestamp?) -> PostgresQuery {
        from.map { "m.detected_at >= \(literal: $0.postgresText)::timestamptz" } ?? "true"
    }

    /// One row per detection with its label, billed amount and split, in `columns` order. Both
    /// lookups are index probes: user_action_patterns (resource_hash, action_at) and
    /// resource_billed_costs' key (resource_hash, usage_date, cost_type).
    static func examplesQuery(schema s: PostgresIdentifier, options: Options, from: Timestamp?, pseudonyms: PseudonymStorage) -> PostgresQuery {
        let window = options.labelWindowDays
        let train = options.trainPercent, validation = options.trainPercent + options.validationPercent
        return """
            SELECT CASE WHEN m.bucket < \(literal: train) THEN 'train' WHEN m.bucket < \(literal: validation) THEN 'validation' ELSE 'test' END AS split,
                   \(pseudonyms.hex("m.scan_hash")) AS scan_hash, \(pseudonyms.hex("m.resource_hash")) AS resource_hash,
                   \(pseudonyms.hex("m.account_hash")) AS account_hash, m.provider, m.region_bucket, m.resource_type, m.scenario,
                   m.confidence, m.estimated_monthly_cost, m.currency, m.resource_age_days, m.created_hour_utc, m.created_dow,
                   m.metrics, to_jsonb(m.tag_keys) AS tag_keys, m.env_class, (m.parent_hash IS NOT NULL)::int AS has_parent,
                   m.detected_at, m.key_id, COALESCE(a.action, 'none') AS label,
                   extract(epoch FROM a.action_at - m.detected_at)::float8 / 3600 AS hours_to_action,
                   b.amount::float8 AS billed_after_detection, b.days AS billed_days
              FROM (SELECT t.*, (\(pseudonyms.first32Bits("t.account_hash")) % 100)::int AS bucket
                      FROM \(s).ml_training_data t) m
              LEFT JOIN LATERAL (
                   SELECT u.action, u.action_at FROM \(s).user_action_patterns u
                    WHERE u.resource_hash = m.resource_hash AND u.account_hash = m.account_hash AND u.action_at >= m.detected_at
                      AND u.action_at <= m.detected_at + make_interval(days => \(literal: window))
                    ORDER BY u.action_at, u.source_partition, u.source_offset LIMIT 1) a ON true
              CROSS JOIN LATERAL (
                   SELECT sum(c.amount::numeric)::numeric(18,4) AS amount, count(*)::int AS days FROM \(s).resource_billed_costs c
                    WHERE c.resource_hash = m.resource_hash AND c.account_hash = m.account_hash AND c.cost_type = 'unblended'
                      AND c.currency = m.currency
                      AND c.usage_date >= (m.detected_at AT TIME ZONE 'UTC')::date
                      AND c.usage_date < (m.detected_at AT TIME ZONE 'UTC')::date + \(literal: window)) b
             WHERE \(detectionFilter(from: from))
            """
    }
}
