#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import FileSupport

/// The `--save` folder of a run: claimed by one process for the run's lifetime, and cleared of the
/// leftovers of earlier runs that were killed while writing.
public enum SaveFolder {
    /// Creates `path` if needed and takes its exclusive lock (`DirectoryLock`); keep the result
    /// for as long as the run may write. Throws naming the folder when another process holds it
    /// or it cannot be written.
    public static func claim(_ path: String) throws(TrainingError) -> DirectoryLock {
        do {
            return try DirectoryLock(directory: path)
        } catch {
            switch error {
            case .held(let pid):
                let holder = pid.map { "process \($0)" } ?? "another process"
                throw .invalidFlag("--save", "\(path) is in use by \(holder) (another training run saves there); "
                                   + "give each run its own --save folder")
            case .unusable(let failure):
                throw .invalidFlag("--save", "\(path) is not a writable folder: \(failure)")
            }
        }
    }

    /// Removes what killed writers left in `path` (call it holding the folder's lock, before any
    /// rank writes): `AtomicFileWriter`'s `NAME.tmp-PID-N` files, unfinished `iter_N.tmp`
    /// checkpoint folders, and `iter_N.old` folders that a finished `iter_N` replaced. An
    /// `iter_N.old` without `iter_N` is the only complete copy of that checkpoint and is moved back
    /// to `iter_N`. Complete checkpoints are never removed. Returns one entry per action.
    public static func removeStaleTemporaries(in path: String) throws(TrainingError) -> [String] {
        let files = FileManager.default
        let names: [String]
        do { names = try files.contentsOfDirectory(atPath: path).sorted() } catch {
            throw .invalidFlag("--save", "cannot list \(path): \(error)")
        }
        var actions = [String]()
        for name in names {
            let item = path + "/" + name
            // lstat: a symbolic link is neither, and is never followed.
            var status = stat()
            guard lstat(item, &status) == 0 else { continue }
            let isFile = status.st_mode & S_IFMT == S_IFREG, isDirectory = status.st_mode & S_IFMT == S_IFDIR
            do {
                if isFile, isAtomicWriterTemporary(name) {
                    try files.removeItem(atPath: item)
                    actions.append("removed " + name)
                } else if isDirectory, checkpointIteration(name, suffix: ".tmp") != nil {
                    try files.removeItem(atPath: item)
                    actions.append("removed " + name)
                } else if isDirectory, let iteration = checkpointIteration(name, suffix: ".old") {
                    let final = Checkpoint.directoryName(iteration: iteration)
                    if files.fileExists(atPath: path + "/" + final) {
                        try files.removeItem(atPath: item)
                        actions.append("removed " + name)
                    } else {
                        try files.moveItem(atPath: item, toPath: path + "/" + final)
                        actions.append("restored \(name) as \(final)")
                    }
                }
            } catch {
                throw .checkpoint(path: item, reason: "cannot clean up this leftover of an earlier run: \(error)")
            }
        }
        return actions
    }

    /// Whether `name` is `AtomicFileWriter`'s temporary name: `BASE.tmp-PID-N` (both numbers).
    static func isAtomicWriterTemporary(_ name: String) -> Bool {
        (try? Regex(".+\\.tmp-[0-9]+-[0-9]+").wholeMatch(in: name)) != nil
    }

    /// N for `iter_N` + `suffix` (N as `Checkpoint.directoryName` writes it), else nil.
    static func checkpointIteration(_ name: String, suffix: String) -> Int? {
        guard name.hasPrefix("iter_"), name.hasSuffix(suffix) else { return nil }
        let digits = name.dropFirst(5).dropLast(suffix.count)
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let iteration = Int(digits),
              Checkpoint.directoryName(iteration: iteration) + suffix == name else { return nil }
        return iteration
    }
}
