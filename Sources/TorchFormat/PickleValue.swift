/// A value read from a Python pickle. Containers are reference types, as in Python: the pickle
/// fills a dict or list after memoizing it, and later references see the filled one.
public indirect enum PickleValue: @unchecked Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A class or function named by the pickle (`module.name`), not called.
    case global(module: String, name: String)
    /// An instance made by calling or instantiating `type` with `arguments` (kept, not run: a
    /// placeholder for classes the reader does not know), with the state `BUILD` gave it.
    case object(PickleObject)
    /// A tensor storage of a `torch.save` archive: persistent id `('storage', type, key, ...)`.
    case storage(TorchStorage)
    /// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`.
    case tensor(TorchTensor)

    /// The string, if this is one.
    public var string: String? { if case let .string(value) = self { value } else { nil } }
    /// The integer (or bool as 0/1), if this is one.
    public var int: Int? {
        switch self {
        case let .int(value): value
        case let .bool(value): value ? 1 : 0
        default: nil
        }
    }
    /// The number, if this is an integer or a float.
    public var double: Double? {
        switch self {
        case let .int(value): Double(value)
        case let .float(value): value
        default: nil
        }
    }
    /// The items of a tuple or list.
    public var items: [PickleValue]? {
        switch self {
        case let .tuple(values): values
        case let .list(list): list.values
        default: nil
        }
    }
    /// The entries of a dict, or of an object's dict state (`argparse.Namespace`, `OrderedDict`).
    public var entries: PickleDict? {
        switch self {
        case let .dict(dict): dict
        case let .object(object): object.state.flatMap { if case let .dict(dict) = $0 { dict } else { nil } } ?? object.dictItems
        default: nil
        }
    }
}

public final class PickleList {
    public var values: [PickleValue] = []
}

/// A dict in insertion order (keys are strings or integers in what `torch.save` writes).
public final class PickleDict {
    public private(set) var pairs: [(key: PickleValue, value: PickleValue)] = []
    private var index: [String: Int] = [:]

    public func set(_ key: PickleValue, _ value: PickleValue) {
        let name = Self.name(key)
        if let name, let at = index[name] {
            pairs[at].value = value
        } else {
            if let name { index[name] = pairs.count }
            pairs.append((key, value))
        }
    }

    /// The value at string key `key`.
    public subscript(_ key: String) -> PickleValue? { index[key].map { pairs[$0].value } }

    /// The string keys, in order.
    public var keys: [String] { pairs.compactMap { Self.name($0.key) } }

    private static func name(_ key: PickleValue) -> String? {
        switch key {
        case let .string(text): text
        case let .int(value): String(value)
        default: nil
        }
    }
}

/// An instance the reader did not construct: its class (or callable), arguments and state.
public final class PickleObject {
    public let type: PickleValue
    public let arguments: [PickleValue]
    public var state: PickleValue?
    /// Items added by SETITEM(S) to an object that is a dict subclass (`OrderedDict`).
    public var dictItems: PickleDict?

    init(type: PickleValue, arguments: [PickleValue]) {
        self.type = type
        self.arguments = arguments
    }
}

/// One storage of a `torch.save` archive: its element type and the archive entry with its bytes.
public struct TorchStorage: Sendable, Equatable {
    public var dtype: TorchDType
    public var key: String
    public var count: Int
}

/// A tensor: a strided view into a storage (element offsets and strides).
public struct TorchTensor: Sendable, Equatable {
    public var storage: TorchStorage
    public var offset: Int
    public var shape: [Int]
    public var stride: [Int]

    public var elementCount: Int { shape.reduce(1, *) }

    /// Whether the view is a plain one inside its storage: no negative offset, size or stride,
    /// no more elements than the storage holds, its last element inside it (checked without
    /// arithmetic that can overflow). Every tensor read must pass this first.
    public var fitsItsStorage: Bool {
        guard storage.count >= 0, offset >= 0, shape.allSatisfy({ $0 >= 0 }), stride.allSatisfy({ $0 >= 0 }) else { return false }
        var count = 1, last = offset
        for (size, step) in zip(shape, stride) {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow, product <= max(storage.count, 1) else { return false }
            count = product
            guard size > 0 else { continue }
            let (reach, overflow2) = step.multipliedReportingOverflow(by: size - 1)
            let (sum, overflow3) = last.addingReportingOverflow(reach)
            guard !overflow2, !overflow3 else { return false }
            last = sum
        }
        return count == 0 || last < storage.count
    }

    /// Whether the view is the row-major layout of its shape.
    public var isContiguous: Bool {
        var expected = 1
        for (size, step) in zip(shape, stride).reversed() where size != 1 {
            if step != expected { return false }
            expected *= size
        }
        return true
    }
}

/// Element types of tensor storages, named by their storage classes (`torch.FloatStorage`, ...).
public enum TorchDType: String, Sendable, CaseIterable {
    case float32 = "FloatStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage", float64 = "DoubleStorage"
    case int64 = "LongStorage", int32 = "IntStorage", int16 = "ShortStorage", int8 = "CharStorage", uint8 = "ByteStorage"
    case bool = "BoolStorage"

    public var byteSize: Int {
        switch self {
        case .float64, .int64: 8
        case .float32, .int32: 4
        case .float16, .bfloat16, .int16: 2
        case .int8, .uint8, .bool: 1
        }
    }
}
