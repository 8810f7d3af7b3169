import FileSupport

/// Integer arrays in numpy's `.npy` format (version 1.0, little-endian, C order), so that cached
/// dataset indices can be inspected with `numpy.load`.
enum NumpyArrayFile {
    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]

    /// Writes `values` as int64 (or int32 when `narrow` and every value fits) with `shape`.
    static func write(_ values: [Int64], shape: [Int], to path: String) throws(DatasetError) {
        let narrow = values.allSatisfy { $0 >= Int64(Int32.min) && $0 <= Int64(Int32.max) }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(narrow ? "<i4" : "<i8")', 'fortran_order': False, 'shape': \(shapeText), }"
        while (magic.count + 2 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes = magic
        bytes.append(UInt8(header.utf8.count & 0xFF))
        bytes.append(UInt8(header.utf8.count >> 8))
        bytes += Array(header.utf8)
        if narrow {
            values.map { Int32($0).littleEndian }.withUnsafeBytes { bytes += $0 }
        } else {
            values.map(\.littleEndian).withUnsafeBytes { bytes += $0 }
        }
        do { try AtomicFile.write(bytes, to: path) } catch { throw .io(error) }
    }

    /// Reads an int32/int64/uint32 `.npy` file; nil if it is missing or not such a file.
    static func read(_ path: String) -> (values: [Int64], shape: [Int])? {
        guard let bytes = try? MappedFile.read(path: path), bytes.count >= 10,
              Array(bytes[0..<8]) == magic else { return nil }
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        guard bytes.count >= 10 + headerLength else { return nil }
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        let itemSize: Int
        let signed: Bool
        if header.contains("'<i4'") { (itemSize, signed) = (4, true) }
        else if header.contains("'<i8'") { (itemSize, signed) = (8, true) }
        else if header.contains("'<u4'") { (itemSize, signed) = (4, false) }
        else { return nil }
        guard header.contains("'fortran_order': False"),
              let open = header.firstIndex(of: "("), let close = header.firstIndex(of: ")") else { return nil }
        let shape = header[header.index(after: open)..<close].split(separator: ",")
            .compactMap { Int($0.trimmingCharacters(in: " ")) }
        let count = shape.reduce(1, *)
        let start = 10 + headerLength
        guard bytes.count == start + count * itemSize else { return nil }
        let values: [Int64] = bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                let at = start + i * itemSize
                if itemSize == 8 { return Int64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int64.self)) }
                let word = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                return signed ? Int64(Int32(bitPattern: word)) : Int64(word)
            }
        }
        return (values, shape)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
