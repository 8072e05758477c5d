import Synchronization

/// Holds the daemon's metrics and renders them for /metrics in the Prometheus text
/// exposition format 0.0.4. Looking a metric up takes the registry lock; updating one
/// never does, so look metrics up once and keep the instances.
public final class MetricsRegistry: Sendable {
    private enum Kind: String { case counter, gauge, histogram }
    private enum Metric: Sendable {
        case counter(MetricCounter), gauge(MetricGauge), histogram(MetricHistogram)
    }
    private struct Family {
        let help: String
        let kind: Kind
        var series: [[String: String]: Metric] = [:]
    }

    private let families = Mutex<[String: Family]>([:])

    public init() {}

    /// The counter for `name` and `labels`, created on first use; later calls return the same instance.
    public func counter(_ name: String, help: String, labels: [String: String] = [:]) -> MetricCounter {
        guard case .counter(let metric) = lookup(name, help, .counter, labels, make: .counter(MetricCounter()))
        else { preconditionFailure("unreachable: kind checked in lookup") }
        return metric
    }

    /// The gauge for `name` and `labels`, created on first use; later calls return the same instance.
    public func gauge(_ name: String, help: String, labels: [String: String] = [:]) -> MetricGauge {
        guard case .gauge(let metric) = lookup(name, help, .gauge, labels, make: .gauge(MetricGauge()))
        else { preconditionFailure("unreachable: kind checked in lookup") }
        return metric
    }

    /// The histogram for `name` and `labels`, created on first use with `buckets` (upper bounds;
    /// `+Inf` is implicit); later calls return the same instance and ignore `buckets`.
    public func histogram(_ name: String, help: String, buckets: [Double],
                          labels: [String: String] = [:]) -> MetricHistogram {
        precondition(labels["le"] == nil, "\"le\" is reserved for histogram buckets")
        guard case .histogram(let metric) = lookup(name, help, .histogram, labels,
                                                   make: .histogram(MetricHistogram(bounds: buckets)))
        else { preconditionFailure("unreachable: kind checked in lookup") }
        return metric
    }

    private func lookup(_ name: String, _ help: String, _ kind: Kind, _ labels: [String: String],
                        make: @autoclosure () -> Metric) -> Metric {
        precondition(Self.isValidName(name, allowColon: true), "invalid metric name \"\(name)\"")
        for label in labels.keys {
            precondition(Self.isValidName(label, allowColon: false) && !label.hasPrefix("__"),
                         "invalid label name \"\(label)\" on \(name)")
        }
        return families.withLock { families in
            var family = families[name] ?? Family(help: help, kind: kind)
            precondition(family.kind == kind, "\(name) is already registered as a \(family.kind.rawValue)")
            if let existing = family.series[labels] { return existing }
            let metric = make()
            family.series[labels] = metric
            families[name] = family
            return metric
        }
    }

    /// The exposition text: families sorted by name, series sorted by their labels.
    public func render() -> String {
        let snapshot = families.withLock { $0 }  // values are read outside the lock
        var out = ""
        for (name, family) in snapshot.sorted(by: { $0.key < $1.key }) {
            out += "# HELP \(name) \(Self.escaped(family.help, quotes: false))\n"
            out += "# TYPE \(name) \(family.kind.rawValue)\n"
            let series = family.series
                .map { (labels: $0.key.sorted { $0.key < $1.key }, metric: $0.value) }
                .sorted { $0.labels.lexicographicallyPrecedes($1.labels) { ($0.key, $0.value) < ($1.key, $1.value) } }
            for (labels, metric) in series {
                let labelText = Self.labelText(labels)
                switch metric {
                case .counter(let counter):
                    out += "\(name)\(labelText) \(counter.value)\n"
                case .gauge(let gauge):
                    out += "\(name)\(labelText) \(Self.format(gauge.value))\n"
                case .histogram(let histogram):
                    let (counts, sum) = histogram.snapshot()
                    var cumulative = 0
                    for (bound, count) in zip(histogram.bounds + [.infinity], counts) {
                        cumulative += count
                        out += "\(name)_bucket\(Self.labelText(labels + [(key: "le", value: Self.format(bound))])) \(cumulative)\n"
                    }
                    out += "\(name)_sum\(labelText) \(Self.format(sum))\n"
                    out += "\(name)_count\(labelText) \(cumulative)\n"
                }
            }
        }
        return out
    }

    /// Metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names the same without colons.
    private static func isValidName(_ name: String, allowColon: Bool) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): true
            case UInt8(ascii: ":"): allowColon
            default: false
            }
        }
    }

    private static func labelText(_ labels: [(key: String, value: String)]) -> String {
        labels.isEmpty ? "" : "{" + labels.map { "\($0.key)=\"\(escaped($0.value, quotes: true))\"" }.joined(separator: ",") + "}"
    }

    /// Escapes `\` and newline (HELP text), plus `"` in label values.
    private static func escaped(_ s: String, quotes: Bool) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Integral values without a fraction (`le="1"`), otherwise Swift's shortest round-trip form.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// A monotonically increasing count (requests, records, errors); one relaxed atomic add per update.
public final class MetricCounter: Sendable {
    private let storage = Atomic<Int>(0)

    init() {}

    public func increment(by amount: Int = 1) {
        precondition(amount >= 0, "counters only go up")
        storage.wrappingAdd(amount, ordering: .relaxed)
    }

    public var value: Int { storage.load(ordering: .relaxed) }
}

/// A value that goes up and down (lag, queue depth); a Double kept atomically as its bit pattern.
public final class MetricGauge: Sendable {
    private let bits = Atomic<UInt64>(0)

    init() {}

    public func set(_ value: Double) { bits.store(value.bitPattern, ordering: .relaxed) }

    public func add(_ delta: Double) {
        var old = bits.load(ordering: .relaxed)
        while true {
            let new = (Double(bitPattern: old) + delta).bitPattern
            let (exchanged, current) = bits.compareExchange(expected: old, desired: new, ordering: .relaxed)
            if exchanged { return }
            old = current
        }
    }

    public var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }
}

/// A distribution (latencies, sizes) in fixed buckets. Its own small lock keeps buckets,
/// sum and count consistent with each other without touching the registry.
public final class MetricHistogram: Sendable {
    /// Finite upper bounds, ascending; the `+Inf` bucket is implicit.
    let bounds: [Double]
    private let state: Mutex<(counts: [Int], sum: Double)>

    init(bounds: [Double]) {
        precondition(!bounds.contains(where: \.isNaN), "histogram bucket bounds must not be NaN")
        self.bounds = Array(Set(bounds.filter { $0 != .infinity })).sorted()
        state = Mutex((counts: Array(repeating: 0, count: self.bounds.count + 1), sum: 0))
    }

    public func observe(_ value: Double) {
        let bucket = bounds.firstIndex { value <= $0 } ?? bounds.count
        state.withLock {
            $0.counts[bucket] += 1
            $0.sum += value
        }
    }

    public var count: Int { state.withLock { $0.counts.reduce(0, +) } }
    public var sum: Double { state.withLock { $0.sum } }

    /// Per-bucket (non-cumulative) counts, `+Inf` last, and the sum, taken together.
    func snapshot() -> (counts: [Int], sum: Double) { state.withLock { $0 } }
}
