import FileSupport
import Tokenizer

extension CurationPipeline {
    /// Reads a `curate run` config (see `CurationPipeline`); relative paths are relative to the
    /// working directory. A key the config does not know, a value of the wrong type or a missing
    /// one is an error naming the file and the key.
    public init(configPath: String) throws(CurationError) {
        let root: JSONValue
        do { root = try JSONValue.parse(utf8: try MappedFile.read(path: configPath)) } catch {
            throw CurationError("\(configPath): \(error)")
        }
        let config = try Section(root, path: configPath, name: "config",
                                 keys: ["output_dir", "datasets", "json_key", "malformed", "tokenizer_file", "vocab_file", "merge_file",
                                        "append_eod", "train_tokens", "filter", "classifier", "dedup", "decontaminate"])
        outputDirectory = try config.string("output_dir")
        guard case let .array(items)? = config.value("datasets"), !items.isEmpty else {
            throw CurationError("\(configPath): \"datasets\" must be a non-empty list")
        }
        datasets = []
        for (i, item) in items.enumerated() {
            let entry = try Section(item, path: configPath, name: "datasets[\(i)]", keys: ["name", "input", "weight", "epochs"])
            let name = try entry.string("name")
            guard !name.isEmpty, !name.contains("/"), !datasets.contains(where: { $0.name == name }) else {
                throw CurationError("\(configPath): datasets[\(i)].name must be a unique file name, got \"\(name)\"")
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
            } else if let vocab = try config.optionalString("vocab_file"), let merges = try config.optionalString("merge_file") {
                tokenizer = try Tokenizer.load(vocabFile: vocab, mergesFile: merges)
            } else {
                throw CurationError("\(configPath): give tokenizer_file, or vocab_file and merge_file (preprocess needs a tokenizer)")
            }
        } catch let error as CurationError {
            throw error
        } catch {
            throw CurationError("\(configPath): tokenizer: \(error)")
        }
        appendEndOfDocument = try config.optionalBool("append_eod") ?? true
        trainTokens = try config.optionalNumber("train_tokens").map { Int($0) }
        if let section = config.value("filter") {
            filters = try Self.filters(Section(section, path: configPath, name: "filter", keys: Self.filterKeys))
        }
        if let section = config.value("classifier") {
            let c = try Section(section, path: configPath, name: "classifier", keys: ["model", "threshold", "pareto_alpha", "seed"])
            let model = try QualityClassifier.load(from: try c.string("model"))
            var selection = QualityClassifier.Selection.threshold(try c.optionalNumber("threshold") ?? 0.5)
            if let alpha = try c.optionalNumber("pareto_alpha") {
                selection = .pareto(alpha: alpha, seed: UInt32(try c.optionalNumber("seed") ?? 1234))
            }
            classifier = (model, selection)
        }
        if let section = config.value("dedup") {
            let d = try Section(section, path: configPath, name: "dedup",
                                keys: ["threshold", "num_perm", "ngram", "bands", "rows", "seed", "verify", "exact_only", "threads"])
            var options = DedupOptions()
            options.threshold = try d.optionalNumber("threshold") ?? options.threshold
            options.permutations = Int(try d.optionalNumber("num_perm") ?? Double(options.permutations))
            options.ngram = Int(try d.optionalNumber("ngram") ?? Double(options.ngram))
            options.bands = try d.optionalNumber("bands").map { Int($0) }
            options.rows = try d.optionalNumber("rows").map { Int($0) }
            options.seed = UInt32(try d.optionalNumber("seed") ?? 1)
            options.verify = try d.optionalBool("verify") ?? true
            options.fuzzy = !(try d.optionalBool("exact_only") ?? false)
            options.threads = Int(try d.optionalNumber("threads") ?? 2)
            dedup = options
        }
        if let section = config.value("decontaminate") {
            let d = try Section(section, path: configPath, name: "decontaminate",
                                keys: ["task_data", "task_keys", "ngram", "window", "too_dirty_cutoff", "min_piece_length", "max_task_frequency"])
            var settings = Decontaminator.Settings()
            settings.ngram = Int(try d.optionalNumber("ngram") ?? Double(settings.ngram))
            settings.window = Int(try d.optionalNumber("window") ?? Double(settings.window))
            settings.tooDirtyCutoff = Int(try d.optionalNumber("too_dirty_cutoff") ?? Double(settings.tooDirtyCutoff))
            settings.minimumPieceLength = Int(try d.optionalNumber("min_piece_length") ?? Double(settings.minimumPieceLength))
            settings.maxTaskFrequency = try d.optionalNumber("max_task_frequency").map { Int($0) }
            var decontaminator = Decontaminator(settings: settings)
            try decontaminator.register(taskFiles: try d.strings("task_data"), keys: try d.optionalStrings("task_keys") ?? [])
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
            if let value = try s.optionalNumber(key) { f[keyPath: path] = Int(value) }
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
