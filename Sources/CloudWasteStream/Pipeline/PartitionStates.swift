import CloudWasteKafka

/// What the consumer thread knows about each assigned partition, as one state per partition, and
/// what to do with Kafka when something happens to one: the loop reports events (assigned,
/// claimed, fenced, a message, a lane full or drained, privacy caught up, a check for stalls) and
/// executes the actions returned (pause, resume, seek, discard) against `KafkaConsumer`, as
/// swift-kafka-client's consumer state machine does. Pure: no Kafka, no PostgreSQL, no clock
/// (time is passed in), so every transition is unit-tested without either
/// (`PartitionStatesTests`). Owned by the consumer thread.
struct PartitionStates {
    /// A partition claimed in PostgreSQL: the generation that fences earlier owners, and the next
    /// offset to add to a batch.
    struct Ownership: Equatable {
        var generation: Int64
        var next: NextOffset
    }

    enum State: Equatable {
        /// Assigned, not claimed (the claim failed, or a batch of it was fenced): paused until a
        /// claim succeeds. `privacyHeld`: after the claim it still waits for the privacy catch-up.
        case claiming(privacyHeld: Bool)
        /// Claimed, paused until the privacy requests published before its assignment are applied
        /// (`PrivacyCatchUp`). `readAgainFrom`: without committed history, the first offset
        /// fetched before the pause took effect, where reading resumes once released.
        case heldForPrivacy(Ownership, readAgainFrom: Int64?)
        /// Claimed and read. `gapRereadAt`: the offset last re-read from after a gap; the same gap
        /// seen again is real (compaction, transaction markers, retention) and accepted.
        case reading(Ownership, gapRereadAt: Int64?)

        var ownership: Ownership? {
            switch self {
            case .claiming: nil
            case .heldForPrivacy(let o, _), .reading(let o, _): o
            }
        }
    }

    enum Action: Equatable {
        case pause(Set<TopicPartition>)
        case resume(Set<TopicPartition>)
        /// Where to read next; `wait`: block until librdkafka applied it (after a claim), else not.
        case seek([TopicPartition: Int64], wait: Bool)
        /// Drop the partitions' messages from the open batches (their claim is gone).
        case discard(Set<TopicPartition>)
    }

    /// What to do with one fetched message.
    enum Decision: Equatable {
        /// Add it to its lane's batch: the partition's generation, and where PostgreSQL stands
        /// for it when its span starts.
        case add(generation: Int64, expected: NextOffset)
        /// Not ours to add now (not claimed, held, fetched before a seek, or after a re-read gap).
        case skip
        /// A gap: read again from this offset (once per gap), skipping the rest of this poll.
        case reread(from: Int64)
    }

    private(set) var states: [TopicPartition: State] = [:]
    /// Lanes whose writer is stuck with a batch it has no room for: their partitions are paused.
    private(set) var stuckLanes = Set<Int>()
    /// Partitions re-seeked while the current poll is handled: its remaining messages are stale.
    private var rereadThisPoll = Set<TopicPartition>()
    /// Stall watchdog: where each lagging partition stood at the last check, and since when.
    private var stallWatch: [TopicPartition: (next: NextOffset, since: Double)] = [:]
    /// Partitions without committed history released from the privacy hold (or unclaimed while
    /// held) before they could be resumed: where reading must restart, kept until a resume or a
    /// claim seeks there (the messages before it were skipped while held).
    private var restartAt: [TopicPartition: Int64] = [:]
    let laneCount: Int
    /// Where librdkafka starts a partition without committed history (`auto.offset.reset`).
    let startWithoutHistory: Int64

    init(lanes: Int, startWithoutHistory: Int64) {
        laneCount = lanes
        self.startWithoutHistory = startWithoutHistory
    }

    func lane(of tp: TopicPartition) -> Int { ConsumerLoop.lane(of: tp, lanes: laneCount) }

    /// The partitions claimed (held or read) and where each stands.
    var owned: [TopicPartition: NextOffset] {
        states.compactMapValues { $0.ownership?.next }
    }

    func owns(_ tp: TopicPartition) -> Bool { states[tp]?.ownership != nil }

    /// Per message, before it is prepared: whether it will be added (nearly always).
    func isReading(_ tp: TopicPartition) -> Bool {
        if case .reading = states[tp] { true } else { false }
    }

    /// Once per loop: no array unless there is a claim to make.
    var anyToClaim: Bool {
        states.values.contains { if case .claiming = $0 { true } else { false } }
    }

    var partitionsToClaim: [TopicPartition] {
        states.compactMap { if case .claiming = $0.value { $0.key } else { nil } }
    }

    /// How many partitions wait for the privacy catch-up (claimed or not).
    var heldForPrivacy: Int {
        states.values.reduce(0) {
            switch $1 {
            case .heldForPrivacy, .claiming(privacyHeld: true): $0 + 1
            default: $0
            }
        }
    }

    /// Where reading starts for a claim: its next offset, or librdkafka's reset position.
    private func start(_ next: NextOffset) -> Int64 { next.offset ?? startWithoutHistory }

    private func mayRead(_ tp: TopicPartition) -> Bool {
        isReading(tp) && !stuckLanes.contains(lane(of: tp))
    }

    // MARK: - Events

    /// A new assignment (inside the rebalance callback): `claims` as PostgreSQL granted them (nil:
    /// the claim failed), `privacyHeld` the data partitions to hold back. Returns where each
    /// claimed partition starts and which are assigned paused.
    mutating func assigned(_ partitions: [TopicPartition], claims: [TopicPartition: OffsetStore.Claim]?,
                           privacyHeld: Set<TopicPartition>) -> (offsets: [TopicPartition: Int64], paused: Set<TopicPartition>) {
        var offsets: [TopicPartition: Int64] = [:]
        var paused = Set<TopicPartition>()
        for tp in partitions {
            let held = privacyHeld.contains(tp)
            guard let claim = claims?[tp] else {
                states[tp] = .claiming(privacyHeld: held)
                paused.insert(tp)
                continue
            }
            let own = Ownership(generation: claim.generation, next: claim.nextOffset)
            states[tp] = held ? .heldForPrivacy(own, readAgainFrom: nil) : .reading(own, gapRereadAt: nil)
            offsets[tp] = start(own.next)
            if held || stuckLanes.contains(lane(of: tp)) { paused.insert(tp) }
        }
        return (offsets, paused)
    }

    /// Partitions taken away (the caller has handed over or discarded their open batches).
    mutating func revoked(_ partitions: Set<TopicPartition>) {
        for tp in partitions {
            states[tp] = nil
            stallWatch[tp] = nil
            rereadThisPoll.remove(tp)
            restartAt[tp] = nil
        }
    }

    /// Batches of these partitions (at these generations) found them claimed by another owner:
    /// where the generation is still ours, the claim is gone. Their open rows are discarded and
    /// they pause until claimed again.
    mutating func fenced(_ fenced: [TopicPartition: Int64]) -> [Action] {
        let lost = Set(fenced.filter { states[$0.key]?.ownership?.generation == $0.value }.keys)
        guard !lost.isEmpty else { return [] }
        unclaim(lost)
        return [.discard(lost), .pause(lost)]
    }

    /// Back to claiming, keeping whether the privacy catch-up still holds them (a claim whose
    /// seek failed, or fenced).
    mutating func unclaim(_ partitions: Set<TopicPartition>) {
        for tp in partitions {
            guard let state = states[tp] else { continue }
            switch state {
            case .claiming: break
            case .heldForPrivacy(_, let again):
                if let again { restartAt[tp] = again }
                states[tp] = .claiming(privacyHeld: true)
            case .reading: states[tp] = .claiming(privacyHeld: false)
            }
        }
    }

    /// Claims granted for partitions that were waiting for one: seek each to its start, resume
    /// those that may be read.
    mutating func claimed(_ claims: [TopicPartition: OffsetStore.Claim]) -> [Action] {
        var positions: [TopicPartition: Int64] = [:]
        for (tp, claim) in claims {
            guard case .claiming(let held) = states[tp] else { continue }
            let own = Ownership(generation: claim.generation, next: claim.nextOffset)
            if held {
                states[tp] = .heldForPrivacy(own, readAgainFrom: own.next == .uncommitted ? restartAt[tp] : nil)
                restartAt[tp] = nil
                positions[tp] = start(own.next)
            } else {
                states[tp] = .reading(own, gapRereadAt: nil)
                positions[tp] = own.next.offset ?? restartAt.removeValue(forKey: tp) ?? startWithoutHistory
            }
        }
        guard !positions.isEmpty else { return [] }
        return [.seek(positions, wait: true), .resume(Set(positions.keys.filter(mayRead)))]
    }

    /// One fetched message, in poll order. Moves the partition's next offset when it is added.
    /// Runs for every message, so the partition is hashed once: its state is read and written
    /// through its index.
    mutating func message(_ tp: TopicPartition, offset: Int64) -> Decision {
        guard let i = states.index(forKey: tp) else { return .skip }
        switch states.values[i] {
        case .claiming:
            return .skip  // read again after the claim
        case .heldForPrivacy(let own, let again):
            if rereadThisPoll.contains(tp) { return .skip }
            if own.next == .uncommitted && again == nil { states.values[i] = .heldForPrivacy(own, readAgainFrom: offset) }
            return .skip
        case .reading(var own, let gap):
            if rereadThisPoll.contains(tp) { return .skip }
            if case .at(let expected) = own.next {
                if offset < expected { return .skip }  // fetched before a seek
                if offset > expected && gap != expected {
                    // Never skip silently: re-read from where we stand, once.
                    states.values[i] = .reading(own, gapRereadAt: expected)
                    rereadThisPoll.insert(tp)
                    return .reread(from: expected)
                }
            }
            let decision = Decision.add(generation: own.generation, expected: own.next)
            if own.next == .uncommitted && !restartAt.isEmpty { restartAt[tp] = nil }
            own.next = .at(offset + 1)
            states.values[i] = .reading(own, gapRereadAt: gap)
            return decision
        }
    }

    /// The current poll's messages are all handled.
    mutating func pollHandled() {
        if !rereadThisPoll.isEmpty { rereadThisPoll.removeAll() }
    }

    /// Lane `lane`'s writer has no room for its sealed batch: pause its partitions.
    mutating func laneStuck(_ lane: Int) -> [Action] {
        stuckLanes.insert(lane)
        let paused = Set(states.keys.filter { self.lane(of: $0) == lane && owns($0) })
        return paused.isEmpty ? [] : [.pause(paused)]
    }

    /// Lane `lane` took its held batch: resume its partitions where this loop stands.
    mutating func laneHasRoom(_ lane: Int) -> [Action] {
        guard stuckLanes.remove(lane) != nil else { return [] }
        return resumeActions(Set(states.keys.filter { self.lane(of: $0) == lane }))
    }

    /// The privacy requests published before the assignment are applied (or the wait timed out):
    /// every held partition is released.
    mutating func privacyCaughtUp() -> [Action] {
        var released = Set<TopicPartition>()
        for (tp, state) in states {
            switch state {
            case .heldForPrivacy(let own, let again):
                states[tp] = .reading(own, gapRereadAt: nil)
                released.insert(tp)
                if own.next == .uncommitted, let again { restartAt[tp] = again }
            case .claiming(privacyHeld: true):
                states[tp] = .claiming(privacyHeld: false)
            default:
                break
            }
        }
        return resumeActions(released)
    }

    /// Resumes those of `partitions` that may be read, each sought to exactly where this loop
    /// stands (librdkafka 2.0 may resume elsewhere), or, without history, where it must restart.
    private mutating func resumeActions(_ partitions: Set<TopicPartition>) -> [Action] {
        let mine = partitions.filter(mayRead)
        guard !mine.isEmpty else { return [] }
        var positions: [TopicPartition: Int64] = [:]
        for tp in mine {
            if let next = states[tp]?.ownership?.next.offset ?? restartAt.removeValue(forKey: tp) { positions[tp] = next }
        }
        return positions.isEmpty ? [.resume(mine)] : [.resume(mine), .seek(positions, wait: false)]
    }

    /// The stall watchdog, once a second: a partition being read that has records to read (or
    /// was never fetched: no lag figure) but delivered none for `stallSeconds` is resumed and
    /// re-sought to where it stands (librdkafka 2.0 can leave a partition idle after a lost
    /// session). A partition whose lane waits for its writer is not stalled. `now` in seconds.
    mutating func stalled(now: Double, lag: [TopicPartition: Int64], laneHasRoom: (Int) -> Bool,
                          stallSeconds: Double) -> [TopicPartition: Int64] {
        var restart: [TopicPartition: Int64] = [:]
        for (tp, state) in states {
            guard case .reading(let own, _) = state else {
                stallWatch[tp] = nil
                continue
            }
            // Started at the end on purpose (auto.offset.reset=latest) and nothing new yet.
            if own.next == .uncommitted && startWithoutHistory == KafkaOffset.end { continue }
            let lane = lane(of: tp)
            guard (lag[tp] ?? 1) > 0, !stuckLanes.contains(lane), laneHasRoom(lane) else {
                stallWatch[tp] = nil
                continue
            }
            if let watch = stallWatch[tp], watch.next == own.next {
                if now - watch.since >= stallSeconds {
                    restart[tp] = start(own.next)
                    stallWatch[tp] = (own.next, now)
                }
            } else {
                stallWatch[tp] = (own.next, now)
            }
        }
        return restart
    }
}
