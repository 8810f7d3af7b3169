import Accelerator
import Parameters

/// One kernel call run twice, on the CPU (host buffers) and on the GPU (managed buffers), from
/// the same random inputs: the largest difference of each output, relative to the output's
/// largest magnitude (‖gpu − cpu‖∞ / ‖cpu‖∞).
public struct KernelComparison: Sendable {
    /// The kernel, e.g. "LayerNorm.backward".
    public let name: String
    /// The shape it ran on, e.g. "rows 37, channels 72".
    public let shape: String
    /// Float inputs and outputs by name, with their starting values (outputs that accumulate
    /// start from random values too).
    let floats: [String: [Float]]
    /// Int32 inputs (token ids, targets).
    let ints: [String: [Int32]]
    /// The names in `floats` the kernel writes.
    let outputs: [String]
    /// The call, on pointers to the named buffers.
    let body: @Sendable (Operands) -> Void
    /// The largest accepted error where the fp32 tolerance cannot hold (bf16 cases, whose
    /// roundings may land on different sides of a boundary), or nil: the check's fp32 tolerance.
    let ownTolerance: Double?

    init(name: String, shape: String, floats: [String: [Float]], ints: [String: [Int32]], outputs: [String],
         tolerance: Double? = nil, body: @escaping @Sendable (Operands) -> Void) {
        self.name = name
        self.shape = shape
        self.floats = floats
        self.ints = ints
        self.outputs = outputs
        self.ownTolerance = tolerance
        self.body = body
    }

    /// The buffers of one run, by name.
    public struct Operands {
        let floats: [String: FloatBuffer]
        let ints: [String: Int32Buffer]
        subscript(_ name: String) -> UnsafeMutablePointer<Float> { floats[name]!.pointer }
        func int(_ name: String) -> UnsafeMutablePointer<Int32> { ints[name]!.pointer }
    }

    /// The outcome: the worst output's error.
    public struct Result: Codable, Sendable {
        public let name: String
        public let shape: String
        public let error: Double
        public let worstOutput: String
        /// The case's own tolerance (a bf16 case), or nil.
        public let tolerance: Double?
    }

    /// Runs the call on the CPU and on `GPU.active` and compares the outputs.
    public func run() -> Result {
        let reference = GPU.withCPU { execute() }
        let device = execute()
        var worst = (error: 0.0, name: "")
        for name in outputs {
            let (cpu, gpu) = (reference[name]!, device[name]!)
            let scale = cpu.reduce(0) { max($0, Double(abs($1))) }
            var difference = 0.0
            for i in cpu.indices {
                let d = Double(abs(gpu[i] - cpu[i]))
                difference = d.isNaN || gpu[i].isNaN != cpu[i].isNaN ? .infinity : max(difference, d)
            }
            let error = scale > 0 ? difference / scale : difference
            if error >= worst.error || worst.name.isEmpty { worst = (error, name) }
        }
        return Result(name: name, shape: shape, error: worst.error, worstOutput: worst.name, tolerance: ownTolerance)
    }

    /// One run on buffers allocated wherever the kernels now compute; returns the outputs.
    private func execute() -> [String: [Float]] {
        var floatBuffers = [String: FloatBuffer]()
        for (name, values) in floats {
            let buffer = FloatBuffer(count: values.count, zeroed: false)
            values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: values.count) }
            floatBuffers[name] = buffer
        }
        var intBuffers = [String: Int32Buffer]()
        for (name, values) in ints {
            let buffer = Int32Buffer(count: values.count)
            values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: values.count) }
            intBuffers[name] = buffer
        }
        body(Operands(floats: floatBuffers, ints: intBuffers))
        return Dictionary(uniqueKeysWithValues: outputs.map { ($0, floatBuffers[$0]!.array) })
    }
}
