import Foundation
import Parameters
import Testing

@Suite struct SafeTensorsTests {
    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("megatron-\(getpid())-\(name)").path
    }

    @Test func writeThenReadRoundTrips() throws {
        let path = temporaryPath("roundtrip.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a: [Float] = [1, -2.5, 3e-8, 4]
        let b: [Float] = (0..<6).map { Float($0) / 7 }
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try SafeTensorsFile.write([("a", [2, 2], pa), ("layer.b", [6], pb)], metadata: ["step": "3"], to: path)
            }
        }
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["a", "layer.b"])
        #expect(try file.shape("a") == [2, 2])
        #expect(try file.floats("a") == a)
        #expect(try file.floats("layer.b") == b)
        #expect(file.metadata["step"] == "3")
        #expect(throws: TensorFileError.missingTensor(path: path, name: "c")) { try file.floats("c") }
        #expect(!FileManager.default.fileExists(atPath: "\(path).tmp-\(getpid())"))
    }

    @Test func truncatedAndCorruptFilesGiveOneClearError() throws {
        let path = temporaryPath("truncated.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let values: [Float] = [1, 2, 3, 4, 5]
        try values.withUnsafeBufferPointer { try SafeTensorsFile.write([("x", [5], $0)], to: path) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func isMalformed(_ data: [UInt8]) -> Bool {
            do {
                _ = try SafeTensorsFile(bytes: data, path: path)
                return false
            } catch {
                if case .malformed = error { return true }
                return false
            }
        }
        #expect(isMalformed(Array(bytes.dropLast(4))))          // payload cut short
        #expect(isMalformed(Array(bytes.prefix(5))))            // not even a header length
        var garbled = bytes
        garbled[9] = UInt8(ascii: "#")                          // header no longer JSON
        #expect(isMalformed(garbled))
        #expect(throws: TensorFileError.self) { try SafeTensorsFile(path: path + ".missing") }
    }
}
