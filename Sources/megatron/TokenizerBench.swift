import ArgumentParser
import Datasets
import Dispatch
import Tokenizer

extension TokenizerCommand {
    /// `megatron tokenizer bench`: encode throughput in MB/s of UTF-8 input.
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure encode throughput (MB/s) on a corpus with 1 or more threads.",
            discussion: """
            The documents of --input are encoded --repeat times; each thread takes a contiguous
            share of the documents with its own encoder (and word cache), as `preprocess
            --workers N` does. The first pass of a fresh encoder is reported separately (cold).
            """)

        @OptionGroup var tokenizer: TokenizerOptions

        @Option(name: .long, help: "Text or JSONL corpus.")
        var input: String

        @Option(name: .long, help: "Passes over the corpus.")
        var `repeat`: Int = 10

        @Option(name: .long, parsing: .upToNextOption, help: "Thread counts to measure.")
        var threads: [Int] = [1, 2]

        @Flag(name: .long, help: "Print JSON lines instead of text.")
        var json = false

        func validate() throws {
            guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
            guard threads.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--threads must be at least 1") }
        }

        func run() throws {
            let tokenizer = try tokenizer.load()
            var documents = [String]()
            try TextDocuments.forEach(in: input) { documents.append($0) }
            let bytes = documents.reduce(0) { $0 + $1.utf8.count }
            for threadCount in threads {
                let cold = Self.encode(documents, passes: 1, threads: threadCount, tokenizer: tokenizer)
                let warm = Self.encode(documents, passes: `repeat`, threads: threadCount, tokenizer: tokenizer)
                let coldRate = Double(bytes) / 1e6 / cold.seconds
                let warmRate = Double(bytes * `repeat`) / 1e6 / warm.seconds
                if json {
                    print("{\"threads\": \(threadCount), \"bytes\": \(bytes * `repeat`), \"tokens\": \(warm.tokens), "
                          + "\"seconds\": \(warm.seconds), \"mb_per_s\": \(warmRate), \"cold_mb_per_s\": \(coldRate)}")
                } else {
                    print("threads \(threadCount): \(fixed(warmRate, 2)) MB/s over \(`repeat`) passes of "
                          + "\(bytes) bytes (\(warm.tokens / `repeat`) tokens per pass); first pass \(fixed(coldRate, 2)) MB/s")
                }
            }
        }

        /// Encodes every document `passes` times on `threads` threads; returns tokens and seconds.
        static func encode(_ documents: [String], passes: Int, threads: Int,
                           tokenizer: Tokenizer) -> (tokens: Int, seconds: Double) {
            let counts = TokenCounts(threads)
            defer { counts.values.deallocate() }
            let start = monotonicSeconds()
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                var encoder = tokenizer.makeEncoder()
                let share = (documents.count * thread / threads)..<(documents.count * (thread + 1) / threads)
                var ids = [Int32]()
                var total = 0
                for _ in 0..<passes {
                    for k in share {
                        ids.removeAll(keepingCapacity: true)
                        encoder.encode(documents[k], into: &ids)
                        total += ids.count
                    }
                }
                counts.values[thread] = total
            }
            return (counts.values.reduce(0, +), monotonicSeconds() - start)
        }
    }
}

/// Per-thread totals, each slot written by one thread only.
private struct TokenCounts: @unchecked Sendable {
    let values: UnsafeMutableBufferPointer<Int>
    init(_ count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: 0)
    }
}
