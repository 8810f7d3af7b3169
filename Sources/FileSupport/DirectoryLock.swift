#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive claim on a folder for one process's lifetime: `flock` on a lock file inside it,
/// which the kernel releases when the process exits or crashes (no stale lock to clean up). The
/// holder's pid is written into the file so that a refused writer can name it. Creating the
/// folder and the lock file also proves the folder is writable.
public final class DirectoryLock {
    /// The lock file's name inside the folder.
    public static let fileName = ".megatron.lock"

    /// Why a folder could not be claimed.
    public enum Failure: Error, Equatable, Sendable {
        /// Another process (pid when it recorded one) holds the lock.
        case held(pid: Int32?)
        /// The folder or its lock file cannot be created or opened (not writable, not a folder).
        case unusable(FileError)
    }

    /// The folder this lock claims.
    public let directory: String
    private var descriptor: Int32

    /// Creates `directory` if needed and takes its lock without waiting; throws `.held` when
    /// another open lock file (another process, or another `DirectoryLock` here) holds it.
    public init(directory: String) throws(Failure) {
        self.directory = directory
        do { try Directory.create(directory) } catch { throw .unusable(error) }
        let path = directory + "/" + Self.fileName
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .unusable(.system("cannot create the lock file", path)) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let failure: Failure = errno == EWOULDBLOCK
                ? .held(pid: Self.recordedPID(descriptor)) : .unusable(.system("cannot lock", path))
            close(descriptor)
            descriptor = -1
            throw failure
        }
        // Record our pid for the next writer's message (best effort: the lock is what counts).
        let text = Array("\(getpid())\n".utf8)
        if ftruncate(descriptor, 0) == 0 {
            _ = text.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// The pid the current holder wrote into the lock file, if any. A holder that has just taken
    /// the lock may not have written it yet: wait for it a little (up to 0.2 s).
    private static func recordedPID(_ descriptor: Int32) -> Int32? {
        for _ in 0..<20 {
            var bytes = [UInt8](repeating: 0, count: 32)
            let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0, bytes[count - 1] == UInt8(ascii: "\n"),
               let pid = Int32(String(decoding: bytes.prefix(count - 1), as: UTF8.self)) {
                return pid
            }
            usleep(10_000)
        }
        return nil
    }
}
