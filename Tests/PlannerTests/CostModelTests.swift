import Models
import Planner
import Testing

@Suite struct CostModelTests {
    /// The closed form counts exactly what the GPT holds, less the final LayerNorm's 2h.
    @Test(arguments: [ModelPreset.gpt2_124m])
    func parameterFormulaMatchesTheModel(preset: ModelPreset) {
        let config = preset.config
        #expect((CostModel.parameters(config) + Double(2 * config.hiddenSize)).rounded() == Double(config.parameterCount))
    }

    @Test func publishedModelSizes() {
        #expect(abs(CostModel.parameters(ModelPreset.megatron_8_3b.config) / 8.3e9 - 1) < 0.01)
        #expect(abs(CostModel.parameters(ModelPreset.gpt3_175b.config) / 175e9 - 1) < 0.01)
        #expect(abs(CostModel.parameters(ModelPreset.mtnlg_530b.config) / 530e9 - 1) < 0.01)
    }

    /// MT-NLG 530B (Smith et al. 2022, table 1): batch 1920, full recomputation. The reported
    /// TFLOP/s per GPU follow from the hardware FLOPs formula and the reported iteration times.
    @Test(arguments: [(2240, 60.1, 126.0), (2800, 50.2, 121.0), (3360, 44.4, 113.0)])
    func mtnlgThroughputFollowsFromTheFLOPsFormula(gpus: Int, seconds: Double, tflops: Double) {
        let perDevice = CostModel.flopsPerDevice(ModelPreset.mtnlg_530b.config, batch: 1920, recompute: .full,
                                                 devices: gpus, iterationSeconds: seconds)
        #expect(abs(perDevice / 1e12 / tflops - 1) < 0.01)
    }

    @Test func recomputationAddsAForwardPass() {
        let config = ModelPreset.gpt2_124m.config
        let none = CostModel.flopsPerIteration(config, batch: 8)
        let full = CostModel.flopsPerIteration(config, batch: 8, recompute: .full)
        let selective = CostModel.flopsPerIteration(config, batch: 8, recompute: .selective)
        let (b, s, l, h) = (8.0, 1024.0, 12.0, 768.0)
        // Full recomputation adds one forward of the transformer layers (not of the logits layer);
        // selective adds the forward of the attention score and value products.
        let layersForward = 24 * b * s * l * h * h + 4 * b * s * s * l * h
        #expect(abs((full - none) / layersForward - 1) < 1e-12)
        #expect(abs((selective - none) / (4 * b * s * s * h * l) - 1) < 1e-12)
    }

    @Test func bubbleFraction() {
        #expect(CostModel.bubbleFraction(pipelineStages: 4, microBatches: 8) == 3.0 / 8.0)
        #expect(CostModel.bubbleFraction(pipelineStages: 4, virtualStages: 2, microBatches: 8) == 3.0 / 16.0)
        #expect(CostModel.bubbleFraction(pipelineStages: 1, microBatches: 1) == 0)
    }
}

@Suite struct MemoryModelTests {
    @Test func distributedOptimizerBytesPerParameter() {
        #expect(MemoryModel.bytesPerParameter(precision: .bf16, distributedOptimizer: false, dataParallel: 8) == 18)
        #expect(MemoryModel.bytesPerParameter(precision: .bf16, distributedOptimizer: true, dataParallel: 8) == 7.5)
        #expect(MemoryModel.bytesPerParameter(precision: .fp16, distributedOptimizer: false, dataParallel: 4) == 20)
        #expect(MemoryModel.bytesPerParameter(precision: .fp16, distributedOptimizer: true, dataParallel: 4) == 8)
        #expect(MemoryModel.bytesPerParameter(precision: .fp32, distributedOptimizer: false, dataParallel: 4) == 16)
        #expect(MemoryModel.bytesPerParameter(precision: .fp32, distributedOptimizer: true, dataParallel: 4) == 10)
        // DP 1: sharding saves nothing.
        #expect(MemoryModel.bytesPerParameter(precision: .bf16, distributedOptimizer: true, dataParallel: 1) == 18)
    }

    /// Korthikanti et al. 2022, table 2, at the paper's 22B model (s 2048, b 1, h 6144, a 64, t 8).
    @Test func activationTable() {
        let (s, b, h, a, t) = (2048, 1, 6144, 64, 8)
        let sbh = Double(s * b * h)
        func bytes(_ sp: Bool, _ recompute: CostModel.Recompute, tp: Int = t) -> Double {
            MemoryModel.activationBytesPerLayer(seqLength: s, microBatch: b, hidden: h, heads: a,
                                                options: .init(tensorParallel: tp, sequenceParallel: sp, recompute: recompute))
        }
        let attention = 5.0 * Double(a * s) / Double(h)
        #expect(bytes(false, .none, tp: 1) == sbh * (34 + attention))
        #expect(bytes(false, .none) == sbh * (10 + 24.0 / 8 + attention / 8))
        #expect(bytes(true, .none) == sbh / 8 * (34 + attention))
        #expect(bytes(false, .selective) == sbh * (10 + 24.0 / 8))
        #expect(bytes(true, .selective) == 34 * sbh / 8)
        #expect(bytes(false, .full) == 2 * sbh)
        // Sequence parallelism plus selective recomputation is the paper's 5x reduction here.
        #expect(bytes(false, .none, tp: 1) / bytes(true, .selective) > 5 * 8 / 1.5)
    }
}
