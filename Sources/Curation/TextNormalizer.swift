#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Tokenizer
import Foundation

/// The normal form every curation step compares text in: Unicode NFC, and every run of
/// whitespace (Python's `str.isspace`: Unicode White_Space and U+001C-U+001F) one space, none at
/// either end. Python: `" ".join(unicodedata.normalize("NFC", text).split())`.
public enum TextNormalizer {
    public static func normalize(_ text: String) -> String {
        String(decoding: normalizedUTF8(text), as: UTF8.self)
    }

    /// `normalize(text)` as UTF-8 bytes; ASCII text (the common case) needs no NFC and is
    /// handled byte by byte.
    public static func normalizedUTF8(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        var pendingSpace = false
        var source = text
        let ascii = source.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            var high: UInt64 = 0, i = 0
            while i + 8 <= raw.count { high |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self); i += 8 }
            while i < raw.count { high |= UInt64(raw[i]); i += 1 }
            return high & 0x8080_8080_8080_8080 == 0
        }
        if !ascii {
            source = text.precomposedStringWithCanonicalMapping
            out.reserveCapacity(source.utf8.count)
            for scalar in source.unicodeScalars {
                if scalar.isPythonSpace {
                    pendingSpace = !out.isEmpty
                } else {
                    if pendingSpace { out.append(0x20) }
                    pendingSpace = false
                    out.append(contentsOf: UTF8.encode(scalar)!)
                }
            }
            return out
        }
        out.reserveCapacity(source.utf8.count)
        source.withUTF8 { bytes in
            for byte in bytes {
                if byte == 0x20 || (0x09...0x0D).contains(byte) || (0x1C...0x1F).contains(byte) {
                    pendingSpace = !out.isEmpty
                } else {
                    if pendingSpace { out.append(0x20) }
                    pendingSpace = false
                    out.append(byte)
                }
            }
        }
        return out
    }

}

extension TextNormalizer {
    /// The text a filtered corpus keeps: NFC; `\r\n` and `\r` as `\n`; on each line, runs of other
    /// whitespace one space and none at either end; at most one blank line in a row; none at
    /// either end of the document. Line and paragraph structure stay.
    public static func clean(_ text: String) -> String {
        if let ascii = cleanASCII(text) { return ascii }
        let composed = text.precomposedStringWithCanonicalMapping
        var out = String.UnicodeScalarView()
        var pendingSpace = false, newlines = 0
        var previousWasCarriageReturn = false
        for scalar in composed.unicodeScalars {
            let isNewline = scalar == "\n" || scalar == "\r"
            defer { previousWasCarriageReturn = scalar == "\r" }
            if isNewline {
                if scalar == "\n" && previousWasCarriageReturn { continue }
                pendingSpace = false
                if !out.isEmpty { newlines += 1 }
            } else if scalar.isPythonSpace {
                pendingSpace = newlines == 0 && !out.isEmpty
            } else {
                if newlines > 0 {
                    out.append(contentsOf: newlines > 1 ? "\n\n".unicodeScalars : "\n".unicodeScalars)
                } else if pendingSpace {
                    out.append(" ")
                }
                newlines = 0
                pendingSpace = false
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// `clean` for ASCII text (no NFC needed), byte by byte; nil for other text.
    static func cleanASCII(_ text: String) -> String? {
        var source = text
        return source.withUTF8 { bytes -> String? in
            var out = [UInt8]()
            out.reserveCapacity(bytes.count)
            var pendingSpace = false, newlines = 0, previousWasCarriageReturn = false
            for byte in bytes {
                if byte >= 0x80 { return nil }
                defer { previousWasCarriageReturn = byte == 0x0D }
                if byte == 0x0A || byte == 0x0D {
                    if byte == 0x0A && previousWasCarriageReturn { continue }
                    pendingSpace = false
                    if !out.isEmpty { newlines += 1 }
                } else if byte == 0x20 || (0x09...0x0C).contains(byte) || (0x1C...0x1F).contains(byte) {
                    pendingSpace = newlines == 0 && !out.isEmpty
                } else {
                    if newlines > 0 {
                        out.append(0x0A)
                        if newlines > 1 { out.append(0x0A) }
                    } else if pendingSpace {
                        out.append(0x20)
                    }
                    newlines = 0
                    pendingSpace = false
                    out.append(byte)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
