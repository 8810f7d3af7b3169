import FileSupport

/// What `TorchSave` can write: the values of a Megatron-LM checkpoint.
public indirect enum TorchSaveValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case tuple([TorchSaveValue])
    /// A plain dict with string keys, in order.
    case dict([(String, TorchSaveValue)])
    /// `collections.OrderedDict` (a state dict).
    case orderedDict([(String, TorchSaveValue)])
    /// `argparse.Namespace` with these attributes.
    case namespace([(String, TorchSaveValue)])
    /// A contiguous fp32 tensor of `shape`.
    case tensor(shape: [Int], values: [Float])
    /// A module attribute (`torch.float32`).
    case global(module: String, name: String)
}

/// Writes an object as `torch.save` does (PyTorch's ZIP format: `<archive>/data.pkl` with
/// pickle protocol 2, each tensor's storage in `<archive>/data/<key>`, `byteorder`, `version`),
/// loadable by `torch.load(..., weights_only=False)`, written atomically.
public enum TorchSave {
    public static func write(_ value: TorchSaveValue, to path: String) throws(FileError) {
        try write(value, to: path, zip64Above: 0xFFFF_FFFE)
    }

    /// `write` with ZIP64 fields for whatever passes `limit` bytes (tests lower it).
    static func write(_ value: TorchSaveValue, to path: String, zip64Above limit: Int) throws(FileError) {
        var pickle = PickleWriter()
        pickle.write(value)
        let archive = String(path.split(separator: "/").last?.split(separator: ".").first ?? "archive")
        var zip = try ZipWriter(path: path, zip64Above: limit)
        func add(_ name: String, _ bytes: [UInt8]) throws(FileError) {
            try rethrowing(bytes.withUnsafeBytes { raw in capture { () throws(FileError) in try zip.add(name, raw) } })
        }
        try add(archive + "/data.pkl", pickle.bytes)
        try add(archive + "/byteorder", Array("little".utf8))
        for (key, values) in pickle.storages {
            try rethrowing(values.withUnsafeBytes { raw in capture { () throws(FileError) in try zip.add(archive + "/data/\(key)", raw) } })
        }
        try add(archive + "/version", Array("3\n".utf8))
        try zip.finish()
    }
}

/// Pickle protocol 2 for `TorchSaveValue`s; tensors become persistent storage references whose
/// data is collected in `storages`.
struct PickleWriter {
    private(set) var bytes: [UInt8] = [0x80, 0x02]
    private(set) var storages: [(key: String, values: [Float])] = []

    mutating func write(_ value: TorchSaveValue) {
        emit(value)
        bytes.append(0x2E)  // STOP
    }

    private mutating func emit(_ value: TorchSaveValue) {
        switch value {
        case .none: bytes.append(0x4E)
        case let .bool(flag): bytes.append(flag ? 0x88 : 0x89)
        case let .int(number): integer(number)
        case let .float(number):
            bytes.append(0x47)
            let bits = number.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((bits >> UInt64(shift)) & 0xFF)) }
        case let .string(text):
            let utf8 = Array(text.utf8)
            bytes.append(0x58)
            append32(UInt32(utf8.count))
            bytes += utf8
        case let .tuple(items):
            bytes.append(0x28)  // MARK
            for item in items { emit(item) }
            bytes.append(0x74)  // TUPLE
        case let .dict(entries):
            bytes.append(0x7D)  // EMPTY_DICT
            setItems(entries)
        case let .orderedDict(entries):
            global("collections", "OrderedDict")
            bytes += [0x29, 0x52]  // EMPTY_TUPLE, REDUCE
            setItems(entries)
        case let .namespace(attributes):
            global("argparse", "Namespace")
            bytes += [0x29, 0x81]  // EMPTY_TUPLE, NEWOBJ
            bytes.append(0x7D)
            setItems(attributes)
            bytes.append(0x62)  // BUILD
        case let .tensor(shape, values):
            let key = String(storages.count)
            storages.append((key, values))
            global("torch._utils", "_rebuild_tensor_v2")
            bytes.append(0x28)
            emit(.tuple([.string("storage"), .global(module: "torch", name: "FloatStorage"), .string(key), .string("cpu"),
                         .int(values.count)]))
            bytes.append(0x51)  // BINPERSID
            var strides = [Int](repeating: 1, count: shape.count)
            for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
            for item in [TorchSaveValue.int(0), .tuple(shape.map { .int($0) }), .tuple(strides.map { .int($0) }), .bool(false),
                         .orderedDict([])] { emit(item) }
            bytes += [0x74, 0x52]  // TUPLE, REDUCE
        case let .global(module, name): global(module, name)
        }
    }

    private mutating func setItems(_ entries: [(String, TorchSaveValue)]) {
        guard !entries.isEmpty else { return }
        bytes.append(0x28)
        for (key, value) in entries {
            emit(.string(key))
            emit(value)
        }
        bytes.append(0x75)  // SETITEMS
    }

    private mutating func global(_ module: String, _ name: String) {
        bytes.append(0x63)
        bytes += Array((module + "\n" + name + "\n").utf8)
    }

    private mutating func integer(_ number: Int) {
        if number >= 0 && number < 256 {
            bytes += [0x4B, UInt8(number)]
        } else if number >= Int(Int32.min) && number <= Int(Int32.max) {
            bytes.append(0x4A)
            append32(UInt32(bitPattern: Int32(number)))
        } else {
            bytes += [0x8A, 8]  // LONG1 of 8 bytes
            for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8((UInt64(bitPattern: Int64(number)) >> UInt64(shift)) & 0xFF)) }
        }
    }

    private mutating func append32(_ value: UInt32) {
        bytes += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }
}
