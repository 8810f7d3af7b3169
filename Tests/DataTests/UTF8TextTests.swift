import Datasets
import FileSupport
import Foundation
import Testing

/// Text that must be UTF-8 is refused at its first bad byte, never read with U+FFFD in its place.
@Suite struct UTF8TextTests {
    @Test func theFirstInvalidByteIsNamed() throws {
        #expect(try UTF8Text.decode(Array("Ærø 🎩".utf8), source: "s") == "Ærø 🎩")
        #expect(UTF8Text.firstInvalidOffset(Array("Ærø 🎩".utf8)) == nil)
        // "ab", a lone continuation byte, then "c"; a truncated 4-byte scalar at the end.
        #expect(UTF8Text.firstInvalidOffset([0x61, 0x62, 0x80, 0x63]) == 2)
        #expect(UTF8Text.firstInvalidOffset(Array("xy".utf8) + [0xF0, 0x9F, 0x8E]) == 2)
        #expect(throws: FileError(path: "stdin", reason: "byte 1 is not valid UTF-8 (the text must be UTF-8)")) {
            try UTF8Text.decode([0x61, 0xFF], source: "stdin")
        }
    }

    /// A plain-text corpus line that is not UTF-8 stops `tokenizer train` naming the file and line.
    @Test func aCorpusLineThatIsNotUTF8IsRefused() throws {
        let path = FileManager.default.temporaryDirectory.path + "/corpus-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data([0x6F, 0x6B, 0x0A, 0x62, 0x61, 0xC3, 0x28, 0x0A]).write(to: URL(fileURLWithPath: path))
        var documents = [String]()
        #expect { try TextDocuments.forEach(in: path) { documents.append($0) } } throws: {
            "\($0)".contains("\(path):2: byte 2 is not valid UTF-8")
        }
        #expect(documents == ["ok\n"])
    }
}
