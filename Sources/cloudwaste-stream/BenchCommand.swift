import ArgumentParser
import CloudWasteKafka
import CloudWastePostgres
import CloudWasteStream
import Foundation
import Logging

/// `cloudwaste-stream bench`: the end-to-end pipeline measured side by side with its two limits,
/// librdkafka's raw consume rate and PostgreSQL's batch-upsert rate for the same rows.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Measure the pipeline against Kafka's and PostgreSQL's own limits on this machine.")

    @Option(help: "Records to generate.") var records = 1_000_000
    @Option(help: "Runs per measurement; the median is reported.") var runs = 3
    @Option(help: "Folder for the scratch PostgreSQL.") var stateDir = ".state/bench"
    @Option(help: "Seconds of paced traffic for the latency measurement (0 skips it).") var latencySeconds = 10
    @Option(help: "Batch size (records per transaction).") var batchSize = 5000
    @Flag(help: "Measure only the end-to-end run with windows on (quick profiling runs; prints no bench: line).") var endToEndOnly = false

    func run() async throws {
        try await withExitCodes {
            guard records > 0, runs > 0, batchSize > 0 else { throw UsageFailure("--records, --runs and --batch-size must be positive") }
            let bench = try Benchmark(records: records, batchSize: batchSize, stateDirectory: URL(fileURLWithPath: stateDir).standardizedFileURL)
            defer { bench.shutdown() }
            var kafka: [Double] = [], pg: [Double] = [], e2e: [Double] = [], e2eOff: [Double] = [], rss: [Double] = [], mbps: [Double] = []
            if endToEndOnly {
                for run in 1...runs {
                    let on = try bench.endToEnd(windows: true, tag: "on\(run)")
                    print("run \(run): e2e=\(Int(on.rps)) peak_rss_mb=\(Int(on.peakRSSMB))")
                }
                return
            }
            for run in 1...runs {
                kafka.append(try bench.kafkaLimit())
                pg.append(try bench.postgresLimit())
                let on = try bench.endToEnd(windows: true, tag: "on\(run)")
                e2e.append(on.rps)
                mbps.append(on.mbps)
                rss.append(on.peakRSSMB)
                e2eOff.append(try bench.endToEnd(windows: false, tag: "off\(run)").rps)
                print("run \(run): kafka_limit=\(Int(kafka.last!)) pg_limit=\(Int(pg.last!)) e2e=\(Int(e2e.last!)) e2e_windows_off=\(Int(e2eOff.last!)) peak_rss_mb=\(Int(rss.last!))")
            }
            let latency = latencySeconds > 0 ? try bench.latency(rate: median(e2e) / 2, seconds: latencySeconds) : (p50: 0, p99: 0)
            let m = (kafka: median(kafka), pg: median(pg), e2e: median(e2e), off: median(e2eOff), rss: rss.max() ?? 0, mbps: median(mbps))
            print("""

                | measurement (median of \(runs)) | value |
                |---|---|
                | records | \(records) (\(bench.partitionCount) partitions, \(bench.averageBytes) B average) |
                | librdkafka raw consume (no decode) | \(Int(m.kafka)) records/s |
                | PostgreSQL batch upsert, same rows, in memory | \(Int(m.pg)) rows/s |
                | end to end, windows on | \(Int(m.e2e)) records/s (\(String(format: "%.1f", m.mbps)) MB/s) |
                | end to end, windows off | \(Int(m.off)) records/s |
                | end to end / PostgreSQL limit | \(String(format: "%.2f", m.e2e / m.pg)) |
                | windows on / windows off | \(String(format: "%.2f", m.e2e / m.off)) |
                | peak RSS of the daemon | \(Int(m.rss)) MiB |
                | produce→visible at \(Int(m.e2e / 2)) records/s | p50 \(Int(latency.p50)) ms, p99 \(Int(latency.p99)) ms |

                """)
            print("bench: records=\(records) e2e_rps=\(Int(m.e2e)) pg_limit_rps=\(Int(m.pg)) ratio=\(String(format: "%.2f", m.e2e / m.pg)) kafka_limit_rps=\(Int(m.kafka)) windows_off_rps=\(Int(m.off)) windows_ratio=\(String(format: "%.2f", m.e2e / m.off)) peak_rss_mb=\(Int(m.rss)) p50_ms=\(Int(latency.p50)) p99_ms=\(Int(latency.p99))")
        }
    }
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    guard !s.isEmpty else { return 0 }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// The benchmark's environment and measurements.
final class Benchmark {
    let env: LocalEnvironment
    let key = HMACKey.generate()
    let records: Int
    let batchSize: Int
    let messages: [TrafficGenerator.Message]
    let partitions: [InputTopic: Int]
    let averageBytes: Int
    var partitionCount: Int { partitions.values.reduce(0, +) }
    private var databases = 0

    init(records: Int, batchSize: Int, stateDirectory: URL) throws {
        self.records = records
        self.batchSize = batchSize
        print("generating \(records) records…")
        messages = TrafficGenerator(seed: 1, badRecordShare: 0.005).messages(count: records)
        averageBytes = messages.isEmpty ? 0 : messages.reduce(0) { $0 + $1.value.count } / messages.count
        // The mock broker keeps ~5 MiB per partition: size partitions so that nothing is evicted.
        let parts = LocalEnvironment.partitions(for: messages)
        partitions = parts
        print("starting scratch PostgreSQL (fsync on) and the mock Kafka cluster (\(parts.values.reduce(0, +)) partitions)…")
        env = try LocalEnvironment(stateDirectory: stateDirectory, partitions: parts, durablePostgres: true)
        let started = Date()
        try LocalEnvironment.publish(messages, bootstrap: env.kafka.bootstrapServers)
        print("published in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        // The mock broker silently evicts beyond ~5 MiB per partition: check that all is there.
        let probe = try KafkaConsumer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers, "group.id": "bench-probe"]), logger: Logger(label: "bench.probe"))
        var kept: Int64 = 0
        for (t, n) in parts {
            for p in 0..<n {
                let (low, high) = try probe.queryWatermarks(TopicPartition(topic: t.name(prefix: "cloudwaste."), partition: Int32(p)))
                kept += high - low
            }
        }
        probe.close(timeoutMs: 1000)
        guard kept == Int64(records) else {
            throw RuntimeFailure("the mock broker kept \(kept) of \(records) records (≈5 MiB per partition): use fewer records")
        }
    }

    func shutdown() { env.shutdown() }

    func newDatabase() throws -> String {
        databases += 1
        let name = "bench_\(databases)"
        try PostgresConnection(connectionString: env.postgres.url()).execute("CREATE DATABASE \(name)")
        return env.postgres.url(database: name)
    }

    /// librdkafka's consume rate of these records, tuned, decoding nothing.
    func kafkaLimit() throws -> Double {
        let consumer = try KafkaConsumer(config: KafkaConfig([
            "bootstrap.servers": env.kafka.bootstrapServers, "group.id": "bench-raw-\(UUID().uuidString)",
            "fetch.max.bytes": "52428800", "max.partition.fetch.bytes": "10485760",
            "queued.min.messages": "1000000", "fetch.wait.max.ms": "100",
        ]), logger: Logger(label: "bench.kafka"))
        var offsets: [TopicPartition: Int64] = [:]
        for (t, n) in partitions { for p in 0..<n { offsets[TopicPartition(topic: t.name(prefix: "cloudwaste."), partition: Int32(p))] = KafkaOffset.beginning } }
        try consumer.assign(offsets)
        var count = 0
        var first: Date?
        while count < records {
            let batch = try consumer.poll(maxMessages: 10_000, timeoutMs: 5000)
            if batch.isEmpty { break }
            if first == nil { first = Date() }
            count += batch.count
        }
        consumer.close(timeoutMs: 1000)
        return Double(count) / max(1e-6, Date().timeIntervalSince(first ?? Date()))
    }

    /// PostgreSQL's rate for the same rows through the same write path, prepared in memory.
    func postgresLimit() throws -> Double {
        let url = try newDatabase()
        var config = StreamConfig()
        config.postgresURL = url
        config.groupId = "bench-pg"
        let db = try PostgresConnection(connectionString: url)
        try Migrator(schema: "public").migrate(db)
        let regions = try RegionTable.load(path: nil)
        let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: key, regions: regions),
                                   topicNames: Dictionary(uniqueKeysWithValues: InputTopic.allCases.map { ($0.name(prefix: "cloudwaste."), $0) }))
        let tps = InputTopic.allCases.map { TopicPartition(topic: $0.name(prefix: "cloudwaste."), partition: 0) }
        let claims = try OffsetStore(connection: db, schema: "public", groupId: config.groupId, owner: "bench").claim(tps)
        var batches: [PreparedBatch] = []
        var next: [String: Int64] = [:]
        // In the order a consumer sees them: grouped by topic and key (partition), in time order within.
        let ordered = messages.enumerated().sorted { ($0.element.topic.rawValue, $0.element.key, $0.offset) < ($1.element.topic.rawValue, $1.element.key, $1.offset) }.map(\.element)
        for chunk in stride(from: 0, to: ordered.count, by: batchSize) {
            let batchStart = next
            for m in ordered[chunk..<min(chunk + batchSize, ordered.count)] {
                let topic = m.topic.name(prefix: "cloudwaste.")
                let offset = next[topic, default: 0]
                builder.add(KafkaMessage(topic: topic, partition: 0, offset: offset, key: nil, value: m.value),
                            generation: claims[TopicPartition(topic: topic, partition: 0)]!.generation,
                            expectedOffset: batchStart[topic] ?? -1)
                next[topic] = offset + 1
            }
            batches.append(builder.seal())
        }
        let writer = BatchWriter(connection: try PostgresConnection(connectionString: url), settings: .init(config: config))
        let started = Date()
        for batch in batches { _ = try writer.write(batch) }
        _ = try writer.recomputeAndFinalizeNow(keyId: key.keyId)  // as the daemon does when it stops
        return Double(messages.count) / Date().timeIntervalSince(started)
    }

    struct Run { var rps: Double; var mbps: Double; var peakRSSMB: Double }

    /// The real daemon as a child process (so its RSS is its own), from the earliest offsets.
    func endToEnd(windows: Bool, tag: String) throws -> Run {
        let url = try newDatabase()
        let output = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bench-\(tag)-\(getpid()).out")
        var env = ProcessInfo.processInfo.environment
        env["CLOUDWASTE_KAFKA_BOOTSTRAP"] = self.env.kafka.bootstrapServers
        env["CLOUDWASTE_POSTGRES_URL"] = url
        env["CLOUDWASTE_GROUP_ID"] = "bench-\(tag)"
        env["CLOUDWASTE_HMAC_KEY"] = key.hex
        env["CLOUDWASTE_HTTP_PORT"] = "0"
        env["CLOUDWASTE_LOG_LEVEL"] = "warning"
        env["MALLOC_ARENA_MAX"] = env["MALLOC_ARENA_MAX"] ?? "2"
        let configFile = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("bench-\(tag).toml")
        try "[windows]\nenabled = \(windows)\n[pipeline]\nbatch_max_records = \(batchSize)\n".write(to: configFile, atomically: true, encoding: .utf8)
        // CLOUDWASTE_BENCH_WRAPPER runs the daemon under a profiler, e.g. "heaptrack" or "perf record -g".
        let daemon = [CommandLine.arguments[0], "run", "--until-idle", "3", "--config", configFile.path]
        let wrapper = env["CLOUDWASTE_BENCH_WRAPPER"].map { $0.split(separator: " ").map(String.init) } ?? []
        let command = wrapper.isEmpty ? daemon : ["/usr/bin/env"] + wrapper + daemon
        let (status, maxRSSKB) = spawnMeasured(command[0], Array(command.dropFirst()), environment: env, outputPath: output.path)
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0, let line = text.split(separator: "\n").last(where: { $0.hasPrefix("run: ") }) else {
            throw RuntimeFailure("benchmark daemon failed (exit \(status)): \(text.suffix(500))")
        }
        var fields: [String: String] = [:]
        for part in line.dropFirst(5).split(separator: " ") {
            let kv = part.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        let rps = Double(fields["rps"] ?? "0") ?? 0
        guard Int(fields["records"] ?? "") == records else { throw RuntimeFailure("daemon committed \(fields["records"] ?? "?") of \(records) records") }
        // The daemon's own VmHWM; wait4's ru_maxrss would include this (parent) process's peak.
        let peak = Double(fields["peak_rss_mb"] ?? "") ?? Double(maxRSSKB) / 1024
        return Run(rps: rps, mbps: rps * Double(averageBytes) / 1_048_576, peakRSSMB: peak)
    }

    /// Produce→visible latency at a paced rate: the time between the k-th record being sent and
    /// the k-th record being committed (batches commit atomically, in partition order).
    func latency(rate: Double, seconds: Int) throws -> (p50: Double, p99: Double) {
        let url = try newDatabase()
        var config = StreamConfig()
        config.kafkaBootstrapServers = env.kafka.bootstrapServers
        config.postgresURL = url
        config.groupId = "bench-latency"
        config.httpPort = 0
        config.kafkaProperties["auto.offset.reset"] = "latest"
        config.batchLingerMs = 20
        var logger = Logger(label: "bench.latency")
        logger.logLevel = .warning
        let pipeline = StreamPipeline(config: config, key: key, regions: try RegionTable.load(path: nil), logger: logger)
        try pipeline.start()
        defer { pipeline.requestStop(); pipeline.waitUntilFinished() }
        let deadline = Date(timeIntervalSinceNow: 30)
        while pipeline.status.assignedPartitions == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 1)
        let producer = try KafkaProducer(config: KafkaConfig(["bootstrap.servers": env.kafka.bootstrapServers, "linger.ms": "1"]), logger: Logger(label: "bench.producer"))
        let total = Int(rate * Double(seconds))
        let base = pipeline.status.recordsCommitted
        var sentAt: [Date] = []
        sentAt.reserveCapacity(total)
        var visibleAt: [Date] = []
        let start = Date()
        var next = 0
        while next < total {
            let due = Int(Date().timeIntervalSince(start) * rate)
            while next < min(due, total) {
                let m = messages[next % messages.count]
                try producer.send(topic: m.topic.name(prefix: "cloudwaste."), key: Array(m.key.utf8), value: m.value)
                sentAt.append(Date())
                next += 1
            }
            producer.poll()
            let committed = pipeline.status.recordsCommitted - base
            while visibleAt.count < min(committed, sentAt.count) { visibleAt.append(Date()) }
            Thread.sleep(forTimeInterval: 0.001)
        }
        let end = Date(timeIntervalSinceNow: 30)
        while visibleAt.count < total && Date() < end {
            let committed = pipeline.status.recordsCommitted - base
            while visibleAt.count < min(committed, total) { visibleAt.append(Date()) }
            Thread.sleep(forTimeInterval: 0.001)
        }
        let latencies = zip(sentAt, visibleAt).map { $1.timeIntervalSince($0) * 1000 }.sorted()
        guard !latencies.isEmpty else { return (0, 0) }
        return (latencies[latencies.count / 2], latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))])
    }
}

/// posix_spawn + wait4: exit status and ru_maxrss in KiB (an upper bound only: after a vfork-style
/// spawn it starts from the parent's peak).
func spawnMeasured(_ executable: String, _ arguments: [String], environment: [String: String], outputPath: String) -> (Int32, Int) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for p in argv + envp { free(p) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, executable, &actions, nil, argv, envp) == 0 else { return (127, 0) }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) == -1 && errno == EINTR {}
    let code: Int32 = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (code, usage.ru_maxrss)
}

/// `cloudwaste-stream bench-decode`: the consumer thread's work alone (decode, validate,
/// anonymize, batch) on generated records, for profiling (e.g. under valgrind --tool=callgrind).
struct BenchDecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-decode", abstract: "Measure decoding and anonymization alone.")
    @Option(help: "Records to generate.") var records = 200_000

    func run() async throws {
        try await withExitCodes {
            let messages = TrafficGenerator(seed: 1, badRecordShare: 0.005).messages(count: records)
                .map { KafkaMessage(topic: $0.topic.name(prefix: "cloudwaste."), partition: 0, offset: 0, key: Array($0.key.utf8), value: $0.value) }
            let builder = BatchBuilder(decoder: RecordDecoder(), anonymizer: Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil)),
                                       topicNames: Dictionary(uniqueKeysWithValues: InputTopic.allCases.map { ($0.name(prefix: "cloudwaste."), $0) }))
            let started = Date()
            var offset: Int64 = 0
            for m in messages {
                var message = m
                message.offset = offset
                offset += 1
                builder.add(message, generation: 1, expectedOffset: -1)
                if builder.count >= 5000 { _ = builder.seal() }
            }
            let seconds = Date().timeIntervalSince(started)
            // The same work split by stage.
            let decoder = RecordDecoder()
            let parser = JSONParser()
            var t = Date()
            for m in messages { _ = try? parser.parse(m.value ?? []) }
            let parseSeconds = Date().timeIntervalSince(t)
            t = Date()
            var decoded: [InputRecord] = []
            for m in messages { if let r = try? decoder.decode(InputTopic.allCases.first { $0.name(prefix: "cloudwaste.") == m.topic }!, m.value) { decoded.append(r) } }
            let decodeSeconds = Date().timeIntervalSince(t)
            let anonymizer = Anonymizer(key: HMACKey.generate(), regions: try RegionTable.load(path: nil))
            t = Date()
            for r in decoded { _ = anonymizer.anonymize(r) }
            let anonymizeSeconds = Date().timeIntervalSince(t)
            let p = Pseudonymizer(key: HMACKey.generate())
            t = Date()
            for i in 0..<records { _ = p.pseudonym(.resource, "arn:aws:ec2:us-east-1:123456789012:volume/vol-\(i)") }
            let hmacSeconds = Date().timeIntervalSince(t)
            let us = { (s: Double) in String(format: "%.2f", s * 1e6 / Double(records)) }
            print("per record (µs): json_parse=\(us(parseSeconds)) decode_validate=\(us(decodeSeconds)) anonymize=\(us(anonymizeSeconds)) one_pseudonym=\(us(hmacSeconds))")
            print("bench-decode: records=\(records) seconds=\(String(format: "%.3f", seconds)) rps=\(Int(Double(records) / seconds)) us_per_record=\(String(format: "%.2f", seconds * 1e6 / Double(records)))")
        }
    }
}
