import CloudWasteKafka
import CloudWastePostgres
import Foundation
import Logging

/// A dead letter on its way to the dead-letter topic: the original key and bytes, with the
/// source position and the reason as headers.
struct DeadLetterPublication: Sendable {
    var source: SourcePosition
    var key: [UInt8]?
    var value: [UInt8]?
    var reason: String
    /// The bytes are not at hand (a row PostgreSQL rejected: only its encoded row was kept), so
    /// they are read back from the source topic first.
    var fetchFromSource = false

    var bytes: Int { (key?.count ?? 0) + (value?.count ?? 0) }
}

/// Publishes dead letters to the dead-letter topic after their batch committed, so a batch that
/// is retried (PostgreSQL down, fencing, bisection) never publishes twice. The table row records
/// the publication (`published_at`). The raw bytes are never stored in PostgreSQL (SPEC §3): after
/// a crash between commit and publication, the bytes are read back from the source topic.
///
/// Once across stops and crashes, too: before letters are sent, their rows record where the
/// dead-letter topic ended (`recordSendStart`). A run that finds a row still unpublished (the
/// previous one stopped with PostgreSQL down, or was killed between sending and marking) reads the
/// topic from there, and what it finds there (by the source headers) is marked, not sent again.
struct DeadLetterPublisher {
    let producer: KafkaProducer
    let db: PostgresConnection
    let config: StreamConfig
    let logger: Logger

    /// Sends and flushes. Throws if Kafka did not take them all (the caller keeps them and
    /// retries); then the caller records the publication with `markPublished`.
    func send(_ letters: [DeadLetterPublication]) throws {
        guard !letters.isEmpty else { return }
        let missing = letters.filter(\.fetchFromSource)
        let fetched = missing.isEmpty ? [:] : try fetch(Set(missing.map(\.source)))
        let topic = config.deadLetterTopic
        for var d in letters {
            if d.fetchFromSource {
                d.key = fetched[d.source]?.key
                d.value = fetched[d.source]?.value
            }
            try producer.send(topic: topic, key: d.key, value: d.value, headers: [
                ("cw.source.topic", Array(d.source.topic.utf8)),
                ("cw.source.partition", Array(String(d.source.partition).utf8)),
                ("cw.source.offset", Array(String(d.source.offset).utf8)),
                ("cw.reason", Array(d.reason.utf8)),
            ])
        }
        try producer.flush(timeoutMs: 10_000)
    }

    /// Records, on the letters' rows, the dead-letter topic's end offsets before they are sent (the
    /// first attempt's stay: a later one must not hide what an earlier one may have delivered).
    /// Throws when Kafka or PostgreSQL is away: nothing is sent then (the caller retries).
    func recordSendStart(_ sources: [SourcePosition]) throws {
        guard !sources.isEmpty else { return }
        let ends = try producer.endOffsets(of: config.deadLetterTopic).sorted { $0.key < $1.key }
        try db.query("""
            UPDATE \(schema).dead_letters d
               SET send_from_partitions = COALESCE(d.send_from_partitions, \(ends.map(\.key))::int[]),
                   send_from_offsets = COALESCE(d.send_from_offsets, \(ends.map(\.value))::bigint[])
              FROM unnest(\(sources.map(\.topic))::text[], \(sources.map(\.partition))::int[],
                          \(sources.map(\.offset))::bigint[]) AS v(topic, partition, "offset")
             WHERE d.source_topic = v.topic AND d.source_partition = v.partition AND d.source_offset = v."offset"
               AND d.published_at IS NULL
            """)
    }

    private var schema: PostgresIdentifier { PostgresIdentifier(config.postgresSchema) }

    func markPublished(_ sources: [SourcePosition]) throws {
        guard !sources.isEmpty else { return }
        try db.query("""
            UPDATE \(schema).dead_letters d SET published_at = now()
              FROM unnest(\(sources.map(\.topic))::text[], \(sources.map(\.partition))::int[],
                          \(sources.map(\.offset))::bigint[]) AS v(topic, partition, "offset")
             WHERE d.source_topic = v.topic AND d.source_partition = v.partition AND d.source_offset = v."offset"
               AND d.published_at IS NULL
            """)
    }

    /// Publishes dead letters committed before `cutoff` but never published (a crash or a Kafka
    /// outage after their commit), reading their bytes back from the source topic. Returns how
    /// many were published.
    func recoverUnpublished(committedBefore cutoff: Date, limit: Int = 10_000) throws -> Int {
        let rows = try db.query("""
            SELECT source_topic, source_partition, source_offset, reason, send_from_partitions, send_from_offsets
              FROM \(schema).dead_letters
             WHERE published_at IS NULL AND consumer_group = \(config.groupId)
               AND received_at < to_timestamp(\(cutoff.timeIntervalSince1970))
             ORDER BY source_topic, source_partition, source_offset LIMIT \(limit)
            """)
        guard rows.rowCount > 0 else { return 0 }
        var wanted: [SourcePosition: String] = [:]
        /// Per dead-letter partition, the earliest offset an interrupted send may have reached.
        var sentFrom: [Int32: Int64] = [:]
        for (topic, partition, offset, reason, sendPartitions, sendOffsets)
            in try rows.decodeRows(as: (String, Int32, Int64, String, String?, String?).self) {
            let source = SourcePosition(topic: topic, partition: partition, offset: offset)
            wanted[source] = reason
            for (partition, offset) in zip(Self.integers(sendPartitions), Self.integers(sendOffsets)) {
                sentFrom[Int32(partition)] = min(sentFrom[Int32(partition)] ?? .max, Int64(offset))
            }
        }
        let onTopic = sentFrom.isEmpty ? [] : try deadLettersOnTopic(from: sentFrom).intersection(wanted.keys)
        if !onTopic.isEmpty {
            logger.info("\(onTopic.count) dead letters sent by an earlier run but not marked: marked now, not sent again")
            try markPublished(Array(onTopic))
            for source in onTopic { wanted[source] = nil }
        }
        guard !wanted.isEmpty else { return 0 }
        let found = try fetch(Set(wanted.keys))
        let letters = found.compactMap { source, message in
            wanted[source].map { DeadLetterPublication(source: source, key: message.key, value: message.value, reason: $0) }
        }
        try recordSendStart(letters.map(\.source))
        try send(letters)
        try markPublished(letters.map(\.source))
        let gone = Set(wanted.keys).subtracting(found.keys)
        if !gone.isEmpty {
            logger.warning("\(gone.count) unpublished dead letters are no longer in their source topic (retention); marked as published without their bytes")
            try markPublished(Array(gone))
        }
        return letters.count
    }

    /// `{1,2,3}` (an int[] in text form) as numbers; empty for NULL.
    static func integers(_ array: String?) -> [Int] {
        guard let array else { return [] }
        return array.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: ",").compactMap { Int($0) }
    }

    /// The source positions of the dead letters on the dead-letter topic from `start` (per
    /// partition) to its current end, read from their headers.
    private func deadLettersOnTopic(from start: [Int32: Int64]) throws -> Set<SourcePosition> {
        let consumer = try reader("dead-letter-check")
        defer { consumer.close(timeoutMs: 2000) }
        var end: [TopicPartition: Int64] = [:]
        var assignment: [TopicPartition: Int64] = [:]
        for (partition, offset) in start {
            let tp = TopicPartition(topic: config.deadLetterTopic, partition: partition)
            let high = try consumer.queryWatermarks(tp).high
            if high > offset {
                end[tp] = high
                assignment[tp] = offset
            }
        }
        guard !assignment.isEmpty else { return [] }
        try consumer.assign(assignment)
        var out = Set<SourcePosition>()
        var done = Set<TopicPartition>()
        let deadline = Date(timeIntervalSinceNow: 60)
        while done.count < assignment.count {
            guard Date() < deadline else { throw RecoveryTimeout(topic: config.deadLetterTopic) }
            for m in try consumer.poll(maxMessages: 1000, timeoutMs: 500) {
                if let h = m.headers, let topic = h["cw.source.topic"], let partition = h["cw.source.partition"], let offset = h["cw.source.offset"],
                   let p = Int32(String(decoding: partition, as: UTF8.self)), let o = Int64(String(decoding: offset, as: UTF8.self)) {
                    out.insert(SourcePosition(topic: String(decoding: topic, as: UTF8.self), partition: p, offset: o))
                }
                if m.offset + 1 >= end[m.topicPartition] ?? 0 { done.insert(m.topicPartition) }
            }
        }
        return out
    }

    /// A consumer for reading partitions by assignment (its group id is never joined).
    private func reader(_ purpose: String) throws -> KafkaConsumer {
        var kc = config.kafkaConfig
        kc["group.id"] = "\(config.groupId)-\(purpose)"
        kc["enable.partition.eof"] = "true"
        return try KafkaConsumer(config: kc, logger: logger)
    }

    /// The dead-letter topic could not be read to its end: nothing is sent (it would risk a second
    /// copy); the recovery is tried again.
    struct RecoveryTimeout: TransientFailure, CustomStringConvertible {
        var topic: String
        var description: String { "could not read \(topic) to its end within 60 s; unpublished dead letters wait" }
    }

    /// The records at `positions`, read from their topics without a group.
    private func fetch(_ positions: Set<SourcePosition>) throws -> [SourcePosition: KafkaMessage] {
        let consumer = try reader("dead-letter-recovery")
        defer { consumer.close(timeoutMs: 2000) }
        var start: [TopicPartition: Int64] = [:]
        var last: [TopicPartition: Int64] = [:]
        for p in positions {
            start[p.topicPartition] = min(start[p.topicPartition] ?? .max, p.offset)
            last[p.topicPartition] = max(last[p.topicPartition] ?? -1, p.offset)
        }
        try consumer.assign(start)
        var out: [SourcePosition: KafkaMessage] = [:]
        var done = Set<TopicPartition>()
        let deadline = Date(timeIntervalSinceNow: 30)
        while done.count < start.count && Date() < deadline {
            for m in try consumer.poll(maxMessages: 1000, timeoutMs: 500) {
                let source = SourcePosition(topic: m.topic, partition: m.partition, offset: m.offset)
                if positions.contains(source) { out[source] = m }
                if m.offset >= last[m.topicPartition] ?? .max { done.insert(m.topicPartition) }
            }
            for tp in start.keys where !done.contains(tp) {
                if let (_, high) = consumer.cachedWatermarks(tp), high <= last[tp]! + 1, consumer.positions([tp])[tp].map({ $0 >= high }) == true {
                    done.insert(tp)
                }
            }
        }
        return out
    }
}
