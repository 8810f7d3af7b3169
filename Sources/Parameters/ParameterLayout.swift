/// One named tensor of a model: its shape and whether AdamW decays it.
public struct ParameterSpec: Sendable, Equatable, Codable {
    /// Megatron-style dotted name, e.g. `decoder.layers.0.mlp.linear_fc1.weight`.
    public var name: String
    /// Row-major shape.
    public var shape: [Int]
    /// Weight decay applies (matrices); false for biases and LayerNorm parameters, as Megatron.
    public var weightDecay: Bool

    public init(name: String, shape: [Int], weightDecay: Bool) {
        self.name = name
        self.shape = shape
        self.weightDecay = weightDecay
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
}

/// Where each named tensor lives inside one contiguous parameter buffer.
///
/// Parameters, gradients and optimizer moments all use the same layout, so a whole-model
/// operation (zeroing, an all-reduce, an optimizer shard) is a range of one buffer.
public struct ParameterLayout: Sendable {
    /// The tensors in buffer order.
    public let specs: [ParameterSpec]
    /// Start of each tensor, in floats, parallel to `specs`.
    public let offsets: [Int]
    /// Total floats.
    public let totalCount: Int
    private let indexByName: [String: Int]

    /// Lays the tensors out back to back in the given order. Names must be unique.
    public init(_ specs: [ParameterSpec]) {
        var offsets: [Int] = []
        var index: [String: Int] = [:]
        var total = 0
        for (i, spec) in specs.enumerated() {
            precondition(index[spec.name] == nil, "duplicate parameter name \(spec.name)")
            index[spec.name] = i
            offsets.append(total)
            total += spec.count
        }
        self.specs = specs
        self.offsets = offsets
        self.totalCount = total
        self.indexByName = index
    }

    /// Index of a named tensor, or nil.
    public func index(of name: String) -> Int? { indexByName[name] }

    /// Offset and spec of a named tensor; traps on an unknown name (a programming error).
    public func entry(_ name: String) -> (offset: Int, spec: ParameterSpec) {
        guard let i = indexByName[name] else { preconditionFailure("unknown parameter \(name)") }
        return (offsets[i], specs[i])
    }
}

/// A buffer laid out by a `ParameterLayout`: the parameters, or their gradients, or a moment.
public final class ParameterStore: @unchecked Sendable {
    /// The layout shared by every store of the same model.
    public let layout: ParameterLayout
    /// The storage.
    public let buffer: FloatBuffer

    /// Allocates a zeroed store for `layout`, of at least `capacity` floats: elements past the
    /// layout stay zero (padding that lets a data-parallel reduce-scatter and all-gather of
    /// equal shards work on the buffer itself).
    public init(layout: ParameterLayout, capacity: Int = 0) {
        self.layout = layout
        self.buffer = FloatBuffer(count: max(layout.totalCount, capacity))
    }

    /// A store with no storage, for what a model loaded for inference never uses (its
    /// gradients): `isAllocated` is false and no pointer into it may be taken.
    public static func unallocated(layout: ParameterLayout) -> ParameterStore {
        ParameterStore(layout: layout, buffer: FloatBuffer(count: 0))
    }

    private init(layout: ParameterLayout, buffer: FloatBuffer) {
        self.layout = layout
        self.buffer = buffer
    }

    /// Whether the store holds its layout's values (false for `unallocated`).
    public var isAllocated: Bool { buffer.count >= layout.totalCount }

    /// Pointer to the start of a named tensor.
    public subscript(name: String) -> UnsafeMutablePointer<Float> {
        buffer.pointer + layout.entry(name).offset
    }

    /// Pointer to the tensor at `index` in layout order.
    public func pointer(at index: Int) -> UnsafeMutablePointer<Float> {
        buffer.pointer + layout.offsets[index]
    }

    /// A copy of a named tensor's values.
    public func values(_ name: String) -> [Float] {
        let (offset, spec) = layout.entry(name)
        return Array(UnsafeBufferPointer(start: buffer.pointer + offset, count: spec.count))
    }

    /// Sets every element to zero.
    public func zero() { buffer.zero() }

    /// The first tensor in layout order holding a NaN or infinite value, with that value's
    /// position in the tensor; nil when every value is finite.
    public func firstNonFinite() -> (name: String, index: Int, value: Float)? {
        for (tensor, spec) in layout.specs.enumerated() {
            let values = UnsafeBufferPointer(start: pointer(at: tensor), count: spec.count)
            if let index = values.firstIndex(where: { !$0.isFinite }) {
                return (spec.name, index, values[index])
            }
        }
        return nil
    }
}
