import FileSupport
import Tokenizer
import YAMLSupport

extension CurationPipeline {
    /// Reads a `curate run` config (see `CurationPipeline`): JSON, or YAML for a `.yaml`/`.yml`
    /// file (the same keys and nesting; NeMo Curator's configs are YAML); relative paths are
    /// relative to the working directory. A key the config does not know, a value of the wrong
    /// type or a missing one is an error naming the file and the key.
    public init(configPath: String) throws(CurationError) {
        let root = try Self.configDocument(configPath)
        let config = try Section(root, path: configPath, name: "config",
                                 keys: ["output_dir", "datasets", "json_key", "malformed", "tokenizer_file", "vocab_file", "merge_file",
                                        "append_eod", "train_tokens", "threads", "filter", "classifier", "dedup", "decontaminate"])
        outputDirectory = try config.string("output_dir")
        guard !outputDirectory.contains(where: \.isWhitespace) else {
            // The blend is a space-separated --data-path: its prefixes cannot hold spaces.
            throw CurationError("\(configPath): output_dir must not contain whitespace (it becomes part of --data-path)")
        }
        if PathKind(outputDirectory) == .file {
            throw CurationError("\(configPath): output_dir \(outputDirectory) is a file, not a folder")
        }
        guard case let .array(items)? = config.value("datasets"), !items.isEmpty else {
            throw CurationError("\(configPath): \"datasets\" must be a non-empty list")
        }
        datasets = []
        for (i, item) in items.enumerated() {
            let entry = try Section(item, path: configPath, name: "datasets[\(i)]", keys: ["name", "input", "weight", "epochs"])
            let name = try entry.string("name")
            guard !name.isEmpty, !name.contains("/"), !name.contains(where: \.isWhitespace), !datasets.contains(where: { $0.name == name }) else {
                throw CurationError("\(configPath): datasets[\(i)].name must be a unique file name without spaces, got \"\(name)\"")
            }
            datasets.append(Dataset(name: name, input: try entry.string("input"), weight: try entry.optionalNumber("weight"),
                                    epochs: try entry.optionalNumber("epochs")))
        }
        textKey = try config.optionalString("json_key") ?? "text"
        if let policy = try config.optionalString("malformed") {
            guard let value = MalformedLinePolicy(rawValue: policy) else { throw CurationError("\(configPath): malformed must be fail or skip") }
            malformed = value
        }
        do {
            if let file = try config.optionalString("tokenizer_file") {
                tokenizer = try Tokenizer.load(tokenizerFile: file)
                tokenizerFiles = [file]
            } else if let vocab = try config.optionalString("vocab_file"), let merges = try config.optionalString("merge_file") {
                tokenizer = try Tokenizer.load(vocabFile: vocab, mergesFile: merges)
                tokenizerFiles = [vocab, merges]
            } else {
                throw CurationError("\(configPath): give tokenizer_file, or vocab_file and merge_file (preprocess needs a tokenizer)")
            }
        } catch let error as CurationError {
            throw error
        } catch {
            throw CurationError("\(configPath): tokenizer: \(error)")
        }
        appendEndOfDocument = try config.optionalBool("append_eod") ?? true
        threads = try config.optionalInteger("threads", in: 1...256) ?? 2
        trainTokens = try config.optionalInteger("train_tokens", in: 1...Int(1e18))
        // The blend's specification is checked now, before any step runs.
        do { try Blend.checkSpecification(datasets.map { ($0.name, $0.weight, $0.epochs) }, trainTokens: trainTokens) } catch {
            throw CurationError("\(configPath): \(error.description)")
        }
        if let section = config.value("filter") {
            filters = try Self.filters(Section(section, path: configPath, name: "filter", keys: Self.filterKeys))
        }
        if let section = config.value("classifier") {
            let c = try Section(section, path: configPath, name: "classifier", keys: ["model", "threshold", "pareto_alpha", "seed"])
            let modelPath = try c.string("model")
            let model = try QualityClassifier.load(from: modelPath)
            if c.value("threshold") != nil && c.value("pareto_alpha") != nil {
                throw CurationError("\(configPath): classifier takes threshold or pareto_alpha, not both: they are two ways of choosing what to keep")
            }
            var selection = QualityClassifier.Selection.threshold(try c.optionalNumber("threshold", in: 0...1) ?? 0.5)
            if let alpha = try c.optionalNumber("pareto_alpha", in: 0.000_001...1e6) {
                selection = .pareto(alpha: alpha, seed: UInt32(try c.optionalInteger("seed", in: 0...Int(UInt32.max)) ?? 1234))
            }
            classifier = (model, modelPath, selection)
        }
        if let section = config.value("dedup") {
            let d = try Section(section, path: configPath, name: "dedup",
                                keys: ["threshold", "num_perm", "ngram", "bands", "rows", "seed", "scheme", "no_verify", "exact_only"])
            var options = DedupOptions()
            options.threshold = try d.optionalNumber("threshold", in: 0.000_001...1) ?? options.threshold
            options.permutations = try d.optionalInteger("num_perm", in: 1...4096) ?? options.permutations
            options.ngram = try d.optionalInteger("ngram", in: 1...1000) ?? options.ngram
            options.bands = try d.optionalInteger("bands", in: 1...options.permutations)
            options.rows = try d.optionalInteger("rows", in: 1...options.permutations)
            if let bands = options.bands, let rows = options.rows, bands * rows > options.permutations {
                throw CurationError("\(configPath): dedup.bands x dedup.rows must not exceed num_perm \(options.permutations)")
            }
            options.seed = UInt32(try d.optionalInteger("seed", in: 0...Int(UInt32.max)) ?? 1)
            if let scheme = try d.optionalString("scheme") {
                guard let value = MinHashPermutations.Scheme(rawValue: scheme) else {
                    throw CurationError("\(configPath): dedup.scheme must be affine32 or legacy, got \"\(scheme)\"")
                }
                options.scheme = value
            }
            options.verify = !(try d.optionalBool("no_verify") ?? false)
            options.fuzzy = !(try d.optionalBool("exact_only") ?? false)
            dedup = options
        }
        if let section = config.value("decontaminate") {
            let d = try Section(section, path: configPath, name: "decontaminate",
                                keys: ["task_data", "task_keys", "ngram", "window", "too_dirty_cutoff", "min_piece_length", "max_task_frequency"])
            var settings = Decontaminator.Settings()
            settings.ngram = try d.optionalInteger("ngram", in: 1...1000) ?? settings.ngram
            settings.window = try d.optionalInteger("window", in: 0...1 << 30) ?? settings.window
            settings.tooDirtyCutoff = try d.optionalInteger("too_dirty_cutoff", in: 0...1 << 30) ?? settings.tooDirtyCutoff
            settings.minimumPieceLength = try d.optionalInteger("min_piece_length", in: 0...1 << 30) ?? settings.minimumPieceLength
            settings.maxTaskFrequency = try d.optionalInteger("max_task_frequency", in: 1...1 << 30)
            var decontaminator = Decontaminator(settings: settings)
            taskFiles = try d.strings("task_data")
            try decontaminator.register(taskFiles: taskFiles, keys: try d.optionalStrings("task_keys") ?? [])
            self.decontaminator = decontaminator
        }
    }

    static let filterKeys = ["min_words", "max_words", "min_mean_word_length", "max_mean_word_length", "max_symbol_word_ratio",
                             "max_bullet_lines", "max_ellipsis_lines", "min_alphabetic_words", "min_stop_words",
                             "min_terminal_punctuation_lines", "max_duplicate_lines", "max_duplicate_paragraphs",
                             "max_duplicate_line_characters", "max_duplicate_paragraph_characters"]

    static func filters(_ s: Section) throws(CurationError) -> QualityFilters {
        var f = QualityFilters()
        func set(_ key: String, _ path: WritableKeyPath<QualityFilters, Double>) throws(CurationError) {
            if let value = try s.optionalNumber(key) { f[keyPath: path] = value }
        }
        func set(_ key: String, _ path: WritableKeyPath<QualityFilters, Int>) throws(CurationError) {
            if let value = try s.optionalInteger(key, in: 0...1 << 40) { f[keyPath: path] = value }
        }
        try set("min_words", \.minWords)
        try set("max_words", \.maxWords)
        try set("min_mean_word_length", \.minMeanWordLength)
        try set("max_mean_word_length", \.maxMeanWordLength)
        try set("max_symbol_word_ratio", \.maxSymbolWordRatio)
        try set("max_bullet_lines", \.maxBulletLines)
        try set("max_ellipsis_lines", \.maxEllipsisLines)
        try set("min_alphabetic_words", \.minAlphabeticWords)
        try set("min_stop_words", \.minStopWords)
        try set("min_terminal_punctuation_lines", \.minTerminalPunctuationLines)
        try set("max_duplicate_lines", \.maxDuplicateLines)
        try set("max_duplicate_paragraphs", \.maxDuplicateParagraphs)
        try set("max_duplicate_line_characters", \.maxDuplicateLineCharacters)
        try set("max_duplicate_paragraph_characters", \.maxDuplicateParagraphCharacters)
        do { try f.validate { "\(s.name).\($0.replacing("-", with: "_"))" } } catch { throw CurationError("\(s.path): \(error.description)") }
        return f
    }
}

/// One JSON object of the config, its keys checked, its values read by type with errors naming
/// the file and the key.
struct Section {
    let fields: [(key: String, value: JSONValue)]
    let path: String
    let name: String

    init(_ value: JSONValue, path: String, name: String, keys: [String]) throws(CurationError) {
        guard case let .object(fields) = value else { throw CurationError("\(path): \(name) must be a JSON object") }
        for field in fields where !keys.contains(field.key) {
            throw CurationError("\(path): \(name) has an unknown key \"\(field.key)\" (known: \(keys.joined(separator: ", ")))")
        }
        self.fields = fields
        self.path = path
        self.name = name
    }

    func value(_ key: String) -> JSONValue? { fields.first { $0.key == key }?.value }

    private func wrong(_ key: String, _ type: String) -> CurationError { CurationError("\(path): \(name).\(key) must be \(type)") }

    func string(_ key: String) throws(CurationError) -> String {
        guard let value = try optionalString(key) else { throw CurationError("\(path): \(name).\(key) is required") }
        return value
    }

    func optionalString(_ key: String) throws(CurationError) -> String? {
        guard let value = value(key), value != .null else { return nil }
        guard case let .string(text) = value else { throw wrong(key, "a string") }
        return text
    }

    func optionalNumber(_ key: String) throws(CurationError) -> Double? {
        guard let value = value(key), value != .null else { return nil }
        guard case let .number(x) = value, x.isFinite, x >= 0 else { throw wrong(key, "a non-negative number") }
        return x
    }

    /// A number in `range`.
    func optionalNumber(_ key: String, in range: ClosedRange<Double>) throws(CurationError) -> Double? {
        guard let value = try optionalNumber(key) else { return nil }
        guard range.contains(value) else { throw wrong(key, "in \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    /// A whole number in `range`.
    func optionalInteger(_ key: String, in range: ClosedRange<Int>) throws(CurationError) -> Int? {
        guard let value = try optionalNumber(key) else { return nil }
        guard value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            throw wrong(key, "a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(value)
    }

    func optionalBool(_ key: String) throws(CurationError) -> Bool? {
        guard let value = value(key), value != .null else { return nil }
        guard case let .bool(flag) = value else { throw wrong(key, "true or false") }
        return flag
    }

    func optionalStrings(_ key: String) throws(CurationError) -> [String]? {
        guard let value = value(key), value != .null else { return nil }
        guard case let .array(items) = value else { throw wrong(key, "a list of strings") }
        return try items.map { item throws(CurationError) in
            guard case let .string(text) = item else { throw wrong(key, "a list of strings") }
            return text
        }
    }

    func strings(_ key: String) throws(CurationError) -> [String] {
        guard let value = try optionalStrings(key), !value.isEmpty else { throw CurationError("\(path): \(name).\(key) is required") }
        return value
    }
}

extension CurationPipeline {
    /// The config file's document (`ConfigDocument`: YAML for `.yaml`/`.yml`, else JSON).
    static func configDocument(_ path: String) throws(CurationError) -> JSONValue {
        let document: JSONValue?
        do { document = try ConfigDocument.read(path) } catch { throw CurationError("\(path): \(error.description)") }
        guard let document else { throw CurationError("\(path): the config is empty") }
        return document
    }
}
