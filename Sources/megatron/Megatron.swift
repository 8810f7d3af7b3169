import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// The `megatron` command: one binary for every stage of the workflow.
@main
struct Megatron: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "megatron",
        abstract: "Megatron-style GPT training on the CPU, in Swift.",
        subcommands: [TrainCommand.self, EvaluateCommand.self, GenerateCommand.self, ServeCommand.self, ConvertCommand.self, BenchCommand.self, PlanCommand.self, TokenizerCommand.self, PreprocessCommand.self, CurateCommand.self, FinetuneCommand.self, DashboardCommand.self, CUDACheckCommand.self])

    /// Parses and runs the subcommand. A failure prints one `Error:` line (no usage block after
    /// it: the message names the flag or file) and exits non-zero; `--help` prints the help.
    static func main() {
        LibraryEnvironment.applyBeforeLibrariesStart()
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            fail(error)
        }
        do {
            try command.run()
        } catch {
            fail(error)
        }
    }

    /// Prints `error` as one line on standard error and exits with its code (64 for usage
    /// errors, 1 otherwise); `--help` and `--version` (clean exits) print what was asked for.
    private static func fail(_ error: Error) -> Never {
        if exitCode(for: error) == .success { Self.exit(withError: error) }
        printError("Error: " + message(for: error))
        let code = exitCode(for: error).rawValue
        Glibc.exit(code == 0 ? 1 : code)
    }
}
