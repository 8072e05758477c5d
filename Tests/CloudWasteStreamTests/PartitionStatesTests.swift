import CloudWasteKafka
@testable import CloudWasteStream
import Testing

/// Every transition of the consumer's per-partition state machine, without Kafka or PostgreSQL.
@Suite struct PartitionStatesTests {
    typealias S = PartitionStates
    static let scans = "cloudwaste.scan-resources.v1"
    static func tp(_ p: Int32, _ topic: String = scans) -> TopicPartition { TopicPartition(topic: topic, partition: p) }
    static func claim(_ next: NextOffset, generation: Int64 = 1) -> OffsetStore.Claim { .init(nextOffset: next, generation: generation) }
    let a = Self.tp(0), b = Self.tp(1)

    func machine(lanes: Int = 1, startAtEnd: Bool = false) -> S {
        S(lanes: lanes, startWithoutHistory: startAtEnd ? KafkaOffset.end : KafkaOffset.beginning)
    }

    /// Partitions are dictionary keys looked up per message, hashed by their number, their topic's
    /// length and its last bytes: topics that share those (and bridged or non-ASCII names) must
    /// still be told apart.
    @Test func partitionsOfTopicsThatHashAlikeStayApart() {
        let topics = ["a.scan-resources.v1", "b.scan-resources.v1", "scan-resources.v1", "v1", "", "é.scan-resources.v1", "a.scan-resources.v2"]
        var index: [TopicPartition: Int] = [:]
        for (t, topic) in topics.enumerated() {
            for p in Int32(0)..<64 { index[Self.tp(p, topic)] = t * 100 + Int(p) }
        }
        #expect(index.count == topics.count * 64)
        for (t, topic) in topics.enumerated() {
            for p in Int32(0)..<64 { #expect(index[Self.tp(p, topic)] == t * 100 + Int(p)) }
        }
        let copy = TopicPartition(topic: String("a.scan-resources.v1".utf8.map { Character(UnicodeScalar($0)) }), partition: 3)
        #expect(copy == Self.tp(3, topics[0]) && copy.hashValue == Self.tp(3, topics[0]).hashValue)
    }

    // MARK: assignment and claims

    @Test func anAssignmentStartsEachClaimedPartitionWherePostgreSQLStands() {
        var m = machine()
        let (offsets, paused) = m.assigned([a, b], claims: [a: Self.claim(.at(10), generation: 3), b: Self.claim(.uncommitted)], privacyHeld: [])
        #expect(offsets == [a: 10, b: KafkaOffset.beginning])
        #expect(paused.isEmpty)
        #expect(m.states[a] == .reading(.init(generation: 3, next: .at(10)), gapRereadAt: nil))
        #expect(m.owned == [a: .at(10), b: .uncommitted])
        #expect(m.partitionsToClaim.isEmpty)
    }

    @Test func withoutHistoryAPartitionStartsAtLibrdkafkasResetPosition() {
        var m = machine(startAtEnd: true)
        #expect(m.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: []).offsets == [a: KafkaOffset.end])
    }

    @Test func aFailedClaimLeavesThePartitionsPausedUntilAClaimSucceeds() {
        var m = machine()
        let (offsets, paused) = m.assigned([a, b], claims: nil, privacyHeld: [b])
        #expect(offsets.isEmpty)
        #expect(paused == [a, b])
        #expect(Set(m.partitionsToClaim) == [a, b])
        #expect(m.message(a, offset: 0) == .skip)
        #expect(m.heldForPrivacy == 1)

        let actions = m.claimed([a: Self.claim(.at(5), generation: 2), b: Self.claim(.uncommitted, generation: 2)])
        #expect(actions == [.seek([a: 5, b: KafkaOffset.beginning], wait: true), .resume([a])])  // b still waits for privacy
        #expect(m.states[b] == .heldForPrivacy(.init(generation: 2, next: .uncommitted), readAgainFrom: nil))
        #expect(m.partitionsToClaim.isEmpty)
        #expect(m.message(a, offset: 5) == .add(generation: 2, expected: .at(5)))
    }

    @Test func aClaimForAPartitionNotWaitingForOneChangesNothing() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.at(1))], privacyHeld: [])
        #expect(m.claimed([a: Self.claim(.at(99), generation: 9)]).isEmpty)
        #expect(m.owned == [a: .at(1)])
    }

    @Test func anAssignmentBehindAStuckLaneStartsPaused() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.at(0))], privacyHeld: [])
        #expect(m.laneStuck(0) == [.pause([a])])
        #expect(m.assigned([b], claims: [b: Self.claim(.at(0))], privacyHeld: []).paused == [b])
    }

    // MARK: messages

    @Test func messagesAdvanceTheNextOffsetAndCarryWherePostgreSQLStood() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.uncommitted, generation: 4)], privacyHeld: [])
        #expect(m.message(a, offset: 7) == .add(generation: 4, expected: .uncommitted))  // first read: wherever librdkafka started
        #expect(m.message(a, offset: 8) == .add(generation: 4, expected: .at(8)))
        #expect(m.owned[a] == .at(9))
        #expect(m.message(a, offset: 8) == .skip)  // fetched before a seek
        #expect(m.message(b, offset: 0) == .skip)  // not assigned
    }

    @Test func aGapIsReReadOnceThenAccepted() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.at(10))], privacyHeld: [])
        #expect(m.message(a, offset: 12) == .reread(from: 10))
        #expect(m.message(a, offset: 13) == .skip)  // the rest of this poll is stale
        m.pollHandled()
        #expect(m.message(a, offset: 12) == .add(generation: 1, expected: .at(10)))  // the same gap again: real
        #expect(m.message(a, offset: 20) == .reread(from: 13))  // a new gap is re-read again
    }

    // MARK: fencing

    @Test func aFencedPartitionIsDiscardedPausedAndClaimedAgain() {
        var m = machine()
        _ = m.assigned([a, b], claims: [a: Self.claim(.at(3), generation: 5), b: Self.claim(.at(3), generation: 5)], privacyHeld: [])
        #expect(m.fenced([a: 5, b: 4]) == [.discard([a]), .pause([a])])  // b's batch was from an older generation
        #expect(m.partitionsToClaim == [a])
        #expect(m.message(a, offset: 3) == .skip)
        #expect(m.fenced([a: 5]).isEmpty)  // already unclaimed
        #expect(m.claimed([a: Self.claim(.at(3), generation: 6)]) == [.seek([a: 3], wait: true), .resume([a])])
        #expect(m.message(a, offset: 3) == .add(generation: 6, expected: .at(3)))
    }

    @Test func aClaimWhoseSeekFailedIsClaimedAgainKeepingItsPrivacyHold() {
        var m = machine()
        _ = m.assigned([a, b], claims: [a: Self.claim(.at(0)), b: Self.claim(.at(0))], privacyHeld: [b])
        m.unclaim([a, b])
        #expect(m.states[a] == .claiming(privacyHeld: false))
        #expect(m.states[b] == .claiming(privacyHeld: true))
    }

    // MARK: revocation

    @Test func aRevokedPartitionIsForgotten() {
        var m = machine()
        _ = m.assigned([a, b], claims: [a: Self.claim(.at(0)), b: Self.claim(.at(0))], privacyHeld: [b])
        _ = m.message(a, offset: 5)  // a gap: a is re-read this poll
        m.revoked([a, b])
        #expect(m.states.isEmpty)
        #expect(m.heldForPrivacy == 0)
        _ = m.assigned([a], claims: [a: Self.claim(.at(0))], privacyHeld: [])
        #expect(m.message(a, offset: 0) == .add(generation: 1, expected: .at(0)))  // nothing left over from before
    }

    // MARK: privacy catch-up

    @Test func aHeldPartitionIsReleasedWhereItStands() {
        var m = machine()
        let (_, paused) = m.assigned([a, b], claims: [a: Self.claim(.at(40)), b: Self.claim(.uncommitted)], privacyHeld: [a, b])
        #expect(paused == [a, b])
        #expect(m.heldForPrivacy == 2)
        #expect(!m.isReading(a))
        // Fetched before the pause took effect: skipped; b (no history) remembers where it began.
        #expect(m.message(a, offset: 40) == .skip)
        #expect(m.message(b, offset: 17) == .skip)
        #expect(m.message(b, offset: 18) == .skip)
        let actions = m.privacyCaughtUp()
        #expect(actions == [.resume([a, b]), .seek([a: 40, b: 17], wait: false)])
        #expect(m.heldForPrivacy == 0)
        #expect(m.message(b, offset: 17) == .add(generation: 1, expected: .uncommitted))
    }

    @Test func aHeldPartitionWithoutHistoryThatFetchedNothingIsResumedWithoutASeek() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: [a])
        #expect(m.privacyCaughtUp() == [.resume([a])])
    }

    @Test func thePrivacyReleaseOfAPartitionNotYetClaimedWaitsForTheClaim() {
        var m = machine()
        _ = m.assigned([a], claims: nil, privacyHeld: [a])
        #expect(m.privacyCaughtUp().isEmpty)
        #expect(m.states[a] == .claiming(privacyHeld: false))
        #expect(m.claimed([a: Self.claim(.at(2))]) == [.seek([a: 2], wait: true), .resume([a])])
    }

    @Test func aReleaseBehindAStuckLaneResumesOnlyWhenTheLaneHasRoom() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.at(9))], privacyHeld: [a])
        #expect(m.laneStuck(0) == [.pause([a])])
        #expect(m.privacyCaughtUp().isEmpty)  // released, but its lane is stuck
        #expect(m.laneHasRoom(0) == [.resume([a]), .seek([a: 9], wait: false)])
    }

    @Test func aPartitionWithoutHistoryReleasedBehindAStuckLaneRestartsWhereItsFirstMessageWas() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: [a])
        #expect(m.message(a, offset: 17) == .skip)  // fetched before the pause took effect
        #expect(m.laneStuck(0) == [.pause([a])])
        #expect(m.privacyCaughtUp().isEmpty)  // released, but its lane is stuck: not resumed yet
        #expect(m.laneHasRoom(0) == [.resume([a]), .seek([a: 17], wait: false)])  // not lost
        #expect(m.laneStuck(0) == [.pause([a])])
        #expect(m.laneHasRoom(0) == [.resume([a])])  // used once
    }

    @Test func aHeldPartitionWithoutHistoryFencedAndClaimedAgainStillRestartsWhereItsFirstMessageWas() {
        var m = machine(startAtEnd: true)
        _ = m.assigned([a], claims: [a: Self.claim(.uncommitted, generation: 1)], privacyHeld: [a])
        #expect(m.message(a, offset: 30) == .skip)
        #expect(m.fenced([a: 1]) == [.discard([a]), .pause([a])])
        #expect(m.privacyCaughtUp().isEmpty)  // not claimed: nothing to resume
        #expect(m.claimed([a: Self.claim(.uncommitted, generation: 2)]) == [.seek([a: 30], wait: true), .resume([a])])
        #expect(m.message(a, offset: 30) == .add(generation: 2, expected: .uncommitted))
    }

    @Test func readingFromTheFirstMessageForgetsTheRestartPoint() {
        var m = machine()
        _ = m.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: [a])
        _ = m.message(a, offset: 4)
        _ = m.laneStuck(0)
        _ = m.privacyCaughtUp()
        #expect(m.message(a, offset: 4) == .add(generation: 1, expected: .uncommitted))  // a prefetched message arrives first
        #expect(m.laneHasRoom(0) == [.resume([a]), .seek([a: 5], wait: false)])  // where it stands now
    }

    // MARK: lanes

    @Test func aStuckLanePausesOnlyItsOwnClaimedPartitions() {
        var m = machine(lanes: 2)
        let parts = (0..<8).map { Self.tp($0) }
        _ = m.assigned(parts, claims: Dictionary(uniqueKeysWithValues: parts.map { ($0, Self.claim(.at(1))) }), privacyHeld: [])
        let lane0 = Set(parts.filter { m.lane(of: $0) == 0 })
        #expect(!lane0.isEmpty && lane0.count < parts.count)
        #expect(m.laneStuck(0) == [.pause(lane0)])
        #expect(parts.allSatisfy { m.isReading($0) })  // still claimed and read: only paused in librdkafka
        #expect(m.laneHasRoom(0) == [.resume(lane0), .seek(Dictionary(uniqueKeysWithValues: lane0.map { ($0, 1) }), wait: false)])
        #expect(m.laneHasRoom(0).isEmpty)  // not stuck any more
    }

    // MARK: stall watchdog

    @Test func aLaggingPartitionThatDeliversNothingIsRestartedAfterTheStallTime() {
        var m = machine()
        _ = m.assigned([a, b], claims: [a: Self.claim(.at(5)), b: Self.claim(.at(5))], privacyHeld: [])
        let lag = [a: Int64(10), b: 0]
        #expect(m.stalled(now: 0, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 30).isEmpty)
        #expect(m.stalled(now: 29, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 30).isEmpty)
        #expect(m.stalled(now: 30, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 30) == [a: 5])  // b has no lag
        #expect(m.stalled(now: 31, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 30).isEmpty)  // the watch starts again
        _ = m.message(a, offset: 5)  // it moves: not stalled
        #expect(m.stalled(now: 61, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 30).isEmpty)
    }

    @Test func aPartitionWaitingForItsWriterOrForPrivacyIsNotStalled() {
        var m = machine()
        _ = m.assigned([a, b], claims: [a: Self.claim(.at(5)), b: Self.claim(.at(5))], privacyHeld: [b])
        let lag = [a: Int64(10), b: 10]
        // The lane has room and is not stuck: a (read) stalls, b (held for privacy) does not.
        _ = m.stalled(now: 0, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 1)
        #expect(m.stalled(now: 2, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 1) == [a: 5])
        // A full queue, then a stuck lane: nothing stalls.
        _ = m.stalled(now: 3, lag: lag, laneHasRoom: { _ in false }, stallSeconds: 1)
        #expect(m.stalled(now: 5, lag: lag, laneHasRoom: { _ in false }, stallSeconds: 1).isEmpty)
        _ = m.laneStuck(0)
        _ = m.stalled(now: 6, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 1)
        #expect(m.stalled(now: 9, lag: lag, laneHasRoom: { _ in true }, stallSeconds: 1).isEmpty)
    }

    @Test func aPartitionNeverFetchedCountsAsLaggingUnlessItStartsAtTheEnd() {
        var fromStart = machine()
        _ = fromStart.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: [])
        _ = fromStart.stalled(now: 0, lag: [:], laneHasRoom: { _ in true }, stallSeconds: 1)
        #expect(fromStart.stalled(now: 2, lag: [:], laneHasRoom: { _ in true }, stallSeconds: 1) == [a: KafkaOffset.beginning])
        var fromEnd = machine(startAtEnd: true)
        _ = fromEnd.assigned([a], claims: [a: Self.claim(.uncommitted)], privacyHeld: [])
        _ = fromEnd.stalled(now: 0, lag: [:], laneHasRoom: { _ in true }, stallSeconds: 1)
        #expect(fromEnd.stalled(now: 2, lag: [:], laneHasRoom: { _ in true }, stallSeconds: 1).isEmpty)
    }
}
