import Testing
@testable import CloudWasteStream

/// The cost-trend recompute's pacing: queued months wait the configured interval, a slow
/// recompute pushes the next one out to nine times its duration (at most a tenth of the time),
/// idle rounds come every 5 s, and a failure is retried after 4 s.
@Suite struct RecomputePacingTests {
    let t0 = ContinuousClock.now

    @Test func firstRecomputeIsDueAtOnce() {
        let pacing = RecomputePacing(interval: .seconds(1), now: t0)
        #expect(pacing.isDue(at: t0, queued: true))
        #expect(pacing.isDue(at: t0, queued: false))
    }

    @Test func fastRecomputesFollowTheInterval() {
        var pacing = RecomputePacing(interval: .seconds(1), now: t0)
        pacing.ran(from: t0, to: t0 + .milliseconds(20))
        let end = t0 + .milliseconds(20)
        #expect(!pacing.isDue(at: end + .milliseconds(999), queued: true))
        #expect(pacing.isDue(at: end + .seconds(1), queued: true))
        // Nothing queued: only the finalization tick.
        #expect(!pacing.isDue(at: end + .seconds(4), queued: false))
        #expect(pacing.isDue(at: end + .seconds(5), queued: false))
    }

    @Test func slowRecomputesTakeAtMostATenthOfTheTime() {
        var pacing = RecomputePacing(interval: .seconds(1), now: t0)
        let end = t0 + .milliseconds(400)
        pacing.ran(from: t0, to: end)
        #expect(!pacing.isDue(at: end + .milliseconds(3_599), queued: true))
        #expect(pacing.isDue(at: end + .milliseconds(3_600), queued: true))
        // Over a long backlog of ever slower recomputes, each started as soon as it is due:
        // recompute time / elapsed time stays at or below 1/10 (counted up to the next due time).
        var now = end
        var busy = Duration.milliseconds(400)
        for step in 1...50 {
            while !pacing.isDue(at: now, queued: true) { now += .milliseconds(10) }
            let duration = Duration.milliseconds(300 + 20 * step)
            pacing.ran(from: now, to: now + duration)
            now += duration
            busy += duration
        }
        while !pacing.isDue(at: now, queued: true) { now += .milliseconds(10) }
        #expect(busy * 10 <= now - t0)
        #expect(busy * 10 > now - t0 - .milliseconds(10 * 51))
    }

    @Test func theGapHasAnUpperBound() {
        var pacing = RecomputePacing(interval: .seconds(1), now: t0)
        let end = t0 + .seconds(30)
        pacing.ran(from: t0, to: end)
        #expect(!pacing.isDue(at: end + .seconds(59), queued: true))
        #expect(pacing.isDue(at: end + RecomputePacing.longestGap, queued: true))
    }

    @Test func failuresAndSkipsWaitBeforeTheNextTry() {
        var pacing = RecomputePacing(interval: .milliseconds(100), now: t0)
        pacing.failed(at: t0)
        #expect(!pacing.isDue(at: t0 + .milliseconds(3_900), queued: true))
        #expect(pacing.isDue(at: t0 + .seconds(4), queued: true))
        pacing.ran(from: t0 + .seconds(4), to: t0 + .milliseconds(4_005))
        pacing.skipped(at: t0 + .seconds(5))
        #expect(!pacing.isDue(at: t0 + .milliseconds(5_050), queued: true))
        #expect(pacing.isDue(at: t0 + .milliseconds(5_100), queued: true))
    }
}
