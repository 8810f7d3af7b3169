import Dispatch
import FileSupport
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// What `megatron preprocess` does: tokenizes the chosen string fields of every line of a JSONL
/// file and writes one Megatron indexed dataset per field, `PREFIX_KEY_document.bin/.idx`, one
/// document per line: one sequence per document, or with `splitSentences` one per sentence
/// (`PREFIX_KEY_sentence.bin/.idx`, Megatron's BERT data).
public struct Preprocessor {
    public var inputPath: String
    public var jsonKeys: [String] = ["text"]
    public var outputPrefix: String
    /// Append the end-of-document token to every non-empty document.
    public var appendEndOfDocument = false
    /// Encoding threads.
    public var workers = 1
    /// Skip (and count) lines that are not JSON objects with the keys, instead of stopping.
    public var skipInvalid = false
    /// Write each sentence as a sequence of its document (`--split-sentences`).
    public var splitSentences = false
    /// How sentences are found when `splitSentences` is set.
    public var sentenceSplitter = SentenceSplitter()

    public init(inputPath: String, outputPrefix: String) {
        self.inputPath = inputPath
        self.outputPrefix = outputPrefix
    }

    /// The dataset prefix written for one JSON key (Megatron's names: `_document`, or
    /// `_sentence` with `splitSentences`).
    public func datasetPrefix(key: String) -> String { "\(outputPrefix)_\(key)_\(splitSentences ? "sentence" : "document")" }

    /// Counters reported while running and at the end.
    public struct Progress: Sendable {
        public var documents = 0
        public var skipped = 0
        public var tokens = 0
        public var inputBytes = 0
        public var seconds = 0.0
        public var documentsPerSecond: Double { Double(documents) / max(seconds, 1e-9) }
        public var megabytesPerSecond: Double { Double(inputBytes) / 1e6 / max(seconds, 1e-9) }
    }

    /// Runs the conversion; `report` is called about every `reportInterval` documents.
    /// The datasets are renamed into place only after every line was processed (one key after
    /// the other); on an error nothing appears at the output paths.
    public func run(tokenizer: any TextTokenizer, reportInterval: Int = 10_000,
                    report: (Progress) -> Void = { _ in }) throws(DatasetError) -> Progress {
        guard !jsonKeys.isEmpty else { throw .invalidArgument("--json-keys needs at least one key") }
        guard Set(jsonKeys).count == jsonKeys.count else { throw .invalidArgument("--json-keys has a key twice") }
        guard workers >= 1 else { throw .invalidArgument("--workers must be at least 1") }
        let eod = tokenizer.endOfDocumentID
        if appendEndOfDocument && eod == nil {
            throw .invalidArgument("--append-eod: the tokenizer has no end-of-document token (<|endoftext|>)")
        }
        let input: MappedFile
        do { input = try MappedFile(path: inputPath) } catch { throw .io(error) }
        let dtype = TokenDType.optimal(forVocabularySize: tokenizer.vocabularySize)
        var writers = [IndexedDatasetWriter]()
        for key in jsonKeys { writers.append(try IndexedDatasetWriter(prefix: datasetPrefix(key: key), dtype: dtype)) }

        let encoders = EncoderPool(tokenizer: tokenizer, count: workers,
                                   sentenceSplitter: splitSentences ? sentenceSplitter : nil)
        var progress = Progress()
        let start = monotonicSeconds()
        var nextReport = reportInterval
        var lineNumber = 0
        for batch in LineBatches(bytes: input.bytes, targetBytes: (4 << 20) * workers) {
            let results = encoders.encode(lines: batch, in: input.bytes, keys: jsonKeys)
            for (k, result) in results.enumerated() {
                lineNumber = batch[k].number
                switch result {
                case .blank:
                    continue
                case let .invalid(reason):
                    guard skipInvalid else { throw .invalidArgument("\(inputPath):\(lineNumber): \(reason)") }
                    progress.skipped += 1
                case let .document(fields):
                    for (writer, var sequences) in zip(writers, fields) {
                        sequences.removeAll { $0.isEmpty }
                        if appendEndOfDocument && !sequences.isEmpty { sequences[sequences.count - 1].append(eod!) }
                        for ids in sequences {
                            try writer.add(sequence: ids)
                            progress.tokens += ids.count
                        }
                        writer.endDocument()
                    }
                    progress.documents += 1
                }
            }
            progress.inputBytes = batch.last.map { $0.range.upperBound } ?? progress.inputBytes
            progress.seconds = monotonicSeconds() - start
            if progress.documents >= nextReport {
                report(progress)
                nextReport = (progress.documents / reportInterval + 1) * reportInterval
            }
        }
        for writer in writers { try writer.finish() }
        progress.inputBytes = input.bytes.count
        withExtendedLifetime(input) {}
        progress.seconds = monotonicSeconds() - start
        return progress
    }
}

/// Seconds on a monotonic clock (for rates in progress lines).
public func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// One input line: its 1-based number and byte range (without the newline).
public struct Line: Sendable {
    public var number: Int
    public var range: Range<Int>
}

/// Splits a buffer into batches of whole lines of about `targetBytes`.
public struct LineBatches: Sequence, IteratorProtocol {
    let bytes: UnsafeRawBufferPointer
    let targetBytes: Int
    var position = 0
    var number = 0

    public init(bytes: UnsafeRawBufferPointer, targetBytes: Int) {
        self.bytes = bytes
        self.targetBytes = targetBytes
    }

    public mutating func next() -> [Line]? {
        guard position < bytes.count else { return nil }
        var batch = [Line]()
        let batchStart = position
        while position < bytes.count && position - batchStart < targetBytes {
            let remaining = bytes.count - position
            let found = memchr(bytes.baseAddress! + position, 0x0A, remaining)
            let end = found.map { bytes.baseAddress!.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
            number += 1
            var lineEnd = end
            if lineEnd > position && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            batch.append(Line(number: number, range: position..<lineEnd))
            position = Swift.min(end + 1, bytes.count)
            if found == nil { position = bytes.count }
        }
        return batch
    }
}

/// What a line turned into.
enum LineResult: Sendable {
    case blank
    case invalid(String)
    /// Per JSON key, its sequences: the whole field, or its sentences.
    case document([[[Int32]]])
}

/// One encoder per worker thread; `encode` spreads a batch of lines over the workers.
final class EncoderPool: @unchecked Sendable {
    private var encoders: [any DocumentEncoder]
    /// Splits each field into sentences first; nil: a field is one sequence.
    private let sentenceSplitter: SentenceSplitter?

    init(tokenizer: any TextTokenizer, count: Int, sentenceSplitter: SentenceSplitter?) {
        encoders = (0..<count).map { _ in tokenizer.makeDocumentEncoder() }
        self.sentenceSplitter = sentenceSplitter
    }

    func encode(lines: [Line], in bytes: UnsafeRawBufferPointer, keys: [String]) -> [LineResult] {
        let workers = encoders.count
        var results = [LineResult](repeating: .blank, count: lines.count)
        results.withUnsafeMutableBufferPointer { output in
            encoders.withUnsafeMutableBufferPointer { encoders in
                let shared = SharedPointers(output: output, encoders: encoders, bytes: bytes)
                let body = { @Sendable (worker: Int) in
                    let range = (lines.count * worker / workers)..<(lines.count * (worker + 1) / workers)
                    for k in range {
                        shared.output[k] = self.encode(line: lines[k], bytes: shared.bytes, keys: keys,
                                                       encoder: &shared.encoders[worker])
                    }
                }
                if workers == 1 { body(0) } else { DispatchQueue.concurrentPerform(iterations: workers, execute: body) }
            }
        }
        return results
    }

    private func encode(line: Line, bytes: UnsafeRawBufferPointer, keys: [String],
                        encoder: inout any DocumentEncoder) -> LineResult {
        let text = UnsafeBufferPointer(rebasing: bytes.assumingMemoryBound(to: UInt8.self)[line.range])
        if text.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return .blank }
        let value: JSONValue
        do {
            value = try JSONValue.parse(utf8: text)
        } catch {
            return .invalid("malformed JSON: \(error)")
        }
        guard case .object = value else { return .invalid("expected a JSON object, found \(value.typeName)") }
        var fields = [[[Int32]]]()
        for key in keys {
            guard let field = value[key] else { return .invalid("no key \"\(key)\"") }
            guard case let .string(string) = field else {
                return .invalid("key \"\(key)\" is \(field.typeName), expected a string")
            }
            let pieces = sentenceSplitter?.split(string) ?? [string]
            fields.append(pieces.map { piece in
                var ids = [Int32]()
                encoder.encode(piece, into: &ids)
                return ids
            })
        }
        return .document(fields)
    }
}

/// Buffers written by disjoint workers (each index by exactly one thread).
private struct SharedPointers: @unchecked Sendable {
    let output: UnsafeMutableBufferPointer<LineResult>
    let encoders: UnsafeMutableBufferPointer<any DocumentEncoder>
    let bytes: UnsafeRawBufferPointer
}
