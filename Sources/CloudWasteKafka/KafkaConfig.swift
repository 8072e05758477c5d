package import CRdKafka

/// librdkafka properties as given by the operator (any property passes through, so TLS and SASL
/// settings reach librdkafka unchanged). `description` hides secrets.
public struct KafkaConfig: Sendable, CustomStringConvertible {
    public var properties: [String: String]

    public init(_ properties: [String: String] = [:]) { self.properties = properties }

    public subscript(key: String) -> String? {
        get { properties[key] }
        set { properties[key] = newValue }
    }

    /// Returns a copy with `defaults` filled in where the operator set nothing.
    public func withDefaults(_ defaults: [String: String]) -> KafkaConfig {
        KafkaConfig(properties.merging(defaults) { mine, _ in mine })
    }

    public static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.contains("password") || k.contains("secret") || k.hasSuffix(".key.pem") || k.contains("sasl.oauthbearer.config")
    }

    public var description: String {
        properties.keys.sorted().map { "\($0)=\(Self.isSecret($0) ? "***" : properties[$0]!)" }.joined(separator: " ")
    }

    public enum Role: Sendable { case consumer, producer }

    /// Without the properties librdkafka documents for the other role only.
    public func forRole(_ role: Role) -> KafkaConfig {
        KafkaConfig(properties.filter { name, _ in
            switch KafkaPropertyCatalog.scopes[name] {
            case .consumer: role == .consumer
            case .producer: role == .producer
            default: true
            }
        })
    }

    /// Checks every property against librdkafka's own configuration (name, then value), without
    /// connecting: an unknown property or an impossible value is bad configuration.
    public func validate() throws(KafkaError) {
        for name in properties.keys.sorted() where KafkaPropertyCatalog.scopes[name] == nil && !KafkaPropertyCatalog.scopes.isEmpty {
            throw KafkaError(message: "unknown librdkafka property '\(name)' (see librdkafka's CONFIGURATION.md for the names)")
        }
        rd_kafka_conf_destroy(try makeNative())
    }

    /// Builds an `rd_kafka_conf_t`; a bad property names itself in the error.
    package func makeNative() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(message: "rd_kafka_conf_new failed") }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(message: "librdkafka property '\(key)': \(String(cString: errbuf))")
            }
        }
        return conf
    }
}
