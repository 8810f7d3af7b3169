import FileSupport
#if canImport(Glibc)
import Glibc
#endif

/// Paths and JSON of the committed fixtures.
enum DataFixtures {
    static let directory: String = {
        var path = #filePath
        while let last = path.last, last != "/" { path.removeLast() }
        return path + "Fixtures"
    }()

    static func path(_ relative: String) -> String { directory + "/" + relative }

    static func json(_ relative: String) throws -> JSONValue {
        let bytes = try MappedFile.read(path: path(relative))
        return try JSONValue.parse(utf8: bytes)
    }

    /// A fresh empty directory under /tmp.
    static func temporaryDirectory() -> String {
        var template = Array("/tmp/megatron-test-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
}

extension JSONValue {
    var int32s: [Int32] {
        guard case let .array(values) = self else { return [] }
        return values.compactMap { if case let .number(x) = $0 { Int32(x) } else { nil } }
    }
    var ints: [Int] { int32s.map(Int.init) }
    var string: String? { if case let .string(s) = self { s } else { nil } }
    var number: Double? { if case let .number(x) = self { x } else { nil } }
    var array: [JSONValue] { if case let .array(values) = self { values } else { [] } }
}
