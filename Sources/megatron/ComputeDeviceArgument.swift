import Accelerator
import ArgumentParser

/// `--device cpu|cuda` on the commands that compute (train reads it from its flag table).
extension ComputeDevice: ExpressibleByArgument {}

/// The `--device` option of bench, evaluate, generate and serve.
struct DeviceOptions: ParsableArguments {
    @Option(name: .long, help: "cpu, or cuda (one NVIDIA GPU through libmegatron_cuda.so; see the README).")
    var device: ComputeDevice = .cpu

    /// Starts the device before any buffer exists (on a GPU they all take its managed memory);
    /// on a GPU prints which one on standard error (standard output stays the command's).
    /// `allowsAsynchronous`: see `CUDAAccelerator.init` (bench only).
    func activate(allowsAsynchronous: Bool = false) throws {
        let note = try GPU.activate(device, allowsAsynchronous: allowsAsynchronous)
        if device != .cpu { printError(note) }
    }
}
