import Testing
@testable import CloudWasteStream

@Suite struct RetryTimerTests {
    @Test func dueAtOnceThenAfterTheIntervalUntilASuccess() {
        let t0 = ContinuousClock.now
        var timer = RetryTimer(every: .seconds(5))
        #expect(timer.isDue(at: t0))
        timer.attempted(at: t0)  // and it failed
        #expect(!timer.isDue(at: t0 + .seconds(4)))
        #expect(timer.isDue(at: t0 + .seconds(5)))
        timer.attempted(at: t0 + .seconds(5))
        timer.succeeded()
        #expect(timer.isDue(at: t0 + .seconds(5)))  // after a success: at once again
    }

    @Test func timersAreIndependent() {
        let t0 = ContinuousClock.now
        var deadLetters = RetryTimer(every: .seconds(5))
        let trends = RetryTimer(every: .seconds(5))
        deadLetters.attempted(at: t0)
        #expect(!deadLetters.isDue(at: t0 + .seconds(1)) && trends.isDue(at: t0 + .seconds(1)))
    }
}
