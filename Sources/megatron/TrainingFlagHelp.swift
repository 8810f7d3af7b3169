import ArgumentParser
import Training

/// Options that share a flag with `megatron train` take its name and help from `TrainingFlag`:
/// `@Option(name: .flag(.numLayers), help: .flag(.numLayers))`.
extension NameSpecification {
    /// `--NAME` of a train flag.
    static func flag(_ flag: TrainingFlag) -> NameSpecification { .customLong(flag.name) }
}

extension ArgumentHelp {
    /// A train flag's help line, with what differs for this command appended (`note`).
    static func flag(_ flag: TrainingFlag, _ note: String? = nil) -> ArgumentHelp {
        ArgumentHelp(note.map { flag.help + " " + $0 } ?? flag.help)
    }
}
