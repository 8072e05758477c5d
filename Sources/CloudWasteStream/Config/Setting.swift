/// One setting of `StreamConfig`: its key in the config file, the environment variable that
/// overrides it (SPEC §10) if any, and how a value is checked and stored. The settings are a
/// table (`StreamConfig.settings`), so a key, its type, its range and its variable are written
/// once; unknown keys, wrong types and values out of range are errors that name the key.
struct Setting: Sendable {
    typealias Invalid = StreamConfig.Invalid
    let key: String
    let environment: String?
    /// Whether an empty environment value is taken (e.g. an empty topic prefix) or ignored.
    let emptyFromEnvironment: Bool
    let apply: @Sendable (inout StreamConfig, TOMLSubset.Value) throws(Invalid) -> Void
    let applyText: @Sendable (inout StreamConfig, String, String) throws(Invalid) -> Void

    static func text(_ key: String, _ path: any WritableKeyPath<StreamConfig, String> & Sendable, env: String? = nil,
                     emptyFromEnvironment: Bool = false, allowed: [String]? = nil) -> Setting {
        Setting(key: key, environment: env, emptyFromEnvironment: emptyFromEnvironment, apply: { c, v throws(Invalid) in
            c[keyPath: path] = try checked(try string(key, v), key, allowed)
        }, applyText: { c, t, name throws(Invalid) in
            c[keyPath: path] = try checked(t, name, allowed)
        })
    }

    /// A string where "" means "none".
    static func optionalText(_ key: String, _ path: any WritableKeyPath<StreamConfig, String?> & Sendable, env: String? = nil) -> Setting {
        Setting(key: key, environment: env, emptyFromEnvironment: false, apply: { c, v throws(Invalid) in
            let s = try string(key, v)
            c[keyPath: path] = s.isEmpty ? nil : s
        }, applyText: { c, t, _ in c[keyPath: path] = t.isEmpty ? nil : t })
    }

    static func integer(_ key: String, _ path: any WritableKeyPath<StreamConfig, Int> & Sendable, _ range: ClosedRange<Int>,
                        env: String? = nil, hint: String = "") -> Setting {
        Setting(key: key, environment: env, emptyFromEnvironment: false, apply: { c, v throws(Invalid) in
            c[keyPath: path] = try integer(key, v, range)
        }, applyText: { c, t, name throws(Invalid) in
            guard let i = Int(t), range.contains(i) else {
                throw Invalid("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)\(hint), not '\(t)'")
            }
            c[keyPath: path] = i
        })
    }

    /// Whole seconds in the file, kept as a Double.
    static func seconds(_ key: String, _ path: any WritableKeyPath<StreamConfig, Double> & Sendable, _ range: ClosedRange<Int>) -> Setting {
        Setting(key: key, environment: nil, emptyFromEnvironment: false, apply: { c, v throws(Invalid) in
            c[keyPath: path] = Double(try integer(key, v, range))
        }, applyText: { _, _, _ in })
    }

    static func flag(_ key: String, _ path: any WritableKeyPath<StreamConfig, Bool> & Sendable) -> Setting {
        Setting(key: key, environment: nil, emptyFromEnvironment: false, apply: { c, v throws(Invalid) in
            guard case .bool(let b) = v else { throw Invalid("'\(key)' must be true or false") }
            c[keyPath: path] = b
        }, applyText: { _, _, _ in })
    }

    static func choice<E: RawRepresentable & Sendable>(_ key: String, _ path: any WritableKeyPath<StreamConfig, E> & Sendable) -> Setting
        where E.RawValue == String, E: CaseIterable {
        Setting(key: key, environment: nil, emptyFromEnvironment: false, apply: { c, v throws(Invalid) in
            let s = try string(key, v)
            guard let e = E(rawValue: s) else {
                throw Invalid("'\(key)' must be \(E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")), not \"\(s)\"")
            }
            c[keyPath: path] = e
        }, applyText: { _, _, _ in })
    }

    static func string(_ key: String, _ v: TOMLSubset.Value) throws(Invalid) -> String {
        guard case .string(let s) = v else { throw Invalid("'\(key)' must be a string") }
        return s
    }

    static func integer(_ key: String, _ v: TOMLSubset.Value, _ range: ClosedRange<Int>) throws(Invalid) -> Int {
        guard case .integer(let i) = v else { throw Invalid("'\(key)' must be a whole number") }
        guard range.contains(i) else { throw Invalid("'\(key)' must be between \(range.lowerBound) and \(range.upperBound), not \(i)") }
        return i
    }

    private static func checked(_ s: String, _ name: String, _ allowed: [String]?) throws(Invalid) -> String {
        if let allowed, !allowed.contains(s) {
            throw Invalid("'\(name)' must be \(allowed.map { "\"\($0)\"" }.joined(separator: " or ")), not \"\(s)\"")
        }
        return s
    }
}

extension StreamConfig {
    /// Every setting of the config file (the shipped config/cloudwaste-stream.toml documents them).
    static let settings: [Setting] = [
        .text("daemon.state_directory", \.stateDirectory, env: "CLOUDWASTE_STATE_DIRECTORY"),
        .text("kafka.bootstrap_servers", \.kafkaBootstrapServers, env: "CLOUDWASTE_KAFKA_BOOTSTRAP"),
        .text("kafka.group_id", \.groupId, env: "CLOUDWASTE_GROUP_ID"),
        .text("kafka.topic_prefix", \.topicPrefix, env: "CLOUDWASTE_TOPIC_PREFIX", emptyFromEnvironment: true),
        .text("postgres.url", \.postgresURL, env: "CLOUDWASTE_POSTGRES_URL"),
        .text("postgres.schema", \.postgresSchema),
        .optionalText("anonymization.key_file", \.hmacKeyFile, env: "CLOUDWASTE_HMAC_KEY_FILE"),
        .optionalText("anonymization.region_table", \.regionTablePath),
        .choice("anonymization.consent_mode", \.consentMode),
        .integer("pipeline.writers", \.writers, 0...64),
        .integer("pipeline.batch_max_records", \.batchMaxRecords, 1...100_000),
        .integer("pipeline.batch_max_rows", \.batchMaxRows, 1...10_000_000),
        .integer("pipeline.batch_max_bytes", \.batchMaxBytes, 65_536...1 << 30),
        .integer("pipeline.batch_linger_ms", \.batchLingerMs, 0...60_000),
        .integer("pipeline.max_payload_bytes", \.maxPayloadBytes, 1024...64 * 1_048_576),
        .integer("pipeline.max_future_skew_hours", \.maxFutureSkewHours, 0...8760),
        .seconds("pipeline.retry_max_backoff_seconds", \.retryMaxBackoffSeconds, 1...3600),
        .integer("pipeline.max_queued_batches", \.maxQueuedBatches, 1...16),
        .seconds("pipeline.partition_stall_seconds", \.partitionStallSeconds, 1...3600),
        .seconds("pipeline.privacy_catch_up_seconds", \.privacyCatchUpSeconds, 0...3600),
        .integer("pipeline.shutdown_grace_seconds", \.shutdownGraceSeconds, 10...3600),
        .seconds("pipeline.assignment_timeout_seconds", \.assignmentTimeoutSeconds, 1...3600),
        .flag("windows.enabled", \.windowsEnabled),
        .integer("windows.grace_hours", \.windowGraceHours, 0...24 * 366),
        .integer("windows.out_of_orderness_minutes", \.windowOutOfOrdernessMinutes, 0...10_080),
        .integer("windows.idle_timeout_seconds", \.windowIdleTimeoutSeconds, 1...86_400 * 7),
        .integer("windows.recompute_interval_ms", \.windowRecomputeIntervalMs, 0...60_000),
        .text("http.host", \.httpHost),
        .integer("http.port", \.httpPort, 0...65535, env: "CLOUDWASTE_HTTP_PORT", hint: " (0 disables HTTP)"),
        .optionalText("http.token_file", \.httpTokenFile, env: "CLOUDWASTE_HTTP_TOKEN_FILE"),
        .integer("retention.days", \.retentionDays, 1...36500),
        .integer("retention.batch_rows", \.retentionBatchRows, 100...1_000_000),
        .optionalText("schedules.export", \.exportSchedule),
        .optionalText("schedules.retention", \.retentionSchedule),
        .text("schedules.export_directory", \.exportDirectory),
        .flag("schedules.export_gzip", \.exportGzip),
        .integer("schedules.export_days", \.exportDays, 1...36500),
        .text("schedules.export_format", \.exportFormat, allowed: ["jsonl", "csv"]),
    ]
}
