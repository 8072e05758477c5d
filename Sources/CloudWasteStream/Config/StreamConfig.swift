public import CloudWasteKafka
import CloudWasteSecrets
import CloudWastePostgres
import Foundation

/// Every setting of the daemon: built-in defaults, then `config/cloudwaste-stream.toml` (or
/// `--config FILE`), then environment variables (SPEC §10). Unknown keys are errors.
public struct StreamConfig: Sendable {
    public enum ConsentMode: String, Sendable, CaseIterable { case optOut = "opt_out", optIn = "opt_in" }

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
    /// Writers mostly wait for PostgreSQL, so they are not sized by this process's CPUs (pinned to one
    /// CPU, one writer left PostgreSQL's core 30 % idle: docs/performance.md) but by the machine's.
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
    /// How long the data topics wait, at an assignment, for the privacy requests published
    /// before it to be applied (0: they do not wait).
    public var privacyCatchUpSeconds = 60.0
    /// The graceful period of a stop (SIGTERM): open batches are finished or dropped within it.
    public var shutdownGraceSeconds = 30
    /// How long `run --until-idle` waits for its first partition assignment before it fails.
    public var assignmentTimeoutSeconds = 30.0

    public var windowsEnabled = true
    public var windowGraceHours = 72
    public var windowOutOfOrdernessMinutes = 10
    public var windowIdleTimeoutSeconds = 300
    public var windowRecomputeIntervalMs = 1000

    /// Loopback unless set: the endpoints are for the machine's own monitoring by default.
    public var httpHost = "127.0.0.1"
    /// 0 disables the HTTP server.
    public var httpPort = 8080
    /// A file holding the bearer token that /stats, the status page and /exports require (none:
    /// open). `CLOUDWASTE_HTTP_TOKEN` gives the token itself.
    public var httpTokenFile: String?
    public var httpTokenText: String?

    public var retentionDays = 730
    public var retentionTableDays: [String: Int] = ["dead_letters": 90]
    public var retentionBatchRows = 10_000

    public var exportSchedule: String? = "0 3 * * 1"
    public var retentionSchedule: String? = "30 4 * * *"
    /// Where scheduled exports go: empty for `<state directory>/exports`, a relative path under
    /// the state directory, or an absolute one (`exportRoot` resolves it).
    public var exportDirectory = ""
    public var exportDays = 7
    public var exportFormat = "jsonl"
    /// Scheduled exports are gzipped (as `export --gzip`).
    public var exportGzip = false

    /// The daemon's own files (scheduled exports): systemd's `StateDirectory=` when it runs as a
    /// unit with one, else /var/lib/cloudwaste-stream. Never the working directory, which depends
    /// on how the daemon was started.
    public var stateDirectory = Self.defaultStateDirectory

    static var defaultStateDirectory: String {
        let systemd = ProcessInfo.processInfo.environment["STATE_DIRECTORY"]?.split(separator: ":").first.map(String.init)
        return systemd.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/var/lib/cloudwaste-stream"
    }

    /// The folder that scheduled exports (and `export` without `--out`) are written under, and
    /// that /exports serves: absolute, printed at start.
    public var exportRoot: String {
        if exportDirectory.hasPrefix("/") { return exportDirectory }
        let base = URL(fileURLWithPath: stateDirectory, isDirectory: true)
        return base.appendingPathComponent(exportDirectory.isEmpty ? "exports" : exportDirectory).standardizedFileURL.path
    }

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
        if key.hasPrefix("kafka.properties.") {
            let property = String(key.dropFirst("kafka.properties.".count))
            let text: String
            switch value {
            case .string(let s): text = s
            case .integer(let i): text = String(i)
            case .bool(let b): text = b ? "true" : "false"
            default: throw Invalid("'\(key)' must be a string, number or boolean")
            }
            if property == "bootstrap.servers" { kafkaBootstrapServers = text } else { kafkaProperties[property] = text }
            return
        }
        if key.hasPrefix("retention.tables.") {
            retentionTableDays[String(key.dropFirst("retention.tables.".count))] = try Setting.integer(key, value, 1...36500)
            return
        }
        guard let setting = Self.settings.first(where: { $0.key == key }) else {
            throw Invalid("unknown setting '\(key)' (see config/cloudwaste-stream.toml for the settings)")
        }
        try setting.apply(&self, value)
    }

    mutating func apply(environment env: [String: String]) throws(Invalid) {
        for setting in Self.settings {
            guard let variable = setting.environment, let text = env[variable] else { continue }
            // An empty value leaves the setting as it was, except where empty means something.
            if text.isEmpty && !setting.emptyFromEnvironment { continue }
            try setting.applyText(&self, text, variable)
        }
        if let v = env["CLOUDWASTE_HMAC_KEY"], !v.isEmpty { hmacKeyText = v }
        if let v = env["CLOUDWASTE_HTTP_TOKEN"], !v.isEmpty { httpTokenText = v }
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
        if let httpTokenText { SecretRedactor.register([httpTokenText]) }
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
        if !stateDirectory.hasPrefix("/") {
            throw Invalid("daemon.state_directory / CLOUDWASTE_STATE_DIRECTORY must be an absolute path, not '\(stateDirectory)'")
        }
        if postgresSchema.isEmpty || postgresSchema.utf8.count > 63 { throw Invalid("postgres.schema must be a schema name of 1-63 characters") }
        do { try RetentionCleaner(config: self).validate() } catch { throw Invalid("\(error)") }
        for schedule in [exportSchedule, retentionSchedule].compactMap({ $0 }) {
            do { _ = try CronSchedule(schedule) } catch { throw Invalid("schedule '\(schedule)': \(error)") }
        }
    }

    /// The bearer token of the HTTP endpoints, if one is configured (at least 16 characters).
    public func loadHTTPToken() throws(Invalid) -> String? {
        var token = httpTokenText
        if token == nil, let file = httpTokenFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw Invalid("cannot read the HTTP token file \(file) (http.token_file / CLOUDWASTE_HTTP_TOKEN_FILE)")
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let token else { return nil }
        guard token.count >= 16, !token.contains(where: \.isWhitespace) else {
            throw Invalid("the HTTP token must be at least 16 characters without spaces (e.g. `openssl rand -hex 16`)")
        }
        SecretRedactor.register([token])
        return token
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
