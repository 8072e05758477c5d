import CloudWasteKafka
import Foundation
import Testing
@testable import CloudWasteStream

/// `StreamConfig` from TOML plus environment overrides (SPEC §10), and the cron schedules.
@Suite struct ConfigTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Writes `toml` to a fresh temporary file and loads it with `environment`.
    private func load(_ toml: String, environment: [String: String] = [:]) throws(StreamConfig.Invalid) -> StreamConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-config-\(UUID().uuidString).toml").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(toml.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try StreamConfig.load(path: path, environment: environment)
    }

    /// The error text of loading `toml`, or nil if it loaded.
    private func loadError(_ toml: String, environment: [String: String] = [:]) -> String? {
        do {
            _ = try load(toml, environment: environment)
            return nil
        } catch {
            return error.description
        }
    }

    static let fullTOML = """
        # A complete configuration.
        [daemon]
        state_directory = "/srv/cloudwaste"

        [kafka]
        bootstrap_servers = "broker-1:9092,broker-2:9092"
        group_id = 'ml-collector'          # literal string
        topic_prefix = "acme."

        [kafka.properties]
        "security.protocol" = "SASL_SSL"
        "sasl.mechanisms" = "SCRAM-SHA-512"
        "fetch.max.bytes" = 1_048_576
        "enable.auto.commit" = false
        queued.min.messages = "1000"

        [postgres]
        url = "postgresql://pg.internal:5432/cw?sslmode=require#x"
        schema = "ml"

        [anonymization]
        key_file = "/etc/cloudwaste/hmac.key"
        region_table = ""
        consent_mode = "opt_in"

        [pipeline]
        batch_max_records = 2000
        batch_linger_ms = 50
        max_payload_bytes = 2097152
        max_future_skew_hours = 12
        retry_max_backoff_seconds = 10
        max_queued_batches = 4

        [windows]
        enabled = false
        grace_hours = 24
        out_of_orderness_minutes = 5
        idle_timeout_seconds = 60

        [http]
        host = "127.0.0.1"
        port = 9090

        [retention]
        days = 365
        batch_rows = 500
        [retention.tables]
        dead_letters = 30
        cloudwatch_metrics_history = 14

        [schedules]
        export = ""
        retention = "*/15 * * * *"
        export_directory = "/var/exports"
        export_days = 30
        export_format = "csv"
        export_gzip = true
        """

    // MARK: - Loading TOML

    @Test func loadsEverySection() throws {
        let c = try load(Self.fullTOML)
        #expect(c.kafkaBootstrapServers == "broker-1:9092,broker-2:9092")
        #expect(c.groupId == "ml-collector")
        #expect(c.topicPrefix == "acme.")
        #expect(c.topicName(.scanResources) == "acme.scan-resources.v1")
        #expect(c.deadLetterTopic == "acme.dead-letters.v1")
        #expect(c.costTrendTopic == "acme.cost-trends.v1")
        #expect(c.postgresURL == "postgresql://pg.internal:5432/cw?sslmode=require#x")
        #expect(c.postgresSchema == "ml")
        #expect(c.hmacKeyFile == "/etc/cloudwaste/hmac.key")
        #expect(c.regionTablePath == nil)  // "" means the default
        #expect(c.consentMode == .optIn)
        #expect(c.batchMaxRecords == 2000)
        #expect(c.batchLingerMs == 50)
        #expect(c.maxPayloadBytes == 2_097_152)
        #expect(c.maxFutureSkewHours == 12)
        #expect(c.retryMaxBackoffSeconds == 10)
        #expect(c.maxQueuedBatches == 4)
        #expect(c.windowsEnabled == false)
        #expect(c.windowGraceHours == 24)
        #expect(c.windowOutOfOrdernessMinutes == 5)
        #expect(c.windowIdleTimeoutSeconds == 60)
        #expect(c.httpHost == "127.0.0.1")
        #expect(c.httpPort == 9090)
        #expect(c.retentionDays == 365)
        #expect(c.retentionBatchRows == 500)
        #expect(c.retentionTableDays == ["dead_letters": 30, "cloudwatch_metrics_history": 14])
        #expect(c.exportSchedule == nil)  // "" disables
        #expect(c.retentionSchedule == "*/15 * * * *")
        #expect(c.exportDirectory == "/var/exports")
        #expect(c.exportRoot == "/var/exports")
        #expect(c.exportDays == 30)
        #expect(c.exportFormat == "csv")
        #expect(c.exportGzip)
        #expect(c.stateDirectory == "/srv/cloudwaste")
    }

    /// Scheduled exports go under the state directory unless an absolute folder is given, never
    /// under the working directory.
    @Test func exportsGoUnderTheStateDirectory() throws {
        let defaults = try load("")
        #expect(defaults.stateDirectory == "/var/lib/cloudwaste-stream" || ProcessInfo.processInfo.environment["STATE_DIRECTORY"] != nil)
        #expect(defaults.exportRoot == defaults.stateDirectory + "/exports")
        #expect(!defaults.exportGzip)
        let relative = try load("[schedules]\nexport_directory = \"weekly/ml\"", environment: ["CLOUDWASTE_STATE_DIRECTORY": "/data/cw"])
        #expect(relative.stateDirectory == "/data/cw")
        #expect(relative.exportRoot == "/data/cw/weekly/ml")
        #expect(try load("[daemon]\nstate_directory = \"/x/\"").exportRoot == "/x/exports")
        #expect(throws: StreamConfig.Invalid.self) { try load("[daemon]\nstate_directory = \"state\"") }
        #expect(throws: StreamConfig.Invalid.self) { try load("", environment: ["CLOUDWASTE_STATE_DIRECTORY": "relative/dir"]) }
    }

    @Test func quotedKeysUnderKafkaPropertiesPassThrough() throws {
        let c = try load(Self.fullTOML)
        #expect(c.kafkaProperties == [
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "fetch.max.bytes": "1048576",
            "enable.auto.commit": "false",
            "queued.min.messages": "1000",
        ])
        let kafka = c.kafkaConfig
        #expect(kafka["security.protocol"] == "SASL_SSL")
        #expect(kafka["bootstrap.servers"] == "broker-1:9092,broker-2:9092")
    }

    @Test func emptyFileGivesDefaults() throws {
        let c = try load("# nothing here\n\n")
        let d = StreamConfig()
        #expect(c.kafkaBootstrapServers == "localhost:9092" && d.kafkaBootstrapServers == "localhost:9092")
        #expect(c.groupId == "cloudwaste-stream")
        #expect(c.topicPrefix == "cloudwaste.")
        #expect(c.topicName(.userActions) == "cloudwaste.user-actions.v1")
        #expect(c.httpPort == 8080)
        #expect(c.postgresSchema == "public")
        #expect(c.consentMode == .optOut)
        #expect(c.kafkaProperties.isEmpty)
        #expect(c.hmacKeyText == nil && c.hmacKeyFile == nil)
        #expect(c.exportSchedule == "0 3 * * 1")
    }

    @Test func indentationAndTrailingSpaces() throws {
        let c = try load("[http]\n  port = 9191   \n\thost = \"::1\"\t# comment\n")
        #expect(c.httpPort == 9191)
        #expect(c.httpHost == "::1")
    }

    @Test func windowsLineEndings() throws {
        let c = try load("[http]\r\nport = 9191\r\nhost = \"::1\"\r\n")
        let typo = loadError("[kafka]\r\nbootstrap = \"x\"\r\n")
        #expect(c.httpPort == 9191)
        #expect(c.httpHost == "::1")
        #expect(typo?.contains("kafka.bootstrap") == true)
    }

    @Test func stringEscapes() throws {
        let c = try load(#"""
            [postgres]
            url = "host=a password=\"p\\q\" dbname=x"
            """#)
        #expect(c.postgresURL == #"host=a password="p\q" dbname=x"#)
    }

    // MARK: - Environment overrides

    @Test func environmentOverridesTheFile() throws {
        let env = [
            "CLOUDWASTE_KAFKA_BOOTSTRAP": "kafka-a:9093",
            "CLOUDWASTE_GROUP_ID": "group-from-env",
            "CLOUDWASTE_POSTGRES_URL": "postgresql://env-host/db",
            "CLOUDWASTE_HTTP_PORT": "0",
            "CLOUDWASTE_TOPIC_PREFIX": "staging.",
            "CLOUDWASTE_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CLOUDWASTE_KAFKA_SASL_USERNAME": "svc-cloudwaste",
            "CLOUDWASTE_HMAC_KEY": String(repeating: "ab", count: 32),
            "CLOUDWASTE_HMAC_KEY_FILE": "/run/secrets/key",
            "UNRELATED": "x",
        ]
        let c = try load(Self.fullTOML, environment: env)
        #expect(c.kafkaBootstrapServers == "kafka-a:9093")
        #expect(c.kafkaConfig["bootstrap.servers"] == "kafka-a:9093")
        #expect(c.groupId == "group-from-env")
        #expect(c.postgresURL == "postgresql://env-host/db")
        #expect(c.httpPort == 0)
        #expect(c.topicPrefix == "staging.")
        #expect(c.topicName(.metricSamples) == "staging.metric-samples.v1")
        #expect(c.kafkaProperties["security.protocol"] == "SSL")  // the file said SASL_SSL
        #expect(c.kafkaProperties["sasl.username"] == "svc-cloudwaste")
        #expect(c.kafkaProperties["sasl.mechanisms"] == "SCRAM-SHA-512")  // untouched
        #expect(c.kafkaProperties["bootstrap"] == nil)  // CLOUDWASTE_KAFKA_BOOTSTRAP is not a property
        #expect(c.hmacKeyText == String(repeating: "ab", count: 32))
        #expect(c.hmacKeyFile == "/run/secrets/key")
        // Other settings keep the file's values.
        #expect(c.postgresSchema == "ml")
        #expect(c.batchMaxRecords == 2000)
    }

    @Test func environmentOverridesWithoutAFile() throws {
        let c = try load("", environment: ["CLOUDWASTE_HTTP_PORT": "18080", "CLOUDWASTE_KAFKA_SASL_MECHANISMS": "PLAIN"])
        #expect(c.httpPort == 18080)
        #expect(c.kafkaProperties == ["sasl.mechanisms": "PLAIN"])
    }

    @Test func emptyEnvironmentValuesDoNotClearSettings() throws {
        let c = try load(Self.fullTOML, environment: [
            "CLOUDWASTE_KAFKA_BOOTSTRAP": "", "CLOUDWASTE_GROUP_ID": "", "CLOUDWASTE_POSTGRES_URL": "", "CLOUDWASTE_HTTP_PORT": "",
        ])
        #expect(c.kafkaBootstrapServers == "broker-1:9092,broker-2:9092")
        #expect(c.groupId == "ml-collector")
        #expect(c.postgresURL == "postgresql://pg.internal:5432/cw?sslmode=require#x")
        #expect(c.httpPort == 9090)
    }

    @Test(arguments: ["abc", "70000", "-1", "80 80", "8080x"])
    func badPortInEnvironmentIsAnError(_ port: String) {
        let error = loadError("", environment: ["CLOUDWASTE_HTTP_PORT": port])
        #expect(error?.contains("CLOUDWASTE_HTTP_PORT") == true, "\(error ?? "no error")")
    }

    // MARK: - Errors that name the line

    @Test func unknownKeyNamesTheLineAndKey() throws {
        let error = try #require(loadError("[kafka]\ngroup_id = \"g\"\nbootstrap = \"x\"\n"))
        #expect(error.contains("line 3"))
        #expect(error.contains("kafka.bootstrap"))
        #expect(error.contains("unknown"))
    }

    @Test func unknownSectionNamesTheLine() throws {
        let error = try #require(loadError("\n[kafak]\nbootstrap_servers = \"x\"\n"))
        #expect(error.contains("line 3"))
        #expect(error.contains("kafak.bootstrap_servers"))
    }

    @Test func wrongTypeNamesTheLine() throws {
        let port = try #require(loadError("[http]\nhost = \"h\"\n\nport = \"8080\"\n"))
        #expect(port.contains("line 4"))
        #expect(port.contains("http.port"))
        let enabled = try #require(loadError("[windows]\nenabled = \"yes\"\n"))
        #expect(enabled.contains("line 2") && enabled.contains("windows.enabled"))
        let group = try #require(loadError("[kafka]\ngroup_id = 5\n"))
        #expect(group.contains("line 2") && group.contains("kafka.group_id"))
        let float = try #require(loadError("[pipeline]\nbatch_max_records = 1.5\n"))
        #expect(float.contains("line 2") && float.contains("pipeline.batch_max_records"))
    }

    @Test func outOfRangeNamesTheLine() throws {
        let error = try #require(loadError("[http]\nport = 70000\n"))
        #expect(error.contains("line 2") && error.contains("70000"))
        let mode = try #require(loadError("[anonymization]\nconsent_mode = \"maybe\"\n"))
        #expect(mode.contains("line 2") && mode.contains("consent_mode"))
    }

    @Test func duplicateKeyNamesTheLine() throws {
        let same = try #require(loadError("[http]\nport = 1\nport = 2\n"))
        #expect(same.contains("line 3"))
        #expect(same.contains("http.port"))
        // The same key again under a repeated table header.
        let repeated = try #require(loadError("[http]\nport = 1\n[kafka]\ngroup_id = \"a\"\n[http]\nport = 2\n"))
        #expect(repeated.contains("line 6"))
        // A quoted property set twice.
        let property = try #require(loadError("[kafka.properties]\n\"a.b\" = \"1\"\na.b = \"2\"\n"))
        #expect(property.contains("line 3"))
    }

    @Test func unterminatedStringNamesTheLine() throws {
        let basic = try #require(loadError("[kafka]\ngroup_id = \"abc\n"))
        #expect(basic.contains("line 2"))
        #expect(basic.contains("unterminated"))
        let literal = try #require(loadError("[kafka]\n\ngroup_id = 'abc\n"))
        #expect(literal.contains("line 3") && literal.contains("unterminated"))
        let key = try #require(loadError("[kafka.properties]\n\"security.protocol = \"SSL\"\n"))
        #expect(key.contains("line 2"))
    }

    @Test(arguments: [
        ("[http\nport = 1\n", 1),
        ("[http]\nport 1\n", 2),
        ("[http]\nport = \n", 2),
        ("[http]\nport = 1 2\n", 2),
        ("[http]\nhost = bare\n", 2),
        ("[http]\nhost = \"a\" trailing\n", 2),
        ("[kafka]\n\n\ngroup_id = \"a\\q\"\n", 4),
        ("= 1\n", 1),
    ])
    func syntaxErrorsNameTheLine(_ toml: String, _ line: Int) {
        let error = loadError(toml)
        #expect(error?.contains("line \(line)") == true, "\(toml.debugDescription): \(error ?? "no error")")
    }

    @Test func errorsNameTheFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cw-named-\(UUID().uuidString).toml").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("[http]\nport = \"x\"\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try StreamConfig.load(path: path, environment: [:])
            Issue.record("loaded")
        } catch {
            #expect(error.description.contains(path))
        }
    }

    @Test func validationErrors() {
        #expect(loadError("[schedules]\nexport_format = \"xml\"\n")?.contains("export_format") == true)
        #expect(loadError("[schedules]\nexport = \"every monday\"\n")?.contains("every monday") == true)
        #expect(loadError("[postgres]\nschema = \"\"\n")?.contains("schema") == true)
        #expect(loadError("[kafka]\nbootstrap_servers = \"\"\n")?.contains("CLOUDWASTE_KAFKA_BOOTSTRAP") == true)
        #expect(loadError("[kafka]\ngroup_id = \"\"\n")?.contains("CLOUDWASTE_GROUP_ID") == true)
    }

    @Test func missingConfigFileIsAnError() {
        do {
            _ = try StreamConfig.load(path: "/nonexistent/cloudwaste-\(UUID().uuidString).toml", environment: [:])
            Issue.record("a missing --config file was accepted")
        } catch {
            #expect(error.description.contains("/nonexistent/cloudwaste-"))
        }
    }

    // MARK: - Keys

    @Test func loadKeyWithoutAnyKeyNamesTheVariable() throws {
        let c = try load("")
        do {
            _ = try c.loadKey()
            Issue.record("a key appeared from nowhere")
        } catch {
            #expect(error.description.contains("CLOUDWASTE_HMAC_KEY"))
        }
    }

    @Test func loadKeyFromEnvironmentAndFile() throws {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        let fromEnv = try load("", environment: ["CLOUDWASTE_HMAC_KEY": hex]).loadKey()
        #expect(fromEnv.keyId == "630dcd29")

        let keyPath = FileManager.default.temporaryDirectory.appendingPathComponent("cw-key-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: keyPath, contents: Data("base64:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: keyPath) }
        let fromFile = try load("[anonymization]\nkey_file = \"\(keyPath)\"\n").loadKey()
        #expect(fromFile.keyId == "630dcd29")

        // The environment's key wins over the file.
        let other = (0..<32).map { String(format: "%02x", ($0 * 37 + 11) % 256) }.joined()
        let both = try load("[anonymization]\nkey_file = \"\(keyPath)\"\n", environment: ["CLOUDWASTE_HMAC_KEY": other]).loadKey()
        #expect(both.hex == other)
    }

    @Test func loadKeyErrorsDoNotLeakTheKey() throws {
        let shortKey = "0123456789abcdef0123456789abcdef"
        let c = try load("", environment: ["CLOUDWASTE_HMAC_KEY": shortKey])
        do {
            _ = try c.loadKey()
            Issue.record("a 16-byte key was accepted")
        } catch {
            #expect(!error.description.contains(shortKey))
        }
        let missing = try load("", environment: ["CLOUDWASTE_HMAC_KEY_FILE": "/nonexistent/key"])
        #expect(throws: StreamConfig.Invalid.self) { try missing.loadKey() }
    }

    // MARK: - The shipped file

    @Test func shippedConfigLoadsAndMatchesTheDefaults() throws {
        let path = Self.packageRoot.appendingPathComponent("config/cloudwaste-stream.toml").path
        guard FileManager.default.fileExists(atPath: path) else { return }
        let c = try StreamConfig.load(path: path, environment: [:])
        // The file says that every value in it is the built-in default.
        let d = StreamConfig()
        #expect(c.kafkaBootstrapServers == d.kafkaBootstrapServers)
        #expect(c.groupId == d.groupId)
        #expect(c.topicPrefix == d.topicPrefix)
        #expect(c.kafkaProperties == d.kafkaProperties)
        #expect(c.postgresURL == d.postgresURL)
        #expect(c.postgresSchema == d.postgresSchema)
        #expect(c.hmacKeyFile == d.hmacKeyFile)
        #expect(c.regionTablePath == d.regionTablePath)
        #expect(c.consentMode == d.consentMode)
        #expect(c.batchMaxRecords == d.batchMaxRecords)
        #expect(c.batchLingerMs == d.batchLingerMs)
        #expect(c.maxPayloadBytes == d.maxPayloadBytes)
        #expect(c.maxFutureSkewHours == d.maxFutureSkewHours)
        #expect(c.retryMaxBackoffSeconds == d.retryMaxBackoffSeconds)
        #expect(c.maxQueuedBatches == d.maxQueuedBatches)
        #expect(c.windowsEnabled == d.windowsEnabled)
        #expect(c.windowGraceHours == d.windowGraceHours)
        #expect(c.windowOutOfOrdernessMinutes == d.windowOutOfOrdernessMinutes)
        #expect(c.windowIdleTimeoutSeconds == d.windowIdleTimeoutSeconds)
        #expect(c.httpHost == d.httpHost)
        #expect(c.httpPort == d.httpPort)
        #expect(c.retentionDays == d.retentionDays)
        #expect(c.retentionTableDays == d.retentionTableDays)
        #expect(c.retentionBatchRows == d.retentionBatchRows)
        #expect(c.exportSchedule == d.exportSchedule)
        #expect(c.retentionSchedule == d.retentionSchedule)
        #expect(c.exportDirectory == d.exportDirectory)
        #expect(c.exportDays == d.exportDays)
        #expect(c.exportFormat == d.exportFormat)
        #expect(c.exportGzip == d.exportGzip)
        #expect(c.stateDirectory == d.stateDirectory)
    }
}

/// Five-field cron expressions in UTC.
@Suite struct CronScheduleTests {
    private func t(_ text: String) -> Timestamp { Timestamp.parseRFC3339(text)! }

    @Test func weeklyMondayAtThree() throws {
        let cron = try CronSchedule("0 3 * * 1")
        #expect(cron.matches(t("2026-11-30T03:00:00Z")))    // Monday
        #expect(cron.matches(t("2026-11-30T03:00:59.9Z")))  // the whole minute
        #expect(!cron.matches(t("2026-11-30T03:01:00Z")))
        #expect(!cron.matches(t("2026-11-30T02:59:59Z")))
        #expect(!cron.matches(t("2026-11-30T04:00:00Z")))
        #expect(!cron.matches(t("2026-12-01T03:00:00Z")))   // Tuesday
        #expect(!cron.matches(t("2026-11-29T03:00:00Z")))   // Sunday
        #expect(cron.matches(t("2026-12-07T03:00:00Z")))    // next Monday
        // UTC, not the offset's local time: Monday 03:00 UTC is 05:00 at +02:00.
        #expect(cron.matches(t("2026-11-30T05:00:00+02:00")))
        #expect(!cron.matches(t("2026-11-30T03:00:00+02:00")))
    }

    @Test func everyFifteenMinutes() throws {
        let cron = try CronSchedule("*/15 * * * *")
        for minute in 0..<60 {
            let m = minute < 10 ? "0\(minute)" : "\(minute)"
            #expect(cron.matches(t("2026-03-14T10:\(m):00Z")) == (minute % 15 == 0), "minute \(minute)")
        }
    }

    @Test func rangesListsAndSteps() throws {
        let workHours = try CronSchedule("0 9-17 * * 1-5")
        #expect(workHours.matches(t("2026-11-30T09:00:00Z")))
        #expect(workHours.matches(t("2026-12-04T17:00:00Z")))  // Friday
        #expect(!workHours.matches(t("2026-12-04T18:00:00Z")))
        #expect(!workHours.matches(t("2026-12-05T12:00:00Z")))  // Saturday

        let list = try CronSchedule("5,35 0 1,15 * *")
        #expect(list.matches(t("2026-03-15T00:35:00Z")))
        #expect(!list.matches(t("2026-03-16T00:35:00Z")))
        #expect(!list.matches(t("2026-03-15T00:36:00Z")))

        let steppedRange = try CronSchedule("10-40/10 * * * *")
        #expect(steppedRange.matches(t("2026-03-15T00:30:00Z")))
        #expect(!steppedRange.matches(t("2026-03-15T00:50:00Z")))
        #expect(!steppedRange.matches(t("2026-03-15T00:00:00Z")))

        let yearly = try CronSchedule("0 0 1 1 *")
        #expect(yearly.matches(t("2027-01-01T00:00:00Z")))
        #expect(!yearly.matches(t("2027-02-01T00:00:00Z")))
    }

    @Test func sundayIsZeroOrSeven() throws {
        let zero = try CronSchedule("0 0 * * 0")
        let seven = try CronSchedule("0 0 * * 7")
        #expect(zero == seven)
        #expect(zero.matches(t("2026-11-29T00:00:00Z")))
        #expect(seven.matches(t("2026-11-29T00:00:00Z")))
        #expect(!seven.matches(t("2026-11-30T00:00:00Z")))
    }

    @Test func dayOfMonthOrWeekdayWhenBothAreRestricted() throws {
        // Classic cron: the 13th OR any Friday.
        let cron = try CronSchedule("0 0 13 * 5")
        #expect(cron.matches(t("2026-03-13T00:00:00Z")))  // Friday the 13th
        #expect(cron.matches(t("2026-04-13T00:00:00Z")))  // a Monday
        #expect(cron.matches(t("2026-04-17T00:00:00Z")))  // a Friday
        #expect(!cron.matches(t("2026-04-14T00:00:00Z")))
    }

    @Test(arguments: [
        "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *", "* * * 0 *",
        "* * * 13 *", "* * * * 8", "*/0 * * * *", "*/x * * * *", "a * * * *", "5-1 * * * *", "1,x * * * *",
        "1-2-3 * * * *", "MON * * * *", "@weekly",
    ])
    func invalidExpressionsThrow(_ text: String) {
        #expect(throws: CronSchedule.Invalid.self) { try CronSchedule(text) }
    }

    @Test(arguments: ["-5 * * * *", "5- * * * *", "1--5 * * * *", "1,,2 * * * *", ",5 * * * *"])
    func malformedListsAndRangesThrow(_ text: String) {
        // Empty list items and range bounds are typos, not something to reinterpret.
        #expect(throws: CronSchedule.Invalid.self) { try CronSchedule(text) }
    }

    @Test func previousFire() throws {
        let weekly = try CronSchedule("0 3 * * 1")
        #expect(weekly.previousFire(atOrBefore: t("2026-12-02T12:34:56Z")) == t("2026-11-30T03:00:00Z"))
        #expect(weekly.previousFire(atOrBefore: t("2026-11-30T03:00:30Z")) == t("2026-11-30T03:00:00Z"))
        #expect(weekly.previousFire(atOrBefore: t("2026-11-30T03:00:00Z")) == t("2026-11-30T03:00:00Z"))
        #expect(weekly.previousFire(atOrBefore: t("2026-11-30T02:59:59Z")) == t("2026-11-23T03:00:00Z"))

        let quarter = try CronSchedule("*/15 * * * *")
        #expect(quarter.previousFire(atOrBefore: t("2026-03-14T10:14:59.999Z")) == t("2026-03-14T10:00:00Z"))
        #expect(quarter.previousFire(atOrBefore: t("2026-03-14T00:05:00Z")) == t("2026-03-14T00:00:00Z"))
        #expect(quarter.previousFire(atOrBefore: t("2026-03-01T00:10:00Z")) == t("2026-03-01T00:00:00Z"))

        let daily = try CronSchedule("30 4 * * *")
        #expect(daily.previousFire(atOrBefore: t("2027-01-01T00:00:00Z")) == t("2026-12-31T04:30:00Z"))
    }

    @Test func previousFireOfAScheduleThatNeverFiresIsNil() throws {
        let never = try CronSchedule("0 0 30 2 *")  // 30 February
        #expect(never.previousFire(atOrBefore: t("2026-11-29T00:00:00Z")) == nil)
    }
}
