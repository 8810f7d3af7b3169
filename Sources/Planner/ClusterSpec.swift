import FileSupport

/// A cluster the planner predicts for: identical nodes of identical devices.
///
/// Bandwidths are bytes/s in one direction: `intraNodeBandwidth` per device (NVLink/NVSwitch),
/// `interNodeBandwidth` per node (all its network adapters together). `gemmEfficiency` is the
/// fraction of `peakFLOPs` the model's matrix products sustain; it is the one calibrated number
/// per preset (see `ClusterSpec.presets`).
public struct ClusterSpec: Sendable, Equatable {
    public var name: String
    /// Dense 16-bit (or, for `local`, fp32) peak FLOP/s of one device.
    public var peakFLOPs: Double
    public var memoryBytes: Double
    public var memoryBandwidth: Double
    public var devicesPerNode: Int
    public var nodes: Int
    public var intraNodeBandwidth: Double
    public var intraNodeLatency: Double
    public var interNodeBandwidth: Double
    public var interNodeLatency: Double
    public var gemmEfficiency: Double
    /// Whose buffers the memory prediction counts: Megatron's on GPUs (Korthikanti et al.'s
    /// activation table, Megatron's bytes per parameter) for the presets and JSON clusters, or
    /// this binary's own (`GPTMemory`'s buffer sizes) for `--cluster local`.
    public var implementation = Implementation.megatronGPU
    /// This machine's measured kernel costs (`--cluster local`): when present the iteration time
    /// is added up from them (`LocalStepTime`) instead of FLOPs at `gemmEfficiency`.
    public var kernelTimings: KernelTimings?
    /// What a process holds before it allocates anything (the binary and its libraries; for
    /// `--cluster local` the planner's own resident memory at its start), once per process.
    public var processBytes = 0.0

    /// An implementation profile of the memory prediction.
    public enum Implementation: String, Sendable, Equatable {
        /// Megatron-LM on GPUs: 16-bit activations, dropout masks, fused kernels.
        case megatronGPU
        /// This binary on the CPU: its flash-style attention, fp32 master weights in the model.
        case megatronSwift
    }

    /// Devices in the whole cluster.
    public var devices: Int { devicesPerNode * nodes }

    /// The built-in presets (one node each; `--nodes` sets the count):
    /// - `dgx2h-v100`: 16 V100 32GB (125 TFLOP/s fp16), NVSwitch 150 GB/s per GPU, 8 x 100 Gb/s
    ///   InfiniBand per node (Megatron-LM 2019). Efficiency 0.31: the paper's single-GPU baseline
    ///   sustains 39 TFLOP/s, 30% of peak.
    /// - `dgx-a100-80gb`: 8 A100 80GB (312 TFLOP/s bf16), NVSwitch 300 GB/s per GPU, 8 x 200 Gb/s
    ///   HDR per node (MT-NLG). Efficiency 0.48: one value fitted to MT-NLG's three published
    ///   iteration times together.
    /// - `dgx-h100`: 8 H100 SXM (989 TFLOP/s bf16 dense), NVSwitch 450 GB/s per GPU,
    ///   8 x 400 Gb/s per node. Efficiency 0.45 is an assumption (no published row checked).
    public static let presets: [String: ClusterSpec] = [
        "dgx2h-v100": ClusterSpec(name: "dgx2h-v100", peakFLOPs: 125e12, memoryBytes: 32 * gib,
                                  memoryBandwidth: 0.9e12, devicesPerNode: 16, nodes: 1,
                                  intraNodeBandwidth: 150e9, intraNodeLatency: 5e-6,
                                  interNodeBandwidth: 100e9, interNodeLatency: 10e-6, gemmEfficiency: 0.31),
        "dgx-a100-80gb": ClusterSpec(name: "dgx-a100-80gb", peakFLOPs: 312e12, memoryBytes: 80 * gib,
                                     memoryBandwidth: 2.0e12, devicesPerNode: 8, nodes: 1,
                                     intraNodeBandwidth: 300e9, intraNodeLatency: 5e-6,
                                     interNodeBandwidth: 200e9, interNodeLatency: 10e-6, gemmEfficiency: 0.48),
        "dgx-h100": ClusterSpec(name: "dgx-h100", peakFLOPs: 989e12, memoryBytes: 80 * gib,
                                memoryBandwidth: 3.35e12, devicesPerNode: 8, nodes: 1,
                                intraNodeBandwidth: 450e9, intraNodeLatency: 5e-6,
                                interNodeBandwidth: 400e9, interNodeLatency: 10e-6, gemmEfficiency: 0.45),
    ]

    static let gib = 1024.0 * 1024 * 1024

    /// The JSON keys of a cluster file, all required except `name`, `nodes` (default 1) and
    /// `gemm_efficiency` (default 0.5).
    public static let jsonKeys = ["name", "peak_flops", "memory_bytes", "memory_bandwidth", "devices_per_node",
                                  "nodes", "intra_node_bandwidth", "intra_node_latency",
                                  "inter_node_bandwidth", "inter_node_latency", "gemm_efficiency"]

    /// Reads a cluster description from JSON text; an unknown or missing key, or a value that is
    /// not a positive number, is an error naming it.
    public init(json text: String, source: String) throws(PlanError) {
        let value: JSONValue
        do { value = try JSONValue.parse(text) } catch { throw .invalid("\(source): \(error)") }
        guard case let .object(members) = value else { throw .invalid("\(source): expected a JSON object") }
        for member in members where !Self.jsonKeys.contains(member.key) {
            throw .invalid("\(source): unknown key \"\(member.key)\" (known: \(Self.jsonKeys.joined(separator: ", ")))")
        }
        func number(_ key: String, default fallback: Double? = nil) throws(PlanError) -> Double {
            guard let field = value[key] else {
                if let fallback { return fallback }
                throw .invalid("\(source): missing key \"\(key)\"")
            }
            guard case let .number(x) = field, x > 0, x.isFinite else {
                throw .invalid("\(source): \"\(key)\" must be a positive number")
            }
            return x
        }
        var name = source
        if let field = value["name"] {
            guard case let .string(text) = field else { throw .invalid("\(source): \"name\" must be a string") }
            name = text
        }
        self.name = name
        peakFLOPs = try number("peak_flops")
        memoryBytes = try number("memory_bytes")
        memoryBandwidth = try number("memory_bandwidth")
        let perNode = try number("devices_per_node"), count = try number("nodes", default: 1)
        guard perNode == perNode.rounded(), count == count.rounded(), perNode <= 4096, count <= 1_048_576 else {
            throw .invalid("\(source): devices_per_node and nodes must be integers (at most 4096 and 2^20)")
        }
        devicesPerNode = Int(perNode)
        nodes = Int(count)
        intraNodeBandwidth = try number("intra_node_bandwidth")
        intraNodeLatency = try number("intra_node_latency")
        interNodeBandwidth = try number("inter_node_bandwidth")
        interNodeLatency = try number("inter_node_latency")
        gemmEfficiency = try number("gemm_efficiency", default: 0.5)
        guard gemmEfficiency <= 1 else { throw .invalid("\(source): gemm_efficiency must be at most 1") }
    }

    public init(name: String, peakFLOPs: Double, memoryBytes: Double, memoryBandwidth: Double,
                devicesPerNode: Int, nodes: Int, intraNodeBandwidth: Double, intraNodeLatency: Double,
                interNodeBandwidth: Double, interNodeLatency: Double, gemmEfficiency: Double) {
        self.name = name
        self.peakFLOPs = peakFLOPs
        self.memoryBytes = memoryBytes
        self.memoryBandwidth = memoryBandwidth
        self.devicesPerNode = devicesPerNode
        self.nodes = nodes
        self.intraNodeBandwidth = intraNodeBandwidth
        self.intraNodeLatency = intraNodeLatency
        self.interNodeBandwidth = interNodeBandwidth
        self.interNodeLatency = interNodeLatency
        self.gemmEfficiency = gemmEfficiency
    }
}

/// A plan that cannot be made: bad input or a layout that does not fit the model or cluster.
public enum PlanError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalid(String)
    public var description: String {
        switch self {
        case let .invalid(reason): reason
        }
    }
}
