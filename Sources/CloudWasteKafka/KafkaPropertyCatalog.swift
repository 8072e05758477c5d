import CRdKafka
#if canImport(Glibc)
import Glibc
#endif

/// librdkafka's own list of configuration properties (`rd_kafka_conf_properties_show`), read
/// once: which names exist, and whether each applies to consumers (C), producers (P) or both (*).
/// Lets an unknown property be refused before anything connects, and keeps a consumer-only
/// property (session.timeout.ms) away from the producer, which would warn about it.
enum KafkaPropertyCatalog {
    enum Scope: Sendable { case any, consumer, producer }

    static let scopes: [String: Scope] = {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { return [:] }
        rd_kafka_conf_properties_show(stream)
        fclose(stream)
        guard let buffer else { return [:] }
        defer { free(buffer) }
        var out: [String: Scope] = [:]
        for line in String(cString: buffer).split(separator: "\n") {
            let columns = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 3, let first = columns[0].first, first.isLetter, columns[0] != "Property" else { continue }
            switch columns[1] {
            case "C": out[columns[0]] = .consumer
            case "P": out[columns[0]] = .producer
            case "*": out[columns[0]] = .any
            default: continue
            }
        }
        return out
    }()
}

private extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

private extension Set where Element == Character {
    static let whitespaces: Set<Character> = [" ", "\t"]
}
