// swift-tools-version:6.1
import PackageDescription
import Foundation

// Eddy compiles against Debian's librdkafka headers but must run with a current librdkafka
// (Debian's 2.0.2 cannot talk to Tansu; DESIGN.md §2). scripts/setup puts one in
// tools/librdkafka; this rpath makes every Eddy binary find it before the system copy.
// A deployment elsewhere can override it with LD_LIBRARY_PATH.
let packageDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let librdkafkaRuntime: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "-rpath", "-Xlinker", "\(packageDirectory)/tools/librdkafka"])
]

let package = Package(
    name: "Eddy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "eddy", targets: ["eddy"]),
        .library(name: "EddyStreams", targets: ["EddyStreams"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // Without its default traits Hummingbird does not build swift-configuration, which
        // Eddy does not use (traits need tools 6.1).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),

        .target(name: "EddyKafka", dependencies: ["CRdKafka"]),
        .target(name: "EddyState", dependencies: ["CRocksDB"]),
        .target(name: "EddyRedis", dependencies: ["CHiredis"]),
        // The HTTP layer (Hummingbird on NIO) for /metrics and the query endpoint; its API
        // has no NIO types, so the runtime that starts it never imports NIO.
        .target(
            name: "EddyHTTP",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EddyStreams",
            dependencies: [
                "EddyKafka", "EddyState", "EddyRedis", "EddyHTTP",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The per-record loop touches thread-owned class state; Swift's dynamic
            // exclusivity checks on it cost ~8% of the stream thread (perf, 1M records).
            // Each stream thread owns its objects, so no access can overlap.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(
            name: "EddyConfig",
            dependencies: ["EddyStreams", "EddyKafka", "EddyRedis", "EddyRecs", "EddyServe", .product(name: "Yams", package: "Yams")]
        ),
        .target(name: "EddyGen", dependencies: ["EddyKafka"]),
        // Scoring from the materialized state: one implementation for eddy recommend,
        // eddy eval and the query endpoint.
        .target(name: "EddyRecs", dependencies: ["EddyRedis"]),
        // eddy serve: event ingest and the query endpoint over HTTP.
        .target(
            name: "EddyServe",
            dependencies: [
                "EddyStreams", "EddyKafka", "EddyRedis", "EddyHTTP", "EddyRecs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "eddy",
            dependencies: [
                "EddyStreams", "EddyConfig", "EddyGen", "EddyHTTP", "EddyRecs", "EddyServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: librdkafkaRuntime
        ),
        .testTarget(
            name: "EddyTests",
            dependencies: [
                "EddyStreams", "EddyConfig", "EddyHTTP", "EddyGen", "EddyRecs", "EddyServe", "EddyTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            linkerSettings: librdkafkaRuntime
        ),
        // Independent references (brute-force models) both test targets compare against.
        .target(name: "EddyTestSupport", path: "Tests/EddyTestSupport"),
        .testTarget(
            name: "EddyIntegrationTests",
            dependencies: ["EddyStreams", "EddyConfig", "EddyGen", "EddyHTTP", "EddyRecs", "EddyServe", "eddy", "EddyTestSupport"],
            linkerSettings: librdkafkaRuntime
        ),
    ]
)
