#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// `megatron` re-executes itself with `OMP_WAIT_POLICY=PASSIVE` and `OPENBLAS_THREAD_TIMEOUT=4`
/// (read by libgomp and OpenBLAS when they load) unless the user set them. Checked on a running
/// `megatron train` through `/proc/<pid>/environ`, the environment its current image started with.
@Suite(.serialized) struct ThreadWaitPolicyProcessTests {
    /// The environment of a `megatron train` started with `environment`, once it has re-executed
    /// itself (or after 20 s, as it is then).
    static func runningEnvironment(_ environment: [String: String]) throws -> [String: String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TrainProcessTests.binary)
        process.arguments = TrainProcessTests.arguments([])
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        var seen: [String: String] = [:]
        let deadline = Date().addingTimeInterval(20)
        repeat {
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(process.processIdentifier)/environ"))) ?? Data()
            seen = Dictionary(raw.split(separator: 0).compactMap { entry -> (String, String)? in
                let text = String(decoding: entry, as: UTF8.self)
                guard let equals = text.firstIndex(of: "=") else { return nil }
                return (String(text[..<equals]), String(text[text.index(after: equals)...]))
            }, uniquingKeysWith: { _, last in last })
            if seen["OMP_WAIT_POLICY"] != nil { break }
            usleep(20_000)
        } while process.isRunning && Date() < deadline
        return seen
    }

    /// The test process's environment without the two variables.
    static var cleanEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_WAIT_POLICY"] = nil
        environment["OPENBLAS_THREAD_TIMEOUT"] = nil
        return environment
    }

    @Test func setsBothWaitPoliciesWhenUnset() throws {
        let seen = try Self.runningEnvironment(Self.cleanEnvironment)
        #expect(seen["OMP_WAIT_POLICY"] == "PASSIVE")
        #expect(seen["OPENBLAS_THREAD_TIMEOUT"] == "4")
    }

    @Test func keepsWhatTheUserSet() throws {
        var environment = Self.cleanEnvironment
        environment["OPENBLAS_THREAD_TIMEOUT"] = "28"
        let seen = try Self.runningEnvironment(environment)
        #expect(seen["OPENBLAS_THREAD_TIMEOUT"] == "28")
        #expect(seen["OMP_WAIT_POLICY"] == "PASSIVE")
    }
}
