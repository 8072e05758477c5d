// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
/// The modules on the per-record path skip the run-time exclusivity checks in release builds
/// (swift_beginAccess was 3-4 % of `bench-decode`'s profile). Debug builds, and so the tests, keep
/// them: an overlapping access still traps there.
let hotPath: [SwiftSetting] = strict + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "cloudwaste-stream",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cloudwaste-stream", targets: ["cloudwaste-stream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),  // LogHandler.log(event:)
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // No traits: swift-configuration support is not used (our config reader is small and strict).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        // Child processes of the development tools and the tests (FilePath comes from swift-system).
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
    ],
    targets: [
        // C libraries from Debian, found with pkg-config. Each is imported by exactly one Swift module.
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // The one redaction step for every error and log line (below both wrappers).
        .target(name: "CloudWasteSecrets", swiftSettings: strict),
        // Thin wrappers: the only Swift code that touches librdkafka and libpq.
        .target(
            name: "CloudWasteKafka",
            dependencies: ["CRdKafka", "CloudWasteSecrets", .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath
        ),
        .target(
            name: "CloudWastePostgres",
            dependencies: ["CLibPQ", "CloudWasteSecrets", .product(name: "Logging", package: "swift-log")],
            swiftSettings: hotPath
        ),
        // The product: records, anonymization, windows (pure), pipeline, operations, HTTP.
        .target(
            name: "CloudWasteStream",
            dependencies: [
                "CloudWasteKafka", "CloudWastePostgres", "CloudWasteSecrets", "COpenSSL", "CZlib",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: hotPath
        ),
        // The operator's HTTP surface (Hummingbird): health, readiness, metrics, stats, status page, exports.
        .target(
            name: "CloudWasteHTTP",
            dependencies: [
                "CloudWasteStream", "CloudWastePostgres", "CloudWasteSecrets",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Development tools: the mock Kafka cluster, a scratch PostgreSQL and generated traffic,
        // for `demo`, `bench`, `generate` and the tests. Not part of the product modules.
        .target(
            name: "CloudWasteDevTools",
            dependencies: ["CloudWasteStream", "CloudWasteKafka", "CloudWastePostgres", "CRdKafka",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Subprocess", package: "swift-subprocess"),
                           .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cloudwaste-stream",
            dependencies: [
                "CloudWasteStream", "CloudWasteKafka", "CloudWastePostgres", "CloudWasteDevTools", "CloudWasteSecrets", "CloudWasteHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        .target(
            name: "TestSupport",
            dependencies: ["CloudWasteStream", "CloudWasteKafka", "CloudWastePostgres", "CloudWasteDevTools",
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "CloudWasteStreamTests",
            dependencies: ["CloudWasteStream", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["CloudWasteStream", "CloudWasteKafka", "CloudWastePostgres", "CloudWasteDevTools", "CloudWasteHTTP", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: strict
        ),
    ]
)
