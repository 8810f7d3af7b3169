import FileSupport

/// Writes a ZIP archive of stored (uncompressed) entries as `torch.save` does, each entry's data
/// aligned to 64 bytes (padding in the local header's extra field) and checked by CRC-32, which
/// PyTorch's reader verifies. Entries and the archive stay under 4 GiB (no ZIP64).
struct ZipWriter {
    private(set) var bytes: [UInt8] = []
    private var directory: [UInt8] = []
    private var count = 0

    /// Set when an entry or the archive passes 4 GiB (`finish` then throws).
    private var oversized: String?

    mutating func add(_ name: String, _ data: UnsafeRawBufferPointer) {
        let nameBytes = Array(name.utf8)
        let headerEnd = bytes.count + 30 + nameBytes.count + 4  // with an empty padding field
        let padding = (64 - headerEnd % 64) % 64
        let extraLength = 4 + padding
        guard data.count < 0xFFFF_FFFF, bytes.count + 30 + nameBytes.count + extraLength + data.count < 0xFFFF_FFFF else {
            oversized = name
            return
        }
        let crc = CRC32.checksum(data)
        let offset = bytes.count
        // Local file header.
        append32(&bytes, 0x0403_4B50); append16(&bytes, 20); append16(&bytes, 0); append16(&bytes, 0)
        append16(&bytes, 0); append16(&bytes, 0x21)  // time, date: 1980-01-01
        append32(&bytes, crc); append32(&bytes, UInt32(data.count)); append32(&bytes, UInt32(data.count))
        append16(&bytes, UInt16(nameBytes.count)); append16(&bytes, UInt16(extraLength))
        bytes += nameBytes
        append16(&bytes, 0x4B50); append16(&bytes, UInt16(padding))  // a private extra field of padding
        bytes += [UInt8](repeating: 0, count: padding)
        bytes += data
        // Its central directory entry.
        append32(&directory, 0x0201_4B50); append16(&directory, 20); append16(&directory, 20); append16(&directory, 0)
        append16(&directory, 0); append16(&directory, 0); append16(&directory, 0x21)
        append32(&directory, crc); append32(&directory, UInt32(data.count)); append32(&directory, UInt32(data.count))
        append16(&directory, UInt16(nameBytes.count)); append16(&directory, 0); append16(&directory, 0)
        append16(&directory, 0); append16(&directory, 0); append32(&directory, 0); append32(&directory, UInt32(offset))
        directory += nameBytes
        count += 1
    }

    /// The archive's bytes with its central directory and end record.
    mutating func finish() throws(FileError) -> [UInt8] {
        if let oversized { throw FileError(path: oversized, reason: "an archive over 4 GiB needs ZIP64, which is not written yet") }
        let start = bytes.count
        bytes += directory
        append32(&bytes, 0x0605_4B50); append16(&bytes, 0); append16(&bytes, 0)
        append16(&bytes, UInt16(count)); append16(&bytes, UInt16(count))
        append32(&bytes, UInt32(directory.count)); append32(&bytes, UInt32(start)); append16(&bytes, 0)
        return bytes
    }

    private func append16(_ out: inout [UInt8], _ value: UInt16) { out += [UInt8(value & 0xFF), UInt8(value >> 8)] }
    private func append32(_ out: inout [UInt8], _ value: UInt32) {
        out += [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }
}

/// CRC-32 (IEEE 802.3, reflected, as ZIP uses), table-driven.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { table in
            for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
