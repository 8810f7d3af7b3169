import FileSupport
#if canImport(Glibc)
import Glibc
#endif

/// What one run's `--metrics-file` says, as the dashboard shows it.
///
/// The file holds three kinds of JSON lines: a header (`"record": "header"`, written when a run
/// starts or resumes: settings, parallel layout, the planner's prediction), one record per
/// logged iteration (`lm_loss`, `lr`, ...) and one per validation (`validation_loss`). A resumed
/// run appends to the same file, so an iteration may appear twice: the later record wins, and
/// the curve continues. A line that is not a JSON object is skipped and reported by its number.
public struct RunMetrics: Sendable {
    /// The name the page shows (the file's name, made unique among the runs shown).
    public var name: String
    /// The metrics file.
    public let path: String
    /// The latest header record; nil until one is read (files of older runs have none).
    public var header: JSONValue?
    /// Header records read: 1 for a run that started once, one more per resume.
    public var starts = 0
    /// Numeric fields of each logged iteration, by iteration.
    public var training: [Int: [String: Double]] = [:]
    /// Numeric fields of each validation, by iteration.
    public var validation: [Int: [String: Double]] = [:]
    /// Lines skipped, each as "line N: reason".
    public var warnings: [String] = []
    /// Complete lines read so far.
    public var lines = 0

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    /// The points of `key` over the logged iterations (`validation`: over the validations),
    /// in iteration order; records without a finite value for it are left out.
    public func points(_ key: String, validation: Bool = false) -> [(iteration: Int, value: Double)] {
        let records = validation ? self.validation : training
        return records.keys.sorted().compactMap { iteration in
            records[iteration]![key].flatMap { $0.isFinite ? (iteration, $0) : nil }
        }
    }

    /// The last logged iteration, or nil before the first record.
    public var lastIteration: Int? { training.keys.max() }

    /// Reads one line (without its newline) numbered `number`.
    mutating func read(line bytes: ArraySlice<UInt8>, number: Int) {
        lines = number
        if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") }) { return }
        let value: JSONValue
        do { value = try JSONValue.parse(utf8: Array(bytes)) } catch {
            return warnings.append("line \(number): not JSON (\(error))")
        }
        guard case let .object(members) = value else {
            return warnings.append("line \(number): \(value.typeName), not a JSON object")
        }
        if value["record"] == .string("header") {
            header = value
            starts += 1
            return
        }
        guard case let .number(iteration)? = value["iteration"], iteration >= 0, iteration == iteration.rounded(),
              iteration < 1e15 else {
            return warnings.append("line \(number): no whole-number \"iteration\"")
        }
        var fields = [String: Double]()
        for (key, member) in members {
            switch member {
            case let .number(x): fields[key] = x
            case let .bool(flag): fields[key] = flag ? 1 : 0
            case .null: fields[key] = .nan  // a non-finite value (the writer's JSON has no NaN)
            case let .array(values):  // per-stage figures: "key.0", "key.1", ...
                for (i, element) in values.enumerated() {
                    if case let .number(x) = element { fields["\(key).\(i)"] = x }
                }
            default: break
            }
        }
        if fields["validation_loss"] != nil {
            validation[Int(iteration)] = fields
        } else {
            training[Int(iteration)] = fields
        }
    }
}

/// Reads a metrics file as it grows: each `refresh` parses only the complete lines appended since
/// the last one (a line still being written waits for its newline). A file that shrank or was
/// replaced is read again from its start.
public final class MetricsFileReader: @unchecked Sendable {
    /// The run as read so far.
    public private(set) var run: RunMetrics
    private var offset = 0
    private var pending: [UInt8] = []
    private var lineNumber = 0
    private var identity: (device: UInt, inode: UInt)?

    public init(path: String, name: String) {
        run = RunMetrics(name: name, path: path)
    }

    /// Reads what was appended; throws when the file cannot be read (missing, unreadable), keeping
    /// what was read before.
    @discardableResult
    public func refresh() throws(FileError) -> RunMetrics {
        let path = run.path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileError(path: path, reason: "cannot stat") }
        let size = Int(status.st_size)
        let current = (UInt(status.st_dev), UInt(status.st_ino))
        if size < offset || (identity.map { $0 != current } ?? false) {  // rewritten: start over
            run = RunMetrics(name: run.name, path: path)
            (offset, pending, lineNumber) = (0, [], 0)
        }
        identity = current
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while offset < size {
            let n = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += n
            var start = 0
            for i in 0..<n where chunk[i] == UInt8(ascii: "\n") {
                lineNumber += 1
                if pending.isEmpty {
                    run.read(line: chunk[start..<i], number: lineNumber)
                } else {
                    pending += chunk[start..<i]
                    run.read(line: pending[...], number: lineNumber)
                    pending = []
                }
                start = i + 1
            }
            pending += chunk[start..<n]
        }
        return run
    }
}
