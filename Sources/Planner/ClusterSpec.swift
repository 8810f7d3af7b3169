import FileSupport

/// A cluster the planner predicts for: identical nodes of identical devices.
///
/// Bandwidths are bytes/s in one direction: `intraNodeBandwidth` per device (NVLink/NVSwitch),
/// `interNodeBandwidth` per node (all its network adapters together, as collectives sustain it).
/// `gemmEfficiency` is the fraction of `peakFLOPs` a large GEMM sustains (a micro-benchmark's
/// figure; `GPUKernelCosts` adds the wave quantisation of smaller ones). Where each preset's
/// numbers come from: `ClusterSpec.presets`.
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
    /// A GEMM tile's fixed cost (loading its first operands, writing its result) in inner-dimension
    /// elements of its main loop: a product over `k` runs at `k / (k + gemmTileOverhead)` of the
    /// sustained rate.
    public var gemmTileOverhead = 0.0
    /// Streaming multiprocessors of one device: the GEMM model counts waves of output tiles over
    /// them. `nil` (a CPU, or a cluster file without the key) leaves quantisation out.
    public var streamingMultiprocessors: Int?
    /// Dense fp32 GEMM peak of one device (TF32 on A100 and H100), for `--fp32` layouts.
    public var fp32PeakFLOPs: Double
    /// The fraction of `memoryBandwidth` a streaming kernel sustains.
    public var memoryEfficiency = 1.0
    /// The fraction of `intraNodeBandwidth` a collective's ring inside a node sustains (NCCL's
    /// measured bus bandwidth against the links'). `interNodeBandwidth` is taken as measured.
    public var intraNodeEfficiency = 1.0
    /// The fraction of `peakFLOPs` FlashAttention's forward and backward sustain (`--use-flash-attn`);
    /// nil where it does not run or no figure was published (V100).
    public var flashAttentionEfficiency: Double?
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

    /// The built-in presets (one node each; `--nodes` sets the count). Every number is a datasheet
    /// figure or a published micro-benchmark, none is fitted to a training run. The GEMM model's
    /// two constants (`gemmEfficiency`, the main loop's share of peak, and `gemmTileOverhead`,
    /// 300 elements) are fitted to Azure's cuBLASLt sweep on the A100 80GB (fp16, random data:
    /// 1024^3 119.4, 2048^3 221.8, 4096^3 228.0, 8192^3 253.7, 16384^3 256.5 TFLOP/s; each
    /// reproduced within 5%); the other GPUs take the A100's tile overhead and scale their main loop
    /// to their own published GEMM figure.
    /// - `dgx2h-v100`: 16 V100 32GB at the DGX-2H's raised clocks (2.1 PFLOP/s fp16 per node,
    ///   131.25 per GPU against a standard V100's 125, as Megatron-LM 2019's "39 TFLOP/s, 30% of
    ///   peak" implies; 16.5 fp32, 80 SMs, 900 GB/s), NVSwitch 150 GB/s per GPU each way, 8 x 100
    ///   Gb/s InfiniBand per node (Megatron-LM 2019). GEMMs: 83 TFLOP/s, cuBLAS mixed precision on
    ///   a 125 TFLOP/s V100 (Markidis et al. 2018), taken as an 8192^3 product and scaled with the
    ///   clock;
    ///   streaming: saxpy 810 GB/s (GPUInspector.jl, V100 SXM2, 0.90). No V100 NCCL figure was
    ///   found: the A100's ratios are assumed (0.78 of NVSwitch, 0.96 of the network).
    /// - `dgx-a100-80gb`: 8 A100 80GB (312 TFLOP/s bf16, 156 TF32, 108 SMs, 2,039 GB/s), NVSwitch
    ///   300 GB/s per GPU each way, 8 x 200 Gb/s HDR per node (Selene, MT-NLG). GEMMs: the sweep
    ///   above (main loop 0.822 of peak); streaming: BabelStream triad 1.70 TB/s (Azure ND A100
    ///   v4, 0.834); NCCL all-reduce 234.9 GB/s bus bandwidth inside a node (nccl-tests, 0.783)
    ///   and 192 GB/s across DGX A100 nodes (NVIDIA, NCCL issue 812); FlashAttention-2 179.5
    ///   TFLOP/s (Azure's run of flash-attention's benchmark, batch 2, sequence 8192; 0.575).
    /// - `dgx-a100-40gb`: as the 80GB node with 40 GB at 1,555 GB/s (saxpy 1,280 GB/s,
    ///   GPUInspector.jl, 0.823).
    /// - `jean-zay-a100`: the 80GB A100 nodes BLOOM trained on: NVSwitch inside, 4 x 100 Gb/s
    ///   Omni-Path per node (48 GB/s at the DGX's measured 0.96).
    /// - `dgx-h100`: 8 H100 SXM (989 TFLOP/s bf16 dense, 494.7 TF32, 132 SMs, 3.35 TB/s),
    ///   NVSwitch 450 GB/s per GPU each way, 8 x 400 Gb/s per node. GEMMs: 794.5 TFLOP/s at
    ///   2048 x 2048 x 13312 (ml-engineering's MAMF table; main loop 0.821); streaming:
    ///   BabelStream triad 2.97 TB/s (Azure ND H100 v5, 0.887); NCCL ring 370 GB/s inside a node
    ///   (nccl-tests issue 212, 0.822); the network at the A100's 0.96; FlashAttention-2 327.9
    ///   TFLOP/s (Azure, as above; 0.332).
    /// - `dgx-h200`: 8 H200 SXM: the H100's die, SMs and clocks with 141 GB of HBM3e at 4.8 TB/s
    ///   (datasheet; 143,771 MiB as the GPU reports it, `cuda/results/`). GEMMs as the H100 (this project's cuBLAS bf16 8192^3 on an H200 measured
    ///   756-784 TFLOP/s, the model 784); the streaming, NVLink, network and FlashAttention shares
    ///   are the H100's, assumed (no H200 figure was found).
    public static let presets: [String: ClusterSpec] = {
        let v100 = gpu("dgx2h-v100", peak: 2.1e15 / 16, fp32: 15.7e12 * 1.05, units: 80, gemm: 0.688, memory: 32 * gib,
                       bandwidth: 0.9e12, streaming: 0.90, perNode: 16, intraNode: 150e9, intraNodeEfficiency: 0.783,
                       interNode: 0.96 * 100e9, flash: nil)
        let a100 = gpu("dgx-a100-80gb", peak: 312e12, fp32: 156e12, units: 108, gemm: 0.822, memory: 80 * gib,
                       bandwidth: 2.039e12, streaming: 0.834, perNode: 8, intraNode: 300e9,
                       intraNodeEfficiency: 0.783, interNode: 192e9, flash: 0.575)
        let h100 = gpu("dgx-h100", peak: 989e12, fp32: 494.7e12, units: 132, gemm: 0.821, memory: 80 * gib,
                       bandwidth: 3.35e12, streaming: 0.887, perNode: 8, intraNode: 450e9, intraNodeEfficiency: 0.822,
                       interNode: 0.96 * 400e9, flash: 0.332)
        // The variants: the same GPU with other memory, or the same node on another network.
        var a100small = a100
        (a100small.name, a100small.memoryBytes, a100small.memoryBandwidth, a100small.memoryEfficiency)
            = ("dgx-a100-40gb", 40 * gib, 1.555e12, 0.823)
        var jeanZay = a100
        (jeanZay.name, jeanZay.interNodeBandwidth) = ("jean-zay-a100", 0.96 * 50e9)
        var h200 = h100
        (h200.name, h200.memoryBytes, h200.memoryBandwidth) = ("dgx-h200", 143_771 * 1024 * 1024, 4.8e12)
        return Dictionary(uniqueKeysWithValues: [v100, a100, a100small, jeanZay, h100, h200].map { ($0.name, $0) })
    }()

    // swiftlint:disable:next function_parameter_count
    static func gpu(_ name: String, peak: Double, fp32: Double, units: Int, gemm: Double, memory: Double,
                    bandwidth: Double, streaming: Double, perNode: Int, intraNode: Double, intraNodeEfficiency: Double,
                    interNode: Double, flash: Double?) -> ClusterSpec {
        var spec = ClusterSpec(name: name, peakFLOPs: peak, memoryBytes: memory, memoryBandwidth: bandwidth,
                               devicesPerNode: perNode, nodes: 1, intraNodeBandwidth: intraNode, intraNodeLatency: 5e-6,
                               interNodeBandwidth: interNode, interNodeLatency: 10e-6, gemmEfficiency: gemm)
        (spec.fp32PeakFLOPs, spec.streamingMultiprocessors, spec.memoryEfficiency) = (fp32, units, streaming)
        (spec.intraNodeEfficiency, spec.flashAttentionEfficiency) = (intraNodeEfficiency, flash)
        spec.gemmTileOverhead = 300
        return spec
    }

    static let gib = 1024.0 * 1024 * 1024

    /// The JSON keys of a cluster file. Required: the peak, memory, bandwidths and latencies, and
    /// `devices_per_node`. Optional: `name`, `nodes` (default 1), `streaming_multiprocessors`
    /// (default: no tiles counted), `gemm_tile_overhead` (default 0), `fp32_peak_flops` (default
    /// half the peak), `flash_attention_efficiency` (default: none; `--use-flash-attn` needs it),
    /// and the sustained fractions `gemm_efficiency` (0.8), `memory_efficiency` (0.85) and
    /// `intra_node_efficiency` (0.8), near the A100's and H100's measured ones.
    public static let jsonKeys = ["name", "peak_flops", "memory_bytes", "memory_bandwidth", "devices_per_node",
                                  "nodes", "intra_node_bandwidth", "intra_node_latency",
                                  "inter_node_bandwidth", "inter_node_latency", "gemm_efficiency",
                                  "streaming_multiprocessors", "fp32_peak_flops", "memory_efficiency",
                                  "intra_node_efficiency", "flash_attention_efficiency", "gemm_tile_overhead"]

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
        gemmEfficiency = try number("gemm_efficiency", default: 0.8)
        fp32PeakFLOPs = try number("fp32_peak_flops", default: peakFLOPs / 2)
        memoryEfficiency = try number("memory_efficiency", default: 0.85)
        intraNodeEfficiency = try number("intra_node_efficiency", default: 0.8)
        if value["flash_attention_efficiency"] != nil {
            flashAttentionEfficiency = try number("flash_attention_efficiency")
        }
        for (key, fraction) in [("gemm_efficiency", gemmEfficiency), ("memory_efficiency", memoryEfficiency),
                                ("intra_node_efficiency", intraNodeEfficiency),
                                ("flash_attention_efficiency", flashAttentionEfficiency ?? 0)] where fraction > 1 {
            throw .invalid("\(source): \(key) must be at most 1")
        }
        if let field = value["gemm_tile_overhead"] {
            guard case let .number(x) = field, x >= 0, x.isFinite else {
                throw .invalid("\(source): \"gemm_tile_overhead\" must be a number >= 0")
            }
            gemmTileOverhead = x
        }
        if value["streaming_multiprocessors"] != nil {
            let units = try number("streaming_multiprocessors")
            guard units == units.rounded(), units <= 1_000_000 else {
                throw .invalid("\(source): streaming_multiprocessors must be an integer")
            }
            streamingMultiprocessors = Int(units)
        }
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
        fp32PeakFLOPs = peakFLOPs
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
