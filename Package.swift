// swift-tools-version: 6.0
import PackageDescription

/// Release builds: no bounds/overflow checks in the hot loops and AVX-512 code generation.
/// `-target-cpu native` ties the binary to the build machine's CPU family (see TOOLCHAIN.md);
/// set MEGATRON_TARGET_CPU to build for another one (e.g. `x86-64-v3`).
let targetCPU = Context.environment["MEGATRON_TARGET_CPU"] ?? "native"
let releaseFlags: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked", "-target-cpu", targetCPU],
                 .when(configuration: .release)),
]
/// The kernels are optimized in debug builds too (with their checks: `-O`, not `-Ounchecked`), so
/// the test suite's training runs do not spend their time in unoptimized SIMD loops.
let kernelFlags: [SwiftSetting] = releaseFlags + [.unsafeFlags(["-O"], .when(configuration: .debug))]
/// Code that reads users' files keeps its bounds and precondition checks in release builds.
let checkedReleaseFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", targetCPU], .when(configuration: .release)),
]

let package = Package(
    name: "megatron-swift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "megatron", targets: ["megatron"]),
        .library(name: "Kernels", targets: ["Kernels"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Tokenizer", targets: ["Tokenizer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        // oneDNN (Debian ships no pkg-config file for it): the bf16 GEMM under Kernels.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .target(name: "FileSupport", swiftSettings: checkedReleaseFlags),
        // YAML configs read into FileSupport's JSONValue (training and curation configs).
        .target(name: "YAMLSupport", dependencies: ["FileSupport", .product(name: "Yams", package: "Yams")],
                swiftSettings: checkedReleaseFlags),
        // The CUDA backend: loads libmegatron_cuda.so (cuda/, built by scripts/cuda/build-kernels.sh) at run time.
        .target(name: "Accelerator", swiftSettings: checkedReleaseFlags),
        .target(name: "Kernels", dependencies: ["CBLAS", "CDNNL", "Accelerator"], swiftSettings: kernelFlags),
        .target(name: "TorchFormat", dependencies: ["FileSupport"], swiftSettings: checkedReleaseFlags),
        .target(name: "Parameters", dependencies: ["FileSupport", "Accelerator"], swiftSettings: releaseFlags),
        .target(name: "Tokenizer", dependencies: ["FileSupport"], swiftSettings: releaseFlags),
        .target(name: "Datasets", dependencies: ["FileSupport", "Tokenizer"], swiftSettings: checkedReleaseFlags),
        .target(name: "Models", dependencies: ["Accelerator", "Kernels", "Parameters", "Distributed"], swiftSettings: releaseFlags),
        .target(name: "Optimizer", dependencies: ["Kernels", "Parameters", "Distributed", "Accelerator"], swiftSettings: releaseFlags),
        .target(name: "Distributed", dependencies: ["CMPI", "Kernels"], swiftSettings: releaseFlags),
        .target(name: "Training", dependencies: ["Accelerator", "Kernels", "Parameters", "Models", "Optimizer", "Datasets", "FileSupport", "Distributed", "Pipeline",
                                          "TorchFormat", "Tokenizer", "YAMLSupport"],
                swiftSettings: releaseFlags),
        .target(name: "Pipeline", swiftSettings: releaseFlags),
        .target(name: "Planner", dependencies: ["Models", "Kernels", "FileSupport", "Distributed"], swiftSettings: releaseFlags),
        .target(name: "Evaluation", dependencies: ["Models", "Kernels", "FileSupport", "Datasets", "Tokenizer"],
                swiftSettings: checkedReleaseFlags),
        // Fine-tuning BERT on downstream tasks (Megatron-LM's tasks/): readers, heads' training loop.
        .target(name: "Finetuning", dependencies: ["Models", "Kernels", "Optimizer", "Parameters", "Tokenizer", "FileSupport",
                                            "Evaluation", "Training"],
                swiftSettings: checkedReleaseFlags),
        .target(name: "Serving", dependencies: ["Models", "Kernels", "Tokenizer", "FileSupport", "Parameters",
                                         .product(name: "Hummingbird", package: "hummingbird")],
                swiftSettings: checkedReleaseFlags),
        // The training dashboard: metrics files read as they grow, plots as SVG, served by Hummingbird.
        .target(name: "Dashboard", dependencies: ["FileSupport", .product(name: "Hummingbird", package: "hummingbird")],
                swiftSettings: checkedReleaseFlags),
        // Data curation: filters, exact and MinHash dedup, decontamination (reads users' files).
        .target(name: "Curation", dependencies: ["Datasets", "FileSupport", "Tokenizer", "YAMLSupport"], swiftSettings: checkedReleaseFlags),
        .target(name: "Measurement", dependencies: ["Accelerator", "FileSupport", "Kernels", "Parameters", "Models", "Optimizer", "Planner"],
                swiftSettings: releaseFlags),
        .executableTarget(
            name: "megatron",
            dependencies: ["Accelerator", "Kernels", "Parameters", "Models", "Optimizer", "Planner", "Tokenizer", "Datasets", "FileSupport", "Training", "Distributed", "Measurement", "Evaluation", "Serving",
                           "Curation", "Dashboard", "Finetuning", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: releaseFlags),
        .target(name: "TestSupport", dependencies: ["Parameters", "Models"], path: "Tests/TestSupport"),
        .testTarget(name: "DataTests", dependencies: ["Tokenizer", "Datasets", "FileSupport"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Datasets", "Tokenizer", "FileSupport", "Models", "Parameters", "Optimizer", "Distributed", "Kernels", "Planner", "TorchFormat", "Measurement", "TestSupport"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
        .testTarget(name: "CurationTests", dependencies: ["Curation", "Datasets", "FileSupport", "Tokenizer", "TestSupport"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
        .testTarget(name: "DistributedTests", dependencies: ["Distributed", "Kernels"], swiftSettings: releaseFlags),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"], swiftSettings: releaseFlags),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "Models"], exclude: ["Fixtures"],
                    swiftSettings: releaseFlags),
        .testTarget(name: "KernelTests", dependencies: ["Accelerator", "Kernels", "Parameters", "TestSupport"],
                    swiftSettings: releaseFlags),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Training", "Tokenizer", "Datasets", "FileSupport", "Models", "TestSupport"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
        .testTarget(name: "ServingTests", dependencies: ["Serving", "Evaluation", "Training", "Tokenizer", "FileSupport", "Models", "TestSupport"],
                    swiftSettings: releaseFlags),
        .testTarget(name: "ModelTests", dependencies: ["Kernels", "Parameters", "Models", "Optimizer", "TestSupport", "Distributed"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
        .testTarget(name: "DashboardTests", dependencies: ["Dashboard", "FileSupport",
                                                         .product(name: "HummingbirdTesting", package: "hummingbird")],
                    swiftSettings: releaseFlags),
        .testTarget(name: "FinetuningTests", dependencies: ["Finetuning", "Training", "Models", "Distributed", "Tokenizer", "Parameters", "FileSupport", "TestSupport"],
                    exclude: ["Fixtures"], swiftSettings: releaseFlags),
    ]
)
