/// A pickle that cannot be read: the offset and what is wrong there.
public struct PickleError: Error, CustomStringConvertible, Equatable, Sendable {
    public let offset: Int
    public let reason: String
    public var description: String { "pickle byte \(offset): \(reason)" }
}

/// Reads the pickle subset `torch.save` writes (protocol 2, and the protocol 3-5 opcodes of the
/// same kinds): primitive values, tuples, lists, dicts, `OrderedDict`, persistent storage ids,
/// tensors (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`), bytes as
/// `_codecs.encode`, and any other class or call as a placeholder `PickleValue.object` (never
/// run). An opcode outside that set is an error naming it.
public struct Unpickler {
    private let data: UnsafeRawBufferPointer
    private var position = 0
    private var stack: [PickleValue] = []
    /// How deeply each stack entry nests containers (kept under `maxDepth`, so that no value
    /// nests deeper than Swift's recursive release of it can handle). A container filled after a
    /// memo or another container took it can nest deeper than recorded there: this stops naive
    /// deep nesting, not every crafted pickle.
    private var depths: [Int] = []
    private var marks: [Int] = []
    private var memo: [Int: (value: PickleValue, depth: Int)] = [:]
    /// The deepest value popped since the last `beginPops`.
    private var popped = 0
    static let maxDepth = 1000

    public init(_ data: UnsafeRawBufferPointer) { self.data = data }

    /// The pickled value.
    public static func load(_ data: UnsafeRawBufferPointer) throws(PickleError) -> PickleValue {
        var reader = Unpickler(data)
        return try reader.run()
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> PickleError { PickleError(offset: offset ?? position, reason: reason) }

    private mutating func byte() throws(PickleError) -> UInt8 {
        guard position < data.count else { throw fail("truncated (the pickle ends before its STOP)") }
        defer { position += 1 }
        return data[position]
    }

    private mutating func integer(_ size: Int) throws(PickleError) -> Int {
        guard size <= data.count - position else { throw fail("truncated") }
        var value = 0
        for i in 0..<size { value |= Int(data[position + i]) << (8 * i) }
        position += size
        return value
    }

    private mutating func raw(_ count: Int) throws(PickleError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= data.count - position else { throw fail("truncated") }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: data[position..<(position + count)])
    }

    private mutating func line() throws(PickleError) -> String {
        var bytes = [UInt8]()
        while true {
            let next = try byte()
            if next == 0x0A { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(next)
        }
    }

    private mutating func push(_ value: PickleValue, depth: Int = 0) throws(PickleError) {
        guard depth <= Self.maxDepth else { throw fail("values nested more than \(Self.maxDepth) deep") }
        stack.append(value)
        depths.append(depth)
    }

    /// A container made of what was popped since `popped` was reset: one level deeper.
    private mutating func pushContainer(_ value: PickleValue) throws(PickleError) {
        try push(value, depth: popped + 1)
        popped = 0
    }

    private mutating func pop() throws(PickleError) -> PickleValue {
        guard let value = stack.popLast(), let depth = depths.popLast() else { throw fail("stack underflow") }
        popped = max(popped, depth)
        return value
    }

    private mutating func popMark() throws(PickleError) -> [PickleValue] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no MARK") }
        defer {
            stack.removeSubrange(mark...)
            depths.removeSubrange(mark...)
        }
        popped = max(popped, depths[mark...].max() ?? 0)
        return Array(stack[mark...])
    }

    /// The top entry now holds what was popped since `popped` was reset (APPEND, SETITEM, BUILD).
    private mutating func deepenTop() throws(PickleError) {
        guard !depths.isEmpty else { throw fail("stack underflow") }
        depths[depths.count - 1] = max(depths[depths.count - 1], popped + 1)
        guard depths[depths.count - 1] <= Self.maxDepth else { throw fail("values nested more than \(Self.maxDepth) deep") }
        popped = 0
    }

    private mutating func run() throws(PickleError) -> PickleValue {
        while true {
            let at = position
            let opcode = try byte()
            switch opcode {
            case 0x80: _ = try byte()                                  // PROTO
            case 0x95: _ = try integer(8)                              // FRAME
            case 0x2E: return try pop()                                // STOP
            case 0x28: marks.append(stack.count)                       // MARK
            case 0x4E: try push(.none)                             // NONE
            case 0x88: try push(.bool(true))                       // NEWTRUE
            case 0x89: try push(.bool(false))                      // NEWFALSE
            case 0x4B: try push(.int(try integer(1)))              // BININT1
            case 0x4D: try push(.int(try integer(2)))              // BININT2
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try integer(4)))))  // BININT
            case 0x8A: try push(.int(try long(try raw(try integer(1)))))  // LONG1
            case 0x47:                                                 // BINFLOAT, big-endian
                let bytes = try raw(8)
                var bits: UInt64 = 0
                for b in bytes { bits = bits << 8 | UInt64(b) }
                try push(.float(Double(bitPattern: bits)))
            case 0x58: try push(.string(String(decoding: try raw(try integer(4)), as: UTF8.self)))  // BINUNICODE
            case 0x8C: try push(.string(String(decoding: try raw(try integer(1)), as: UTF8.self)))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(String(decoding: try raw(try integer(8)), as: UTF8.self)))  // BINUNICODE8
            case 0x54: try push(.string(String(decoding: try raw(try integer(4)), as: UTF8.self)))  // BINSTRING
            case 0x55: try push(.string(String(decoding: try raw(try integer(1)), as: UTF8.self)))  // SHORT_BINSTRING
            case 0x42: try push(.bytes(Array(try raw(try integer(4)))))                              // BINBYTES
            case 0x43: try push(.bytes(Array(try raw(try integer(1)))))                              // SHORT_BINBYTES
            case 0x29: try push(.tuple([]))                            // EMPTY_TUPLE
            case 0x85: popped = 0; try pushContainer(.tuple([try pop()]))                                    // TUPLE1
            case 0x86: popped = 0; let b = try pop(), a = try pop(); try pushContainer(.tuple([a, b]))       // TUPLE2
            case 0x87: popped = 0; let c = try pop(), b = try pop(), a = try pop(); try pushContainer(.tuple([a, b, c]))  // TUPLE3
            case 0x74: popped = 0; try pushContainer(.tuple(try popMark()))                                  // TUPLE
            case 0x5D: try push(.list(PickleList()))                   // EMPTY_LIST
            case 0x6C: popped = 0; let list = PickleList(); list.values = try popMark(); try pushContainer(.list(list))  // LIST
            case 0x7D: try push(.dict(PickleDict()))                   // EMPTY_DICT
            case 0x64:                                                 // DICT
                popped = 0
                let items = try popMark(), dict = PickleDict()
                for i in stride(from: 0, to: items.count - 1, by: 2) { dict.set(items[i], items[i + 1]) }
                try pushContainer(.dict(dict))
            case 0x61: popped = 0; let value = try pop(); try append([value]); try deepenTop()       // APPEND
            case 0x65: popped = 0; try append(try popMark()); try deepenTop()                        // APPENDS
            case 0x73: popped = 0; let value = try pop(), key = try pop(); try setItems([key, value]); try deepenTop()  // SETITEM
            case 0x75: popped = 0; try setItems(try popMark()); try deepenTop()                      // SETITEMS
            case 0x71: memo[try integer(1)] = try topEntry()           // BINPUT
            case 0x72: memo[try integer(4)] = try topEntry()           // LONG_BINPUT
            case 0x94: memo[memo.count] = try topEntry()               // MEMOIZE
            case 0x68, 0x6A:                                           // BINGET, LONG_BINGET
                let key = try integer(opcode == 0x68 ? 1 : 4)
                guard let entry = memo[key] else { throw fail("memo \(key) was never stored", at: at) }
                try push(entry.value, depth: entry.depth)
            case 0x63:                                                 // GLOBAL
                let module = try line(), name = try line()
                try push(.global(module: module, name: name))
            case 0x93:                                                 // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard let m = module.string, let n = name.string else { throw fail("STACK_GLOBAL without names", at: at) }
                try push(.global(module: m, name: n))
            case 0x51: try push(try persistent(try pop(), at: at))       // BINPERSID
            case 0x52, 0x81:                                           // REDUCE, NEWOBJ
                popped = 0
                let arguments = try pop(), callable = try pop()
                try pushContainer(try reduce(callable, arguments.items ?? [], at: at))
            case 0x62:                                                 // BUILD
                popped = 0
                let state = try pop()
                if case let .object(object) = try top() { object.state = state }
                try deepenTop()
            default:
                throw fail("unexpected opcode 0x\(String(opcode, radix: 16)) (not part of what torch.save writes)", at: at)
            }
        }
    }

    private func top() throws(PickleError) -> PickleValue {
        guard let value = stack.last else { throw fail("stack underflow") }
        return value
    }

    private func topEntry() throws(PickleError) -> (value: PickleValue, depth: Int) {
        guard let value = stack.last, let depth = depths.last else { throw fail("stack underflow") }
        return (value, depth)
    }

    /// A little-endian two's-complement integer of up to 8 bytes.
    private func long(_ bytes: UnsafeRawBufferPointer) throws(PickleError) -> Int {
        guard bytes.count <= 8 else { throw fail("an integer of \(bytes.count) bytes does not fit 64 bits") }
        guard !bytes.isEmpty else { return 0 }
        var value: UInt64 = 0
        for (i, b) in bytes.enumerated() { value |= UInt64(b) << (8 * UInt64(i)) }
        if bytes.count < 8 && bytes[bytes.count - 1] & 0x80 != 0 { value |= ~0 << (8 * UInt64(bytes.count)) }  // sign-extend
        return Int(Int64(bitPattern: value))
    }

    private mutating func append(_ values: [PickleValue]) throws(PickleError) {
        switch try top() {
        case let .list(list): list.values += values
        case .object: break  // a placeholder's items are not kept
        default: throw fail("APPEND to something that is not a list")
        }
    }

    private mutating func setItems(_ items: [PickleValue]) throws(PickleError) {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        let dict: PickleDict
        switch try top() {
        case let .dict(target): dict = target
        case let .object(object):
            if object.dictItems == nil { object.dictItems = PickleDict() }
            dict = object.dictItems!
        default: throw fail("SETITEM on something that is not a dict")
        }
        for i in stride(from: 0, to: items.count, by: 2) { dict.set(items[i], items[i + 1]) }
    }

    /// `('storage', storage_type, key, location, numel)`.
    private func persistent(_ id: PickleValue, at: Int) throws(PickleError) -> PickleValue {
        guard let parts = id.items, parts.count >= 5, parts[0].string == "storage",
              case let .global(_, typeName) = parts[1], let key = parts[2].string ?? parts[2].int.map(String.init),
              let count = parts[4].int else {
            throw fail("a persistent id that is not a torch storage", at: at)
        }
        guard let dtype = TorchDType(rawValue: typeName) else { throw fail("storage type \(typeName) is not supported", at: at) }
        return .storage(TorchStorage(dtype: dtype, key: key, count: count))
    }

    private func reduce(_ callable: PickleValue, _ arguments: [PickleValue], at: Int) throws(PickleError) -> PickleValue {
        guard case let .global(module, name) = callable else { return .object(PickleObject(type: callable, arguments: arguments)) }
        switch (module, name) {
        case ("collections", "OrderedDict"): return .dict(PickleDict())
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let data = arguments.first else { throw fail("_rebuild_parameter without data", at: at) }
            return data
        case ("torch._utils", "_rebuild_tensor_v2"):
            guard arguments.count >= 4, case let .storage(storage) = arguments[0], let offset = arguments[1].int,
                  let shape = arguments[2].items?.compactMap(\.int), let stride = arguments[3].items?.compactMap(\.int),
                  shape.count == arguments[2].items?.count, stride.count == shape.count else {
                throw fail("_rebuild_tensor_v2 with unexpected arguments", at: at)
            }
            let tensor = TorchTensor(storage: storage, offset: offset, shape: shape, stride: stride)
            guard tensor.fitsItsStorage else {
                throw fail("a tensor of shape \(shape), stride \(stride), offset \(offset) does not fit its storage of \(storage.count) elements", at: at)
            }
            return .tensor(tensor)
        case ("torch._tensor", "_rebuild_from_type_v2"):
            // (function, type, arguments, state): a tensor whose class is kept (plain torch.Tensor
            // here: the fp32 master copies of Megatron's mixed-precision optimizer); rebuilt by
            // calling the function, the type and state dropped.
            guard arguments.count >= 3, let inner = arguments[2].items else { throw fail("_rebuild_from_type_v2 with unexpected arguments", at: at) }
            return try reduce(arguments[0], inner, at: at)
        case ("_codecs", "encode"):
            guard let text = arguments.first?.string else { throw fail("_codecs.encode without a string", at: at) }
            return .bytes(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })  // latin-1
        default:
            return .object(PickleObject(type: callable, arguments: arguments))
        }
    }
}
