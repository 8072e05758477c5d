/// The arrays a record is decoded into (a scan's metric summaries and tag keys' bytes, a metrics
/// record's points), handed back once its rows are encoded and refilled by the next record: with
/// them a record costs no heap allocation once they have grown to the largest record seen (issue
/// #19). Mutable state of the one thread that decodes, anonymizes and encodes (one per
/// `RecordPreparer`). An array still referenced elsewhere when it is taken again is simply not
/// reused (copy on write), so a record's values never change under it.
public final class RecycledArrays {
    private var metricSummaries: [MetricSummary] = []
    private var tagKeyElements: [UInt8] = []
    private var metricPoints: [MetricPoint] = []

    public init() {}

    /// An empty array for a record's metric summaries, with the capacity of the last one.
    func takeMetricSummaries() -> [MetricSummary] { Self.take(&metricSummaries) }

    /// An empty array for a metrics record's points, with the capacity of the last one.
    func takeMetricPoints() -> [MetricPoint] { Self.take(&metricPoints) }

    /// No tag keys yet, in the room the last record's took (`TagKeys(reusing:)` empties it).
    func takeTagKeys() -> TagKeys {
        var taken: [UInt8] = []
        swap(&taken, &tagKeyElements)
        return TagKeys(reusing: consume taken)
    }

    /// A finished record's arrays, for the next one. A record without metrics or tags hands back
    /// an empty array while the spare is still here: the one with more room is kept.
    func recycle(metricSummaries: [MetricSummary], tagKeys: TagKeys) {
        if metricSummaries.capacity > self.metricSummaries.capacity { self.metricSummaries = metricSummaries }
        if tagKeys.elements.capacity > tagKeyElements.capacity { tagKeyElements = tagKeys.elements }
    }

    /// A finished metrics record's points, for the next one.
    func recycle(metricPoints points: [MetricPoint]) {
        if points.capacity > metricPoints.capacity { metricPoints = points }
    }

    private static func take<Element>(_ spare: inout [Element]) -> [Element] {
        var taken: [Element] = []
        swap(&taken, &spare)
        taken.removeAll(keepingCapacity: true)
        return taken
    }
}
