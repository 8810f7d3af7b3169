#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import FileSupport

/// Reading and writing the two file formats of byte-level BPE vocabularies: GPT-2's
/// `vocab.json` + `merges.txt`, and a Hugging Face `tokenizer.json`.
extension Tokenizer {
    /// Loads GPT-2 style files (`vocab.json` maps spellings to ids; `merges.txt` has one
    /// `left right` rule per line in rank order, after an optional `#version` line; LF or CRLF).
    /// As in Megatron's GPT2BPETokenizer, `<|endoftext|>` in text is ordinary text (its id is
    /// still the end-of-document token); `splitSpecialTokens` cuts it out like Hugging Face and
    /// tiktoken do.
    public static func load(vocabFile: String, mergesFile: String,
                            splitSpecialTokens: Bool = false) throws(TokenizerError) -> Tokenizer {
        let vocabulary: [String: Int32]
        do {
            vocabulary = try tokenIDs(try JSONDecoder().decode([String: Int64].self, from: try readFile(vocabFile)), path: vocabFile)
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw .malformed(path: vocabFile, reason: "expected a JSON object of token ids (\(JSONDecoding.describe(error)))")
        }
        let bytes = try readFile(mergesFile)
        var merges = [(String, String)]()
        for (number, lineBytes) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let line = Substring(String(decoding: lineBytes.last == 0x0D ? lineBytes.dropLast() : lineBytes, as: UTF8.self))
            if line.isEmpty || (number == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .malformed(path: mergesFile, reason: "line \(number + 1) is not 'left right': \(line)")
            }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let added = splitSpecialTokens && vocabulary["<|endoftext|>"] != nil ? ["<|endoftext|>"] : []
        if merges.isEmpty && vocabulary.count > 256 + 1 {
            throw .malformed(path: mergesFile, reason: "no merge rules found")
        }
        return try Tokenizer(vocabulary: vocabulary, merges: merges, addedTokens: added,
                             source: "\(vocabFile) + \(mergesFile)")
    }

    /// Loads a Hugging Face `tokenizer.json` with a BPE model and a ByteLevel pre-tokenizer.
    public static func load(tokenizerFile path: String) throws(TokenizerError) -> Tokenizer {
        let file: HuggingFaceTokenizerFile
        do {
            file = try JSONDecoder().decode(HuggingFaceTokenizerFile.self, from: try readFile(path))
        } catch let error as TokenizerError {
            throw error
        } catch {
            throw .malformed(path: path, reason: "not a Hugging Face tokenizer.json (\(JSONDecoding.describe(error)))")
        }
        let model = file.model
        if let type = model.type, type != "BPE" { throw .unsupported(path: path, feature: "model type \(type)") }
        if let post = file.post_processor, post.type != "ByteLevel" {
            throw .unsupported(path: path, feature: "post-processor \(post.type)")
        }
        for token in file.added_tokens ?? [] where token.lstrip == true || token.rstrip == true || token.single_word == true {
            throw .unsupported(path: path, feature: "added token \(token.content) with lstrip/rstrip/single_word")
        }
        if let normalizer = file.normalizer {
            throw .unsupported(path: path, feature: "normalizer \(normalizer.type)")
        }
        guard let pre = file.pre_tokenizer, pre.type == "ByteLevel", pre.use_regex ?? true else {
            throw .unsupported(path: path, feature: "pre-tokenizer \(file.pre_tokenizer?.type ?? "null")")
        }
        if let prefix = model.continuing_subword_prefix, !prefix.isEmpty {
            throw .unsupported(path: path, feature: "continuing_subword_prefix")
        }
        if let suffix = model.end_of_word_suffix, !suffix.isEmpty {
            throw .unsupported(path: path, feature: "end_of_word_suffix")
        }
        if model.byte_fallback == true { throw .unsupported(path: path, feature: "byte_fallback") }
        var vocabulary = try tokenIDs(model.vocab, path: path)
        for token in file.added_tokens ?? [] {
            let id = try tokenID(token.id, of: token.content, path: path)
            if let existing = vocabulary[token.content], existing != id {
                throw .malformed(path: path, reason:
                    "added token \(token.content) has id \(id) but the vocabulary says \(existing)")
            }
            vocabulary[token.content] = id
        }
        return try Tokenizer(vocabulary: vocabulary, merges: model.merges.map { ($0.left, $0.right) },
                             addedTokens: (file.added_tokens ?? []).map(\.content),
                             addPrefixSpace: pre.add_prefix_space ?? false,
                             ignoreMerges: model.ignore_merges ?? false, source: path)
    }

    /// Writes `tokenizer.json`, `vocab.json` and `merges.txt` into `directory` (which must
    /// exist), each atomically.
    public func save(to directory: String) throws(TokenizerError) {
        let rules = mergeRules.map { (tokens[Int($0.left)], tokens[Int($0.right)]) }
        var vocab = "{"
        for (id, token) in tokens.enumerated() {
            vocab += (id == 0 ? "" : ",") + JSONValue.string(token).serialized + ":\(id)"
        }
        vocab += "}"
        var mergesText = "#version: 0.2\n"
        for (left, right) in rules { mergesText += "\(left) \(right)\n" }

        let added = addedTokens.sorted { $0.id < $1.id }.map { token in
            "{\"id\":\(token.id),\"content\":\(JSONValue.string(token.content).serialized),\"single_word\":false,"
                + "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}"
        }.joined(separator: ",")
        let byteLevel = "{\"type\":\"ByteLevel\",\"add_prefix_space\":\(addPrefixSpace),"
            + "\"trim_offsets\":true,\"use_regex\":true}"
        let mergesJSON = rules.map { "[\(JSONValue.string($0.0).serialized),\(JSONValue.string($0.1).serialized)]" }
            .joined(separator: ",")
        let json = "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[\(added)],"
            + "\"normalizer\":null,\"pre_tokenizer\":\(byteLevel),\"post_processor\":\(byteLevel),"
            + "\"decoder\":\(byteLevel),\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,"
            + "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":false,"
            + "\"byte_fallback\":false,\"ignore_merges\":\(ignoreMerges),\"vocab\":\(vocab),"
            + "\"merges\":[\(mergesJSON)]}}\n"
        for (name, contents) in [("tokenizer.json", json), ("vocab.json", vocab + "\n"),
                                 ("merges.txt", mergesText)] {
            do {
                try AtomicFile.write(Array(contents.utf8), to: directory + "/" + name)
            } catch {
                throw .unwritable(path: error.path, reason: error.reason)
            }
        }
    }
}

/// Token ids as the tokenizer keeps them (`Int32`); an id outside `0...Int32.max` is an error
/// naming the token (JSON numbers are read wide so that the message says what is wrong).
func tokenIDs(_ wide: [String: Int64], path: String) throws(TokenizerError) -> [String: Int32] {
    var ids = [String: Int32]()
    ids.reserveCapacity(wide.count)
    for (token, id) in wide {
        ids[token] = try tokenID(id, of: token, path: path)
    }
    return ids
}

/// One token id, checked to fit the tokenizer's `Int32` ids.
func tokenID(_ id: Int64, of token: String, path: String) throws(TokenizerError) -> Int32 {
    guard let narrow = Int32(exactly: id), narrow >= 0 else {
        throw .malformed(path: path, reason: "token \(JSONValue.string(token).serialized) has id \(id), outside 0...\(Int32.max)")
    }
    return narrow
}

func readFile(_ path: String) throws(TokenizerError) -> Data {
    do {
        return Data(try MappedFile.read(path: path))
    } catch {
        throw .unreadable(path: path, reason: error.reason)
    }
}

/// The parts of a Hugging Face `tokenizer.json` that a byte-level BPE tokenizer uses.
struct HuggingFaceTokenizerFile: Decodable {
    struct AddedToken: Decodable {
        var id: Int64
        var content: String
        var lstrip: Bool?
        var rstrip: Bool?
        var single_word: Bool?
    }
    struct Component: Decodable {
        var type: String
        var add_prefix_space: Bool?
        var use_regex: Bool?
    }
    struct Merge: Decodable {
        var left: String
        var right: String
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let pair = try? container.decode([String].self) {
                guard pair.count == 2 else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "merge is not a pair")
                }
                (left, right) = (pair[0], pair[1])
            } else {
                let text = try container.decode(String.self)
                let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw DecodingError.dataCorruptedError(in: container, debugDescription: "merge '\(text)'")
                }
                (left, right) = (String(parts[0]), String(parts[1]))
            }
        }
    }
    struct Model: Decodable {
        var type: String?
        var vocab: [String: Int64]
        var merges: [Merge]
        var continuing_subword_prefix: String?
        var end_of_word_suffix: String?
        var byte_fallback: Bool?
        var ignore_merges: Bool?
    }
    var added_tokens: [AddedToken]?
    var normalizer: Component?
    var pre_tokenizer: Component?
    var post_processor: Component?
    var model: Model
}
