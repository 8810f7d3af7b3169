import FileSupport
import Testing
@testable import Datasets

/// Megatron's `.bin/.idx` format against files written by megatron-core's IndexedDatasetBuilder
/// (scripts/reference/indexed_dataset_fixtures.py).
@Suite struct IndexedDatasetTests {
    static let names = ["small_uint16", "small_int32"]

    static func expected(_ name: String) throws -> JSONValue {
        try DataFixtures.json("megatron_core/small_expected.json")["files"]![name]!
    }

    @Test(arguments: names) func readsMegatronCoreFiles(name: String) throws {
        let expected = try Self.expected(name)
        let dataset = try IndexedDataset(prefix: DataFixtures.path("megatron_core/\(name)"))
        #expect(dataset.dtype.name == expected["dtype"]!.string)
        #expect(dataset.sequenceLengths.map(Int.init) == expected["sequence_lengths"]!.ints)
        #expect(dataset.sequenceOffsets.map(Int.init) == expected["sequence_pointers"]!.ints)
        #expect(dataset.documentIndices.map(Int.init) == expected["document_indices"]!.ints)
        let tokens = expected["tokens"]!.array.map(\.int32s)
        #expect(tokens.count == dataset.sequenceCount)
        for (i, sequence) in tokens.enumerated() {
            #expect(dataset.tokens(ofSequence: i) == sequence)
        }
        #expect(dataset.tokens(ofSequence: 0, offset: 1, count: 2) == Array(tokens[0][1..<3]))
    }

    @Test(arguments: names) func writesTheSameBytesAsMegatronCore(name: String) throws {
        let expected = try Self.expected(name)
        let reference = try IndexedDataset(prefix: DataFixtures.path("megatron_core/\(name)"))
        let prefix = DataFixtures.temporaryDirectory() + "/" + name
        let writer = try IndexedDatasetWriter(prefix: prefix, dtype: reference.dtype)
        let tokens = expected["tokens"]!.array.map(\.int32s)
        let boundaries = expected["document_indices"]!.ints
        for document in 0..<(boundaries.count - 1) {
            for sequence in boundaries[document]..<boundaries[document + 1] {
                try writer.add(sequence: tokens[sequence])
            }
            writer.endDocument()
        }
        try writer.finish()
        for suffix in [".bin", ".idx"] {
            let ours = try MappedFile.read(path: prefix + suffix)
            let theirs = try MappedFile.read(path: DataFixtures.path("megatron_core/\(name)") + suffix)
            #expect(ours == theirs, "\(suffix) differs")
        }
    }

    @Test func truncatedOrCorruptFilesAreClearErrors() throws {
        let source = DataFixtures.path("megatron_core/small_uint16")
        let index = try MappedFile.read(path: source + ".idx")
        let bin = try MappedFile.read(path: source + ".bin")
        let prefix = DataFixtures.temporaryDirectory() + "/broken"

        func message(index: [UInt8], bin: [UInt8]) -> String {
            try! AtomicFile.write(index, to: prefix + ".idx")
            try! AtomicFile.write(bin, to: prefix + ".bin")
            do {
                _ = try IndexedDataset(prefix: prefix)
                return "opened"
            } catch {
                return error.description
            }
        }
        #expect(message(index: index, bin: bin) == "opened")
        #expect(message(index: index, bin: Array(bin.dropLast(2))).contains("truncated"))
        #expect(message(index: Array(index.dropLast(8)), bin: bin).contains("truncated"))
        #expect(message(index: Array(index.prefix(20)), bin: bin).contains("header"))
        var badMagic = index
        badMagic[0] = UInt8(ascii: "X")
        #expect(message(index: badMagic, bin: bin).contains("magic"))
        var badType = index
        badType[17] = 42
        #expect(message(index: badType, bin: bin).contains("dtype"))
        var badOffset = index
        badOffset[34 + 4 * 10 + 8] ^= 0x01  // second sequence's byte offset
        #expect(message(index: badOffset, bin: bin).contains("sequence 1 starts"))
        #expect(throws: DatasetError.self) { try IndexedDataset(prefix: prefix + "-missing") }
    }

    @Test func tokensThatDoNotFitTheTypeAreRejected() throws {
        let writer = try IndexedDatasetWriter(prefix: DataFixtures.temporaryDirectory() + "/x", dtype: .uint16)
        #expect(throws: DatasetError.self) { try writer.add(document: [1, 70_000]) }
        #expect(TokenDType.optimal(forVocabularySize: 50304) == .uint16)
        #expect(TokenDType.optimal(forVocabularySize: 65500) == .int32)
    }
}
