public import Foundation

/// The last hour of the pipeline's progress, one sample every 5 s, in memory: the status page's
/// records/s and lag curves (an average over the uptime hides every change).
public struct StatusHistory: Sendable {
    public struct Sample: Sendable, Equatable {
        public var at: Date
        public var recordsCommitted: Int
        public var lag: Int64
    }

    public let capacity: Int
    public private(set) var samples: [Sample] = []

    public init(capacity: Int = 720) { self.capacity = capacity }

    public mutating func append(_ sample: Sample) {
        samples.append(sample)
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
    }

    /// Records/s between consecutive samples, stamped with the later one.
    public var rates: [(at: Date, perSecond: Double)] {
        zip(samples, samples.dropFirst()).compactMap { a, b in
            let seconds = b.at.timeIntervalSince(a.at)
            guard seconds > 0 else { return nil }
            return (b.at, Double(max(0, b.recordsCommitted - a.recordsCommitted)) / seconds)
        }
    }

    /// Records/s over the last `seconds` (nil with fewer than two samples in that span).
    public func rate(over seconds: Double, now: Date = Date()) -> Double? {
        let recent = samples.filter { now.timeIntervalSince($0.at) <= seconds + 1 }
        guard let first = recent.first, let last = recent.last, last.at > first.at else { return nil }
        return Double(max(0, last.recordsCommitted - first.recordsCommitted)) / last.at.timeIntervalSince(first.at)
    }
}
