import Distributed
import Finetuning
import Models
import Testing
import TestSupport
import Training

/// `finetune` checks memory as `train` does: a run its ranks cannot fit is refused before the
/// model is built, with the figures and what would fit, and a multiple-choice question counts as
/// its choices' sequences.
@Suite struct FinetuneMemoryTests {
    /// One rank's requirement for `task` with the layout tests' settings (and `microBatch`).
    static func need(_ task: FinetuneTask, microBatch: Int? = nil, sequencesPerSample: Int? = nil) throws -> MemoryRequirement {
        let settings = FinetuningLayoutTests.settings(task)
        let start = try Finetuner.startingWeights(pretrained: try FinetuningLayoutTests.pretrained(), settings: settings)
        var run = MemoryCheckRun(microBatchSize: microBatch ?? settings.microBatchSize, globalBatchSize: settings.globalBatchSize!,
                                 seqLength: settings.seqLength)
        run.sequencesPerSample = sequencesPerSample ?? task.head.sequencesPerLabel
        return try MemoryRequirement.check(config: start.config, run: run, layout: ParallelState.single.grid, parallel: .single,
                                           available: nil)[0]
    }

    @Test func aRunThatDoesNotFitIsRefusedWithWhatWould() throws {
        let settings = FinetuningLayoutTests.settings(.mnli)
        let start = try Finetuner.startingWeights(pretrained: try FinetuningLayoutTests.pretrained(), settings: settings)
        let need = try Self.need(.mnli), needOfOne = try Self.need(.mnli, microBatch: 1)
        #expect(settings.microBatchSize == 2 && needOfOne.peak < need.peak)
        // Room for the run with one example per micro-batch, not for two.
        var one = settings
        one.microBatchSize = 1
        let fitsOne = (needOfOne.peak + need.peak) / 2
        do {
            _ = try Finetuner(startingWeights: start, settings: settings, trainExamples: 24, availableMemory: fitsOne)
            Issue.record("a run that does not fit was not refused")
        } catch let error as TrainingError {
            #expect("\(error)".contains("needs about") && "\(error)".contains("--micro-batch-size 1 would fit"), "\(error)")
        }
        _ = try Finetuner(startingWeights: start, settings: one, trainExamples: 24, availableMemory: fitsOne)
        _ = try Finetuner(startingWeights: start, settings: settings, trainExamples: 24, availableMemory: need.peak * 1.01)
    }

    @Test func aMultipleChoiceQuestionCountsItsChoices() throws {
        let race = try Self.need(.race), asOneSequence = try Self.need(.race, sequencesPerSample: 1)
        #expect(FinetuneTask.race.head.sequencesPerLabel == 4)
        #expect(race.activations > 3.5 * asOneSequence.activations)
        // The fine-tuner counts them: room for the questions as one sequence each is not enough.
        let settings = FinetuningLayoutTests.settings(.race)
        let start = try Finetuner.startingWeights(pretrained: try FinetuningLayoutTests.pretrained(), settings: settings)
        #expect(throws: TrainingError.self) {
            _ = try Finetuner(startingWeights: start, settings: settings, trainExamples: 24,
                              availableMemory: (asOneSequence.peak + race.peak) / 2)
        }
    }
}
