/// Where PostgreSQL says a partition's reading stands: the next offset to store, or nothing
/// committed yet (then reading starts where librdkafka's `auto.offset.reset` puts it). A type
/// rather than a sentinel, so "nothing yet" cannot be compared or added to by mistake; the
/// stream_offsets column keeps its `-1` for it, and only `OffsetStore` reads or writes that.
public enum NextOffset: Hashable, Sendable, CustomStringConvertible {
    case uncommitted
    case at(Int64)

    /// The offset, when there is one.
    public var offset: Int64? {
        if case .at(let o) = self { o } else { nil }
    }

    /// The offset, or 0 where "nothing yet" counts as the start (lag, caught-up checks).
    public var offsetOrZero: Int64 { offset ?? 0 }

    public var description: String {
        switch self {
        case .uncommitted: "uncommitted"
        case .at(let o): String(o)
        }
    }

    /// stream_offsets.next_offset's encoding: -1 for nothing committed.
    init(stored value: Int64) { self = value < 0 ? .uncommitted : .at(value) }
    var stored: Int64 { offset ?? -1 }
}
