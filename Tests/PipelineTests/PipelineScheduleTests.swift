import Testing
@testable import Pipeline

@Suite struct PipelineScheduleTests {
    @Test func oneForwardOneBackwardMatchesTheFormulas() throws {
        for p in 1...6 {
            for m in 1...12 {
                let simulation = try PipelineSimulation(try PipelineSchedule(kind: .oneForwardOneBackward, stages: p, microBatches: m))
                #expect(abs(simulation.bubbleFraction - Double(p - 1) / Double(m)) < 1e-12, "p \(p) m \(m)")
                // Stage r holds at most p - r micro-batches (never more than m).
                #expect(simulation.peakActivations == (0..<p).map { min(p - $0, m) }, "p \(p) m \(m)")
                #expect(simulation.messages == 2 * m * (p - 1))
            }
        }
    }

    @Test func gpipeHoldsEveryMicroBatch() throws {
        for p in 1...5 {
            for m in 1...9 {
                let simulation = try PipelineSimulation(try PipelineSchedule(kind: .gpipe, stages: p, microBatches: m))
                #expect(abs(simulation.bubbleFraction - Double(p - 1) / Double(m)) < 1e-12, "p \(p) m \(m)")
                #expect(simulation.peakActivations == Array(repeating: m, count: p))
            }
        }
    }

    @Test func interleavingDividesTheBubbleByTheChunks() throws {
        for p in 2...4 {
            for v in 2...3 {
                for m in stride(from: 2 * p, through: 4 * p, by: p) {
                    let schedule = try PipelineSchedule(kind: .interleaved(virtualStages: v), stages: p, microBatches: m)
                    let simulation = try PipelineSimulation(schedule)
                    #expect(abs(simulation.bubbleFraction - Double(p - 1) / Double(v * m)) < 1e-12, "p \(p) v \(v) m \(m): \(simulation.bubbleFraction)")
                    #expect(simulation.messages == 2 * m * (p * v - 1))
                    // Megatron's warm-up: (p - r - 1) 2 + (v - 1) p forwards, then one more before
                    // the first backward (counted in chunk activations, each 1/v of a stage's).
                    #expect(simulation.peakActivations == (0..<p).map { min((p - $0 - 1) * 2 + (v - 1) * p + 1, m * v) })
                }
            }
        }
    }

    @Test func interleavingWithAsManyMicroBatchesAsStagesRunsAllForwardsFirst() throws {
        let schedule = try PipelineSchedule(kind: .interleaved(virtualStages: 2), stages: 2, microBatches: 2)
        let simulation = try PipelineSimulation(schedule)
        #expect(simulation.peakActivations == [4, 4])
        let computes = schedule.instructions(stage: 1).filter {
            if case .forward = $0 { return true }
            if case .backward = $0 { return true }
            return false
        }
        #expect(computes.map(\.description) == ["F(0,0)", "F(1,0)", "F(0,1)", "F(1,1)", "B(0,1)", "B(1,1)", "B(0,0)", "B(1,0)"])
    }

    @Test func oneForwardOneBackwardListOfTheFirstStage() throws {
        let schedule = try PipelineSchedule(kind: .oneForwardOneBackward, stages: 2, microBatches: 3)
        #expect(schedule.instructions(stage: 0).map(\.description) == [
            "F(0,0)", "send-act(0,0)",                                            // warm-up
            "F(1,0)", "send-act(1,0)", "recv-grad(0,0)", "B(0,0)",               // steady 1F1B
            "F(2,0)", "send-act(2,0)", "recv-grad(1,0)", "B(1,0)",
            "recv-grad(2,0)", "B(2,0)",                                          // cool-down
        ])
        #expect(schedule.instructions(stage: 1).map(\.description) == [
            "recv-act(0,0)", "F(0,0)", "B(0,0)", "send-grad(0,0)",
            "recv-act(1,0)", "F(1,0)", "B(1,0)", "send-grad(1,0)",
            "recv-act(2,0)", "F(2,0)", "B(2,0)", "send-grad(2,0)",
        ])
    }

    @Test func invalidCombinationsAreErrors() {
        #expect(throws: PipelineScheduleError.self) { try PipelineSchedule(kind: .gpipe, stages: 0, microBatches: 4) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSchedule(kind: .oneForwardOneBackward, stages: 2, microBatches: 0) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSchedule(kind: .interleaved(virtualStages: 2), stages: 4, microBatches: 6) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSchedule(kind: .interleaved(virtualStages: 1), stages: 2, microBatches: 4) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSchedule(kind: .interleaved(virtualStages: 2), stages: 1, microBatches: 4) }
    }

    @Test func theCheckerFindsBrokenLists() throws {
        let schedule = try PipelineSchedule(kind: .oneForwardOneBackward, stages: 2, microBatches: 2)
        let good = (0..<2).map { schedule.instructions(stage: $0) }
        // A missing send: the next stage waits forever.
        var missingSend = good
        missingSend[0].removeAll { $0 == .sendActivation(microBatch: 1, chunk: 0) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: missingSend, chunks: 1, microBatches: 2) }
        // Both stages wait for the other first: deadlock.
        var crossed = good
        crossed[0].insert(.receiveGradient(microBatch: 0, chunk: 0), at: 0)
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: crossed, chunks: 1, microBatches: 2) }
        // A backward before its forward, and a forgotten micro-batch.
        var early = good
        early[1].swapAt(1, 2)
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: early, chunks: 1, microBatches: 2) }
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: good, chunks: 1, microBatches: 3) }
        // A send nobody receives.
        var extra = good
        extra[1].append(.sendGradient(microBatch: 1, chunk: 0))
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: extra, chunks: 1, microBatches: 2) }
        // A micro-batch outside the batch.
        var outside = good
        outside[0].append(.forward(microBatch: 7, chunk: 0))
        #expect(throws: PipelineScheduleError.self) { try PipelineSimulation(lists: outside, chunks: 1, microBatches: 2) }
        #expect(throws: Never.self) { try PipelineSimulation(lists: good, chunks: 1, microBatches: 2) }
    }
}
