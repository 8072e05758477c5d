public import CloudWasteKafka
import CloudWasteSecrets
import CloudWastePostgres
import Foundation

/// Every setting of the daemon: built-in defaults, then `config/cloudwaste-stream.toml` (or
/// `--config FILE`), then environment variables (SPEC §10). Unknown keys are errors.
public struct StreamConfig: Sendable {
    public enum ConsentMode: String, Sendable { case optOut = "opt_out", optIn = "opt_in" }

    public var kafkaBootstrapServers = "localhost:9092"
    public var groupId = "cloudwaste-stream"
    public var topicPrefix = "cloudwaste."
    /// Any librdkafka property, passed through unchanged (TLS, SASL, tuning).
    public var kafkaProperties: [String: String] = [:]

    public var postgresURL = "postgresql://localhost:5432/cloudwaste"
    public var postgresSchema = "public"

    public var hmacKeyFile: String?
    /// Hex or base64 key text from `CLOUDWASTE_HMAC_KEY`; never logged.
    public var hmacKeyText: String?
    public var regionTablePath: String?
    public var consentMode = ConsentMode.optOut

    /// Writer threads, each with its own PostgreSQL connection and a disjoint set of partitions;
    /// 0: one per core (up to 8).
    public var writers = 0
    public var writerCount: Int { writers > 0 ? writers : min(8, max(1, ProcessInfo.processInfo.activeProcessorCount)) }
    public var batchMaxRecords = 5000
    /// Rows over all tables (one metric-samples record can carry thousands of points).
    public var batchMaxRows = 50_000
    /// Encoded bytes of a batch (plus the raw bytes of its dead letters).
    public var batchMaxBytes = 16 << 20
    /// How long an open batch waits for more records while its writer is idle.
    public var batchLingerMs = 10
    public var maxPayloadBytes = 1_048_576
    public var maxFutureSkewHours = 24
    public var retryMaxBackoffSeconds = 30.0
    /// Sealed batches waiting per writer, besides the one being written.
    public var maxQueuedBatches = 1
    public var partitionStallSeconds = 15.0
    /// The graceful period of a stop (SIGTERM): open batches are finished or dropped within it.
    public var shutdownGraceSeconds = 30
    /// How long `run --until-idle` waits for its first partition assignment before it fails.
    public var assignmentTimeoutSeconds = 30.0

    public var windowsEnabled = true
    public var windowGraceHours = 72
    public var windowOutOfOrdernessMinutes = 10
    public var windowIdleTimeoutSeconds = 300
    public var windowRecomputeIntervalMs = 1000

    public var httpHost = "0.0.0.0"
    /// 0 disables the HTTP server.
    public var httpPort = 8080

    public var retentionDays = 730
    public var retentionTableDays: [String: Int] = ["dead_letters": 90]
    public var retentionBatchRows = 10_000

    public var exportSchedule: String? = "0 3 * * 1"
    public var retentionSchedule: String? = "30 4 * * *"
    public var exportDirectory = "exports"
    public var exportDays = 7
    public var exportFormat = "jsonl"

    public init() {}

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public var deadLetterTopic: String { "\(topicPrefix)dead-letters.v1" }
    public var costTrendTopic: String { "\(topicPrefix)cost-trends.v1" }
    public func topicName(_ topic: InputTopic) -> String { topic.name(prefix: topicPrefix) }

    /// librdkafka settings for every client: bootstrap servers plus the operator's properties.
    public var kafkaConfig: KafkaConfig {
        var c = KafkaConfig(kafkaProperties)
        c["bootstrap.servers"] = kafkaBootstrapServers
        return c
    }

    /// Where a partition starts when PostgreSQL holds no offset for it yet: librdkafka's
    /// `auto.offset.reset` (earliest unless set to latest/largest/end), resolved here rather than by
    /// Kafka's committed offsets, which are advisory (SPEC §5) and need a coordinator round trip that
    /// can stall after a lost session.
    public var startOffsetWithoutHistory: Int64 {
        switch kafkaProperties["auto.offset.reset"]?.lowercased() {
        case "latest", "largest", "end": KafkaOffset.end
        default: KafkaOffset.beginning
        }
    }

    /// Loads `path`, or the default file if present, then applies `environment`.
    public static func load(path: String?, environment: [String: String]? = nil) throws(Invalid) -> StreamConfig {
        var config = StreamConfig()
        let file = path ?? "config/cloudwaste-stream.toml"
        if let data = FileManager.default.contents(atPath: file) {
            try config.apply(toml: String(decoding: data, as: UTF8.self), file: file)
        } else if path != nil {
            throw Invalid("cannot read config file \(file): check the path given to --config")
        }
        try config.apply(environment: environment ?? ProcessInfo.processInfo.environment)
        try config.validate()
        return config
    }

    mutating func apply(toml text: String, file: String) throws(Invalid) {
        let entries: [(key: String, value: TOMLSubset.Value, line: Int)]
        do { entries = try TOMLSubset.parse(text) } catch { throw Invalid("\(file) \(error)") }
        for entry in entries {
            do {
                try set(entry.key, entry.value)
            } catch {
                throw Invalid("\(file) line \(entry.line): \(error.description)")
            }
        }
    }

    private mutating func set(_ key: String, _ value: TOMLSubset.Value) throws(Invalid) {
        func string() throws(Invalid) -> String {
            guard case .string(let s) = value else { throw Invalid("'\(key)' must be a string") }
            return s
        }
        func int(_ range: ClosedRange<Int>) throws(Invalid) -> Int {
            guard case .integer(let i) = value else { throw Invalid("'\(key)' must be a whole number") }
            guard range.contains(i) else { throw Invalid("'\(key)' must be between \(range.lowerBound) and \(range.upperBound), not \(i)") }
            return i
        }
        func bool() throws(Invalid) -> Bool {
            guard case .bool(let b) = value else { throw Invalid("'\(key)' must be true or false") }
            return b
        }
        func optionalString() throws(Invalid) -> String? {
            let s = try string()
            return s.isEmpty ? nil : s
        }
        if key.hasPrefix("kafka.properties.") {
            let property = String(key.dropFirst("kafka.properties.".count))
            if property == "bootstrap.servers" {
                kafkaBootstrapServers = try string()
                return
            }
            switch value {
            case .string(let s): kafkaProperties[property] = s
            case .integer(let i): kafkaProperties[property] = String(i)
            case .bool(let b): kafkaProperties[property] = b ? "true" : "false"
            default: throw Invalid("'\(key)' must be a string, number or boolean")
            }
            return
        }
        if key.hasPrefix("retention.tables.") {
            retentionTableDays[String(key.dropFirst("retention.tables.".count))] = try int(1...36500)
            return
        }
        switch key {
        case "kafka.bootstrap_servers": kafkaBootstrapServers = try string()
        case "kafka.group_id": groupId = try string()
        case "kafka.topic_prefix": topicPrefix = try string()
        case "postgres.url": postgresURL = try string()
        case "postgres.schema": postgresSchema = try string()
        case "anonymization.key_file": hmacKeyFile = try optionalString()
        case "anonymization.region_table": regionTablePath = try optionalString()
        case "anonymization.consent_mode":
            guard let mode = ConsentMode(rawValue: try string()) else { throw Invalid("'\(key)' must be \"opt_out\" or \"opt_in\"") }
            consentMode = mode
        case "pipeline.writers": writers = try int(0...64)
        case "pipeline.batch_max_records": batchMaxRecords = try int(1...100_000)
        case "pipeline.batch_max_rows": batchMaxRows = try int(1...10_000_000)
        case "pipeline.batch_max_bytes": batchMaxBytes = try int(65_536...1 << 30)
        case "pipeline.shutdown_grace_seconds": shutdownGraceSeconds = try int(10...3600)
        case "pipeline.assignment_timeout_seconds": assignmentTimeoutSeconds = Double(try int(1...3600))
        case "pipeline.batch_linger_ms": batchLingerMs = try int(0...60_000)
        case "pipeline.max_payload_bytes": maxPayloadBytes = try int(1024...64 * 1_048_576)
        case "pipeline.max_future_skew_hours": maxFutureSkewHours = try int(0...8760)
        case "pipeline.retry_max_backoff_seconds": retryMaxBackoffSeconds = Double(try int(1...3600))
        case "pipeline.max_queued_batches": maxQueuedBatches = try int(1...16)
        case "pipeline.partition_stall_seconds": partitionStallSeconds = Double(try int(1...3600))
        case "windows.enabled": windowsEnabled = try bool()
        case "windows.grace_hours": windowGraceHours = try int(0...24 * 366)
        case "windows.out_of_orderness_minutes": windowOutOfOrdernessMinutes = try int(0...10_080)
        case "windows.idle_timeout_seconds": windowIdleTimeoutSeconds = try int(1...86_400 * 7)
        case "windows.recompute_interval_ms": windowRecomputeIntervalMs = try int(0...60_000)
        case "http.host": httpHost = try string()
        case "http.port": httpPort = try int(0...65535)
        case "retention.days": retentionDays = try int(1...36500)
        case "retention.batch_rows": retentionBatchRows = try int(100...1_000_000)
        case "schedules.export": exportSchedule = try optionalString()
        case "schedules.retention": retentionSchedule = try optionalString()
        case "schedules.export_directory": exportDirectory = try string()
        case "schedules.export_days": exportDays = try int(1...36500)
        case "schedules.export_format": exportFormat = try string()
        default: throw Invalid("unknown setting '\(key)' (see config/cloudwaste-stream.toml for the settings)")
        }
    }

    mutating func apply(environment env: [String: String]) throws(Invalid) {
        if let v = env["CLOUDWASTE_KAFKA_BOOTSTRAP"], !v.isEmpty { kafkaBootstrapServers = v }
        if let v = env["CLOUDWASTE_GROUP_ID"], !v.isEmpty { groupId = v }
        if let v = env["CLOUDWASTE_POSTGRES_URL"], !v.isEmpty { postgresURL = v }
        if let v = env["CLOUDWASTE_HMAC_KEY"], !v.isEmpty { hmacKeyText = v }
        if let v = env["CLOUDWASTE_HMAC_KEY_FILE"], !v.isEmpty { hmacKeyFile = v }
        if let v = env["CLOUDWASTE_TOPIC_PREFIX"] { topicPrefix = v }
        if let v = env["CLOUDWASTE_HTTP_PORT"], !v.isEmpty {
            guard let port = Int(v), (0...65535).contains(port) else {
                throw Invalid("CLOUDWASTE_HTTP_PORT must be a port number (0 disables HTTP), not '\(v)'")
            }
            httpPort = port
        }
        for (name, value) in env where name.hasPrefix("CLOUDWASTE_KAFKA_") && name != "CLOUDWASTE_KAFKA_BOOTSTRAP" {
            let property = name.dropFirst("CLOUDWASTE_KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
            guard !property.isEmpty else { continue }
            if property == "bootstrap.servers" {
                if env["CLOUDWASTE_KAFKA_BOOTSTRAP"] == nil { kafkaBootstrapServers = value }
                continue
            }
            kafkaProperties[property] = value
        }
    }

    static let topicCharacters = Set(Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-".utf8))

    /// Tells the redaction step what must never be shown: the database password, secret Kafka
    /// properties, the HMAC key text.
    public func registerSecrets() {
        SecretRedactor.register(connectionString: postgresURL)
        SecretRedactor.register(kafkaProperties.filter { KafkaConfig.isSecret($0.key) }.map(\.value))
        if let hmacKeyText { SecretRedactor.register([hmacKeyText]) }
    }

    func validate() throws(Invalid) {
        registerSecrets()
        do { try kafkaConfig.validate() } catch { throw Invalid("\(error.message) (kafka.properties or CLOUDWASTE_KAFKA_*)") }
        do { try PostgresConnection.checkSyntax(postgresURL) } catch {
            throw Invalid("postgres.url / CLOUDWASTE_POSTGRES_URL is not a valid libpq connection string: \(error.message)")
        }
        // Kafka topic names: up to 249 of [A-Za-z0-9._-].
        let longest = ([deadLetterTopic, costTrendTopic] + InputTopic.allCases.map(topicName)).map(\.utf8.count).max() ?? 0
        if !topicPrefix.utf8.allSatisfy({ Self.topicCharacters.contains($0) }) || longest > 249 {
            throw Invalid("kafka.topic_prefix / CLOUDWASTE_TOPIC_PREFIX may only hold letters, digits, '.', '_' and '-' (topics up to 249 characters), not '\(topicPrefix)'")
        }
        if kafkaBootstrapServers.isEmpty { throw Invalid("kafka.bootstrap_servers is empty: set it or CLOUDWASTE_KAFKA_BOOTSTRAP") }
        if groupId.isEmpty { throw Invalid("kafka.group_id is empty: set it or CLOUDWASTE_GROUP_ID") }
        if !["jsonl", "csv"].contains(exportFormat) { throw Invalid("schedules.export_format must be \"jsonl\" or \"csv\"") }
        if postgresSchema.isEmpty || postgresSchema.utf8.count > 63 { throw Invalid("postgres.schema must be a schema name of 1-63 characters") }
        do { try RetentionCleaner(config: self).validate() } catch { throw Invalid("\(error)") }
        for schedule in [exportSchedule, retentionSchedule].compactMap({ $0 }) {
            do { _ = try CronSchedule(schedule) } catch { throw Invalid("schedule '\(schedule)': \(error)") }
        }
    }

    /// The HMAC key from `CLOUDWASTE_HMAC_KEY` or the key file; an error says how to provide one.
    public func loadKey() throws(Invalid) -> HMACKey {
        do {
            if let text = hmacKeyText { return try HMACKey(text: text) }
            if let file = hmacKeyFile { return try HMACKey.load(file: file) }
        } catch {
            throw Invalid(error.description)
        }
        throw Invalid("no HMAC key: set CLOUDWASTE_HMAC_KEY (hex, e.g. from `openssl rand -hex 32`) or CLOUDWASTE_HMAC_KEY_FILE / anonymization.key_file")
    }
}
