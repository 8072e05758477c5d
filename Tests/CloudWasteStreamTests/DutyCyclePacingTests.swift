import Testing
@testable import CloudWasteStream

/// The pacing of the cost-trend recompute and the status snapshot: with work waiting the busy
/// interval, a slow run pushes the next one out to nine times its duration (at most a tenth of the
/// time), idle rounds come at the idle interval, and a failure is retried after 4 s.
@Suite struct DutyCyclePacingTests {
    let t0 = ContinuousClock.now

    @Test func firstRecomputeIsDueAtOnce() {
        let pacing = DutyCyclePacing(busyInterval: .seconds(1), idleInterval: .seconds(5), now: t0)
        #expect(pacing.isDue(at: t0, workWaiting: true))
        #expect(pacing.isDue(at: t0, workWaiting: false))
    }

    @Test func fastRecomputesFollowTheInterval() {
        var pacing = DutyCyclePacing(busyInterval: .seconds(1), idleInterval: .seconds(5), now: t0)
        pacing.ran(from: t0, to: t0 + .milliseconds(20))
        let end = t0 + .milliseconds(20)
        #expect(!pacing.isDue(at: end + .milliseconds(999), workWaiting: true))
        #expect(pacing.isDue(at: end + .seconds(1), workWaiting: true))
        // No work waiting: the idle interval.
        #expect(!pacing.isDue(at: end + .seconds(4), workWaiting: false))
        #expect(pacing.isDue(at: end + .seconds(5), workWaiting: false))
    }

    @Test func slowRecomputesTakeAtMostATenthOfTheTime() {
        var pacing = DutyCyclePacing(busyInterval: .seconds(1), idleInterval: .seconds(5), now: t0)
        let end = t0 + .milliseconds(400)
        pacing.ran(from: t0, to: end)
        #expect(!pacing.isDue(at: end + .milliseconds(3_599), workWaiting: true))
        #expect(pacing.isDue(at: end + .milliseconds(3_600), workWaiting: true))
        // Over a long backlog of ever slower recomputes, each started as soon as it is due:
        // recompute time / elapsed time stays at or below 1/10 (counted up to the next due time).
        var now = end
        var busy = Duration.milliseconds(400)
        for step in 1...50 {
            while !pacing.isDue(at: now, workWaiting: true) { now += .milliseconds(10) }
            let duration = Duration.milliseconds(300 + 20 * step)
            pacing.ran(from: now, to: now + duration)
            now += duration
            busy += duration
        }
        while !pacing.isDue(at: now, workWaiting: true) { now += .milliseconds(10) }
        #expect(busy * 10 <= now - t0)
        #expect(busy * 10 > now - t0 - .milliseconds(10 * 51))
    }

    @Test func theGapHasAnUpperBound() {
        var pacing = DutyCyclePacing(busyInterval: .seconds(1), idleInterval: .seconds(5), now: t0)
        let end = t0 + .seconds(30)
        pacing.ran(from: t0, to: end)
        #expect(!pacing.isDue(at: end + .seconds(59), workWaiting: true))
        #expect(pacing.isDue(at: end + pacing.longestGap, workWaiting: true))
    }

    @Test func failuresAndSkipsWaitBeforeTheNextTry() {
        var pacing = DutyCyclePacing(busyInterval: .milliseconds(100), idleInterval: .seconds(5), now: t0)
        pacing.failed(at: t0)
        #expect(!pacing.isDue(at: t0 + .milliseconds(3_900), workWaiting: true))
        #expect(pacing.isDue(at: t0 + .seconds(4), workWaiting: true))
        pacing.ran(from: t0 + .seconds(4), to: t0 + .milliseconds(4_005))
        pacing.skipped(at: t0 + .seconds(5))
        #expect(!pacing.isDue(at: t0 + .milliseconds(5_050), workWaiting: true))
        #expect(pacing.isDue(at: t0 + .milliseconds(5_100), workWaiting: true))
    }
}
