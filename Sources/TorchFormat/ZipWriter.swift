import FileSupport

/// Streams a ZIP archive of stored (uncompressed) entries into a file as `torch.save` does: each
/// entry's data aligned to 64 bytes (padding in the local header's extra field) and checked by
/// CRC-32, which PyTorch's reader verifies. An entry, an offset or the directory past 4 GiB gets
/// ZIP64 fields (the sizes and offset that do not fit, an end record and its locator), as
/// PyTorch's writer does for checkpoints that large. The file appears (atomically) on `finish`.
struct ZipWriter {
    private let file: AtomicFileWriter
    private var directory: [UInt8] = []
    private var count = 0
    /// The largest value a plain 32-bit field holds here; lower only in tests, to exercise the
    /// ZIP64 fields without writing 4 GiB.
    private let limit: Int

    init(path: String, zip64Above limit: Int = 0xFFFF_FFFE) throws(FileError) {
        file = try AtomicFileWriter(path: path)
        self.limit = limit
    }

    /// Appends an entry.
    mutating func add(_ name: String, _ data: UnsafeRawBufferPointer) throws(FileError) {
        let nameBytes = Array(name.utf8)
        let offset = file.count
        let large = data.count > limit
        // The local header's ZIP64 field holds both sizes; the padding field follows it.
        let zip64Length = large ? 20 : 0
        let headerEnd = offset + 30 + nameBytes.count + zip64Length + 4
        let padding = (64 - headerEnd % 64) % 64
        let crc = CRC32.checksum(data)
        var header = [UInt8]()
        append32(&header, 0x0403_4B50); append16(&header, large ? 45 : 20); append16(&header, 0); append16(&header, 0)
        append16(&header, 0); append16(&header, 0x21)  // time, date: 1980-01-01
        append32(&header, crc); appendSize(&header, data.count, large); appendSize(&header, data.count, large)
        append16(&header, UInt16(nameBytes.count)); append16(&header, UInt16(zip64Length + 4 + padding))
        header += nameBytes
        if large { append16(&header, 1); append16(&header, 16); append64(&header, data.count); append64(&header, data.count) }
        append16(&header, 0x4B50); append16(&header, UInt16(padding))  // a private extra field of padding
        header += [UInt8](repeating: 0, count: padding)
        try file.write(header)
        try file.write(data)
        // Its central directory entry: the fields that do not fit in 32 bits go to its ZIP64 field.
        let farOffset = offset > limit
        let wide = (large ? [data.count, data.count] : []) + (farOffset ? [offset] : [])
        append32(&directory, 0x0201_4B50); append16(&directory, wide.isEmpty ? 20 : 45); append16(&directory, wide.isEmpty ? 20 : 45)
        append16(&directory, 0); append16(&directory, 0); append16(&directory, 0); append16(&directory, 0x21)
        append32(&directory, crc); appendSize(&directory, data.count, large); appendSize(&directory, data.count, large)
        append16(&directory, UInt16(nameBytes.count)); append16(&directory, UInt16(wide.isEmpty ? 0 : 4 + 8 * wide.count))
        append16(&directory, 0); append16(&directory, 0); append16(&directory, 0); append32(&directory, 0)
        appendSize(&directory, offset, farOffset)
        directory += nameBytes
        if !wide.isEmpty {
            append16(&directory, 1); append16(&directory, UInt16(8 * wide.count))
            for value in wide { append64(&directory, value) }
        }
        count += 1
    }

    /// Writes the central directory and end record(s) and puts the file in place.
    func finish() throws(FileError) {
        let start = file.count
        var end = directory
        let zip64 = start > limit || directory.count > limit || count >= 0xFFFF
        if zip64 {
            let record = start + directory.count
            append32(&end, 0x0606_4B50); append64(&end, 44); append16(&end, 45); append16(&end, 45)
            append32(&end, 0); append32(&end, 0); append64(&end, count); append64(&end, count)
            append64(&end, directory.count); append64(&end, start)
            append32(&end, 0x0706_4B50); append32(&end, 0); append64(&end, record); append32(&end, 1)
        }
        append32(&end, 0x0605_4B50); append16(&end, 0); append16(&end, 0)
        append16(&end, zip64 ? 0xFFFF : UInt16(count)); append16(&end, zip64 ? 0xFFFF : UInt16(count))
        appendSize(&end, directory.count, zip64); appendSize(&end, start, zip64); append16(&end, 0)
        try file.write(end)
        try file.commit()
    }

    private func append16(_ out: inout [UInt8], _ value: UInt16) { out += [UInt8(value & 0xFF), UInt8(value >> 8)] }
    private func append32(_ out: inout [UInt8], _ value: UInt32) {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }
    private func append64(_ out: inout [UInt8], _ value: Int) {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8((UInt64(value) >> UInt64(shift)) & 0xFF)) }
    }
    /// A 32-bit size or offset field, or its ZIP64 placeholder.
    private func appendSize(_ out: inout [UInt8], _ value: Int, _ wide: Bool) {
        append32(&out, wide ? 0xFFFF_FFFF : UInt32(value))
    }
}

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses), table-driven, eight bytes a step.
enum CRC32 {
    /// `table[256 k + b]`: the CRC of byte `b` followed by `k` zero bytes (slicing-by-8).
    static let table: [UInt32] = {
        var tables = [(0..<256).map { n -> UInt32 in
            var c = UInt32(n)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            return c
        }]
        for k in 1..<8 { tables.append((0..<256).map { n in (tables[k - 1][n] >> 8) ^ tables[0][Int(tables[k - 1][n] & 0xFF)] }) }
        return tables.flatMap { $0 }
    }()

    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            var i = 0
            let n = data.count
            while i + 8 <= n {
                let low = crc ^ data.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian
                let high = data.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                i += 8
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(data[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
