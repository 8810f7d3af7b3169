import ArgumentParser

/// The `megatron` command: one binary for every stage of the workflow.
@main
struct Megatron: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "megatron",
        abstract: "Megatron-style GPT training on the CPU, in Swift.",
        subcommands: [TrainCommand.self, EvaluateCommand.self, GenerateCommand.self, ConvertCommand.self, BenchCommand.self, PlanCommand.self, TokenizerCommand.self, PreprocessCommand.self])
}
