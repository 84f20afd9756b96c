// swift-tools-version:6.1
// libFuzzer targets for tailgate's parsers of untrusted input: the ClientHello sniffer, the
// PROXY protocol decoder, the HTTP request head reader and the config loader (with its TOML parser). A package of its own so
// that it and its dependencies (NIOCore among them) are built with the sanitizers and coverage
// instrumentation, in a scratch folder of their own; `fuzz/run` builds and runs it.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "tailgate-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named, so that the products resolve whatever the checkout's folder is called.
        .package(name: "tailgate", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // libFuzzer's driver entry point, which each target's main calls.
        .target(name: "CFuzzerDriver"),
        // What the fuzz targets share: running libFuzzer, splitting an input into chunks, checking invariants.
        .target(name: "FuzzSupport", dependencies: ["CFuzzerDriver"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "FuzzClientHello",
            dependencies: [
                "FuzzSupport",
                .product(name: "TailgateWire", package: "tailgate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzProxyHeader",
            dependencies: [
                "FuzzSupport",
                .product(name: "TailgateWire", package: "tailgate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzHTTPRequestHead",
            dependencies: [
                "FuzzSupport",
                .product(name: "TailgateWire", package: "tailgate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzJSON",
            dependencies: [
                "FuzzSupport",
                .product(name: "TailgateWire", package: "tailgate"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "FuzzConfig",
            dependencies: [
                "FuzzSupport",
                .product(name: "TailgateConfig", package: "tailgate"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
