public import CloudWasteKafka
import CloudWastePostgres

/// Turns consumed messages into a `PreparedBatch`: each message's prepared record (decoded,
/// validated, anonymized and encoded as COPY rows: `RecordPreparer`) is added in partition
/// order, so that no decoded record outlives its message and the writer only streams bytes. Rows
/// with the same primary key in one batch are reduced to the last one (one statement cannot
/// update a row twice). Owned by the consumer thread.
public final class BatchBuilder {
    /// Prepares the messages given to `add(_:generation:expected:)` (the consumer loop
    /// prepares a poll's messages in parallel and hands in the results instead).
    public let preparer: RecordPreparer
    /// Where `preparer` encodes the record of `add(_:generation:expected:)`.
    private var scratch = PreparedRows()
    private let consumerGroup: String
    private var items: [BatchItem] = []
    /// The partitions' spans in the order they first appeared, and where each one is.
    private var spans: [PartitionSpan] = []
    private var spanIndex: [TopicPartition: Int] = [:]
    /// The span of the last message added (messages come in runs of one partition).
    private var lastSpan: (topic: String, partition: Int32, index: Int)?
    private var tables = BatchTable.allCases.map { _ in EncodedRows() }
    /// Primary key → slot of the row that currently holds it, per table.
    private var slotByKey = BatchTable.allCases.map { _ in RowKeyIndex() }
    private var deadLetterBytes = 0
    private var users = Set<Pseudonym>()
    private var lastUser: Pseudonym?
    public private(set) var openedAt: ContinuousClock.Instant?

    public init(preparer: RecordPreparer, consumerGroup: String = "cloudwaste-stream") {
        self.preparer = preparer
        self.consumerGroup = consumerGroup
    }

    public convenience init(decoder: RecordDecoder, anonymizer: Anonymizer, topicNames: [String: InputTopic], consumerGroup: String = "cloudwaste-stream") {
        self.init(preparer: RecordPreparer(decoder: decoder, anonymizer: anonymizer, topicNames: topicNames), consumerGroup: consumerGroup)
    }

    private var keyId: String { preparer.anonymizer.keyId }

    /// Records added since the last seal.
    public var count: Int { items.count }
    /// Rows over all tables (a metric-samples record has one per point).
    public var rows: Int { tables.reduce(0) { $0 + $1.count } }
    /// Encoded rows plus the raw bytes kept for dead letters.
    public var bytes: Int { tables.reduce(0) { $0 + $1.byteCount } + deadLetterBytes }

    /// Adds one message of a partition owned at `generation`; `expected` is where PostgreSQL's
    /// offset stands for this partition when this span started.
    public func add(_ message: KafkaMessage, generation: Int64, expected: NextOffset) {
        scratch.removeAll()
        let prepared = preparer.prepare(message, into: &scratch)
        add(message, prepared: prepared, rows: scratch, generation: generation, expected: expected)
    }

    /// Adds one message whose record was prepared already into `rows` (by a preparer with the same key).
    public func add(_ message: KafkaMessage, prepared: PreparedRecord, rows: PreparedRows, generation: Int64, expected: NextOffset) {
        let source = SourcePosition(topic: message.topic, partition: message.partition, offset: message.offset)
        let index = items.count
        if openedAt == nil { openedAt = .now }
        var item = BatchItem(source: source, outcome: .rows(.training), eventTime: prepared.eventTime, payloadBytes: message.valueCount)
        switch prepared.outcome {
        case .rows(let table):
            // A scan's records, one after another, share their user: insert (and hash) it once.
            if let user = prepared.user, user != lastUser {
                users.insert(user)
                lastUser = user
            }
            rows.forEachRow(in: prepared.rows) { key, tuple, detection in
                put(table, key: key, item: index, detection: detection, tuple: tuple)
            }
            item.outcome = .rows(table)
        case .privacy(let r):
            item.outcome = .privacy(r)
        case .rejected(let rejection):
            item.outcome = deadLetter(DeadLetter(rejection: rejection, key: message.key, value: message.value), item: index, source: source)
        }
        let s = span(of: message, generation: generation, expected: expected)
        spans[s].nextOffset = message.offset + 1
        if let t = item.eventTime, spans[s].maxEventTime.map({ t > $0 }) ?? true { spans[s].maxEventTime = t }
        items.append(item)
    }

    /// The index of the message's partition span, opened at `expected` if it is new.
    private func span(of message: KafkaMessage, generation: Int64, expected: NextOffset) -> Int {
        if let last = lastSpan, last.partition == message.partition, last.topic == message.topic { return last.index }
        let tp = message.topicPartition
        let index: Int
        if let known = spanIndex[tp] {
            index = known
        } else {
            index = spans.count
            spans.append(PartitionSpan(partition: tp, generation: generation, startOffset: expected,
                                       nextOffset: message.offset + 1, maxEventTime: nil))
            spanIndex[tp] = index
        }
        lastSpan = (message.topic, message.partition, index)
        return index
    }

    /// Appends a row, superseding an earlier row of the batch with the same key.
    private func put(_ table: BatchTable, key: RowKey, item: Int, detection: WindowDetection?, tuple: UnsafeRawBufferPointer) {
        let slot = tables[table.rawValue].appendRow(item: Int32(item), tuple: tuple, detection: detection)
        if let earlier = slotByKey[table.rawValue].update(slot, for: key) {
            tables[table.rawValue].supersede(slot: earlier)
        }
    }

    private func deadLetter(_ d: DeadLetter, item: Int, source: SourcePosition) -> BatchOutcome {
        let row = DeadLetterRow(source: source, rejection: d.rejection, payloadSHA256: d.value.map(sha256Hex),
                                payloadBytes: d.value?.count ?? 0, keySHA256: d.key.map(sha256Hex), consumerGroup: consumerGroup)
        tables[BatchTable.deadLetters.rawValue].append(item: item) { TableDescription.deadLetters.encode(row, into: &$0) }
        deadLetterBytes += (d.value?.count ?? 0) + (d.key?.count ?? 0)
        return .deadLetter(d)
    }

    /// Hands over what was added and starts a new batch.
    public func seal() -> PreparedBatch {
        let batch = PreparedBatch(spans: spans, items: items, tables: tables,
                                  keyId: keyId, users: users)
        // The next batch starts with room for one like this (no regrowth, no copies on the way).
        items = []
        items.reserveCapacity(batch.items.count)
        spans = []
        spanIndex.removeAll(keepingCapacity: true)
        lastSpan = nil
        tables = tables.map { EncodedRows(capacityLike: $0) }
        for t in slotByKey.indices { slotByKey[t].removeAll() }
        deadLetterBytes = 0
        users = []
        users.reserveCapacity(batch.users.count)
        lastUser = nil
        openedAt = nil
        return batch
    }

    /// Drops what was added for `partitions` (revoked or fenced before sealing).
    public func discard(_ partitions: Set<TopicPartition>) {
        guard items.contains(where: { partitions.contains($0.source.topicPartition) }) else { return }
        var newIndex = [Int?](repeating: nil, count: items.count)
        var kept: [BatchItem] = []
        for (i, item) in items.enumerated() where !partitions.contains(item.source.topicPartition) {
            newIndex[i] = kept.count
            kept.append(item)
        }
        items = kept
        spans.removeAll { partitions.contains($0.partition) }
        spanIndex = Dictionary(uniqueKeysWithValues: spans.enumerated().map { ($1.partition, $0) })
        lastSpan = nil
        // Re-encode the key maps against the filtered tables: the slot of a kept row moves.
        for t in BatchTable.allCases {
            let old = tables[t.rawValue]
            var newSlot = [Int?](repeating: nil, count: old.slots.count)
            var next = 0
            for (s, slot) in old.slots.enumerated() where slot.length >= 0 && newIndex[Int(slot.item)] != nil {
                newSlot[s] = next
                next += 1
            }
            tables[t.rawValue] = old.filtered { newIndex[$0] }
            slotByKey[t.rawValue] = slotByKey[t.rawValue].compactMapSlots { newSlot[$0] }
        }
        deadLetterBytes = items.reduce(0) { if case .deadLetter(let d) = $1.outcome { $0 + (d.value?.count ?? 0) + (d.key?.count ?? 0) } else { $0 } }
        if items.isEmpty { openedAt = nil }
    }
}
