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

    static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return k.contains("password") || k.contains("secret") || k.hasSuffix(".key.pem") || k.contains("sasl.oauthbearer.config")
    }

    public var description: String {
        properties.keys.sorted().map { "\($0)=\(Self.isSecret($0) ? "***" : properties[$0]!)" }.joined(separator: " ")
    }

    /// Builds an `rd_kafka_conf_t`; a bad property names itself in the error.
    package func makeNative() throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(message: "rd_kafka_conf_new failed") }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(message: "Kafka setting '\(key)': \(String(cString: errbuf))")
            }
        }
        return conf
    }
}
