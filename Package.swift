// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// The relay's hot path in release builds runs without dynamic exclusivity checks: there is one per access to
/// a session's stored properties, and they were most of the instructions of a relayed request (see
/// docs/performance.md). Debug builds, and so every test, keep them.
let relaySettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "tailgate",
    products: [
        .executable(name: "tailgate", targets: ["tailgate"]),
        .library(name: "TailgateWire", targets: ["TailgateWire"]),
        .library(name: "TailgateConfig", targets: ["TailgateConfig"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // System libraries, linked from Debian's packages.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CNftables", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        // Linux calls the splice relay needs that the Glibc module does not import (splice, pipe2, epoll, eventfd).
        .target(name: "CTailgateLinux"),
        // Process-wide pieces every part that does I/O shares: system-call errors, the log writer, signal dispositions.
        .target(
            name: "TailgateSystem",
            dependencies: [
                "CTailgateLinux", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Pure: TOML 1.0 with source positions.
        .target(name: "TailgateTOML", swiftSettings: swiftSettings),
        // Pure: the config model and its validation.
        .target(
            name: "TailgateConfig",
            dependencies: ["TailgateTOML", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Pure: ClientHello sniffing and PROXY protocol v1/v2.
        .target(
            name: "TailgateWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TailgateProxy",
            dependencies: [
                "TailgateConfig", "TailgateWire", "TailgateSystem", "CTailgateLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: relaySettings
        ),
        // One active check of an upstream server: TCP connect or a TLS handshake through the system OpenSSL.
        .target(
            name: "TailgateProbe",
            dependencies: ["COpenSSL", "TailgateWire", "TailgateSystem", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // The desired nftables table and netlink apply / read-back.
        .target(name: "TailgateFirewall", dependencies: ["CNftables", "TailgateConfig"], swiftSettings: swiftSettings),
        .target(
            name: "TailgateAgent",
            dependencies: [
                "TailgateTOML", "TailgateConfig", "TailgateProxy", "TailgateFirewall", "TailgateProbe", "TailgateSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line clients beside the daemon: `tailgate status` (asks the health endpoint) and
        // `tailgate firewall plan|apply|status|flush`.
        .target(
            name: "TailgateCommands",
            dependencies: [
                "TailgateAgent", "TailgateConfig", "TailgateFirewall", "TailgateSystem",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tailgate",
            dependencies: [
                "TailgateAgent", "TailgateCommands", "TailgateConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the test targets share: child processes and commands, waiting with a deadline, ports, a test CA,
        // seeded random bytes, /proc files read whole.
        .target(name: "TailgateTestSupport", path: "Tests/TailgateTestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "TailgateTOMLTests", dependencies: ["TailgateTOML"], swiftSettings: swiftSettings),
        .testTarget(name: "TailgateConfigTests", dependencies: ["TailgateConfig", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .testTarget(
            name: "TailgateWireTests", dependencies: ["TailgateWire", "TailgateTestSupport"], exclude: ["Captures"], swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TailgateProxyTests",
            dependencies: [
                "TailgateProxy", "TailgateConfig", "TailgateSystem", "TailgateTestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "TailgateFirewallTests", dependencies: ["TailgateFirewall", "TailgateConfig", "CNftables", "TailgateTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TailgateProbeTests",
            dependencies: ["TailgateProbe", "TailgateWire", "TailgateTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TailgateAgentTests",
            dependencies: [
                "TailgateAgent", "TailgateConfig", "TailgateProxy", "TailgateSystem",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TailgateSystemTests",
            dependencies: ["TailgateSystem", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "IntegrationTests", dependencies: ["TailgateConfig", "TailgateTestSupport"], swiftSettings: swiftSettings),
    ]
)
