import Accelerator
import Models

/// The flags of `megatron train`, in the order `--help` lists them within their groups.
extension TrainingFlag {
    /// Every flag `megatron train` and its config files accept (`--config FILE` aside).
    public static let all: [TrainingFlag] = [
        modelType, numLayers, hiddenSize, ffnHiddenSize, numAttentionHeads, seqLength, maxPositionEmbeddings,
        untieEmbeddingsAndOutputWeights, makeVocabSizeDivisibleBy, normEpsilon,
        bertNoBinaryHead, applyResidualConnectionPostLayernorm, bertLayernormOrder, maskProb, shortSeqProb,
        initMethodStd, noBiasGeluFusion, seed,
        weightDecay, adamBeta1, adamBeta2, adamEps, clipGrad, hiddenDropout, attentionDropout,
        microBatchSize, globalBatchSize, rampupBatchSize, trainIters, trainSamples, noCheckForNaNInLossAndGrad,
        exitSignalHandler, exitInterval, exitDurationInMins, device,
        bf16, fp16, lossScale, initialLossScale, minLossScale, lossScaleWindow, hysteresis, maxSkipsAtMinLossScale,
        accumulateAllreduceGradsInFp32,
        lr, minLR, lrDecayStyle, lrWarmupIters, lrWarmupSamples, lrDecayIters, lrDecaySamples,
        save, saveInterval, load, finetune, noLoadOptim, noLoadRng,
        tensorModelParallelSize, pipelineModelParallelSize, numLayersPerVirtualPipelineStage, dataParallelSize,
        useDistributedOptimizer, sequenceParallel, ddpBucketSize, recomputeGranularity, recomputeMethod, recomputeNumLayers,
        evalInterval, evalIters,
        dataPath, split, trainDataPath, validDataPath, testDataPath, dataCachePath, eodMaskLoss,
        tokenizerType, tokenizerFile, vocabFile, mergeFile,
        logInterval, tensorboardDir, metricsFile, dashboardPort, dashboardHost,
    ]

    // Network size.
    public static let modelType = choice(
        "model-type", .networkSize, ModelType.allCases,
        "gpt (Megatron's pretrain_gpt.py) or bert (pretrain_bert.py: masked LM and sentence order, WordPiece data).",
        default: "gpt") { $0.modelType = $1 }
    public static let bertNoBinaryHead = flag(
        "bert-no-binary-head", .networkSize, \.bertNoBinaryHead,
        "BERT without the sentence-order head, its loss and the token-type embedding.")
    public static let applyResidualConnectionPostLayernorm = flag(
        "apply-residual-connection-post-layernorm", .networkSize, \.applyResidualConnectionPostLayernorm,
        "Add each residual branch to its LayerNorm's output: BERT's original post-LN order (default: Megatron's pre-LN).")
    public static let bertLayernormOrder = choice(
        "bert-layernorm-order", .networkSize, BERTLayerNormOrder.allCases,
        "post (original BERT) or pre (Megatron-LM's rearrangement); the same setting as --apply-residual-connection-post-layernorm.",
        default: "pre") { $0.bertLayernormOrder = $1 }
    public static let maskProb = number("mask-prob", .data, \.maskProb, "Fraction of tokens BERT's data masks.",
                                        range: .positive)
    public static let shortSeqProb = number("short-seq-prob", .data, \.shortSeqProb,
                                            "Probability that a BERT sample targets a random shorter length.", range: .nonNegative)
    public static let numLayers = integer("num-layers", .networkSize, \.numLayers, "Number of transformer layers.",
                                          range: .atLeast(1), default: "required")
    public static let hiddenSize = integer("hidden-size", .networkSize, \.hiddenSize, "Transformer hidden size.",
                                           range: .atLeast(1), default: "required")
    public static let ffnHiddenSize = integer("ffn-hidden-size", .networkSize, \.ffnHiddenSize, "MLP inner width.",
                                              range: .atLeast(1), default: "4 x --hidden-size")
    public static let numAttentionHeads = integer("num-attention-heads", .networkSize, \.numAttentionHeads,
                                                  "Number of attention heads; must divide --hidden-size.",
                                                  range: .atLeast(1), default: "required")
    public static let seqLength = integer("seq-length", .networkSize, \.seqLength, "Tokens per sample (sequence length).",
                                          range: .atLeast(1), default: "required")
    public static let maxPositionEmbeddings = integer("max-position-embeddings", .networkSize, \.maxPositionEmbeddings,
                                                      "Positions of the learned position embedding.", range: .atLeast(1), default: "--seq-length")
    public static let untieEmbeddingsAndOutputWeights = flag(
        "untie-embeddings-and-output-weights", .networkSize, \.untieEmbeddingsAndOutputWeights,
        "Give the output layer a weight of its own instead of the word embedding's.")
    public static let makeVocabSizeDivisibleBy = integer(
        "make-vocab-size-divisible-by", .networkSize, \.makeVocabSizeDivisibleBy,
        "Pad the vocabulary to a multiple of this (Megatron multiplies it by TP; here the padded size does not depend on the layout).",
        range: .atLeast(1))
    public static let normEpsilon = number("norm-epsilon", .networkSize, \.normEpsilon, "LayerNorm epsilon.", range: .positive)
    // Initialization.
    public static let initMethodStd = number("init-method-std", .initialization, \.initMethodStd,
                                             "Standard deviation of the normal weight initialization.", range: .positive)
    public static let noBiasGeluFusion = flag(
        "no-bias-gelu-fusion", .networkSize, \.noBiasGeluFusion,
        "The exact erf GELU, as Megatron without its fused bias-GELU (default: the tanh approximation that fusion computes).")
    public static let seed = integer("seed", .initialization, \.seed, "Random seed of initialization and data order, in [0, 2^32).",
                                     range: .halfOpen(0, 4_294_967_296))
    // Regularization and optimizer.
    public static let weightDecay = number("weight-decay", .regularization, \.weightDecay, "AdamW weight decay.", range: .nonNegative)
    public static let adamBeta1 = number("adam-beta1", .regularization, \.adamBeta1, "Adam first-moment coefficient.", range: .unitHalfOpen)
    public static let adamBeta2 = number("adam-beta2", .regularization, \.adamBeta2, "Adam second-moment coefficient.", range: .unitHalfOpen)
    public static let adamEps = number("adam-eps", .regularization, \.adamEps, "Adam epsilon added to the denominator.", range: .positive)
    public static let hiddenDropout = number(
        "hidden-dropout", .regularization, \.hiddenDropout,
        "Dropout on the embedding and on each attention and MLP output before the residual (Megatron's default is 0.1).",
        range: .unitHalfOpen)
    public static let attentionDropout = number(
        "attention-dropout", .regularization, \.attentionDropout,
        "Dropout on the attention probabilities (Megatron's default is 0.1).", range: .unitHalfOpen)
    public static let clipGrad = number("clip-grad", .regularization, \.clipGrad, "Global gradient-norm clip (0: no clipping).", range: .nonNegative)
    // Training.
    public static let microBatchSize = integer("micro-batch-size", .training, \.microBatchSize,
                                               "Samples per micro-batch of a data-parallel rank.", range: .atLeast(1))
    public static let globalBatchSize = integer("global-batch-size", .training, \.globalBatchSize,
                                                "Samples per iteration over all data-parallel ranks.", range: .finite, default: "required")
    public static let rampupBatchSize = TrainingFlag(
        name: "rampup-batch-size", kind: .words, group: .training,
        help: "Grow the global batch from START by INCREMENT over SAMPLES samples.",
        defaultDescription: "none", metavar: "START INCREMENT SAMPLES") { (config, setting) throws(TrainingError) in
            let words = try setting.strings()
            let numbers = words.compactMap { Double($0) }.filter { $0.isFinite && $0 == $0.rounded() && abs($0) < 9e15 }.map { Int($0) }
            guard numbers.count == 3, words.count == 3 else { throw setting.fail("three integers: START INCREMENT SAMPLES") }
            config.rampupBatchSize = numbers
        }
    public static let trainIters = integer("train-iters", .training, \.trainIters,
                                           "Iterations to train (or --train-samples).", range: .atLeast(1))
    public static let trainSamples = integer("train-samples", .training, \.trainSamples,
                                             "Samples to train (or --train-iters).", range: .atLeast(1))
    public static let noCheckForNaNInLossAndGrad = flag(
        "no-check-for-nan-in-loss-and-grad", .training, \.noCheckForNaNInLossAndGrad,
        "Skip and count iterations whose loss or grad norm is not finite instead of stopping with an error.")
    public static let exitSignalHandler = flag(
        "exit-signal-handler", .training, \.exitSignalHandler,
        "On SIGTERM or SIGINT finish the iteration, save to --save and exit 0 (a second signal kills at once).")
    public static let exitInterval = integer("exit-interval", .training, \.exitInterval,
                                             "Save to --save and exit 0 at the first iteration that is a multiple of N.",
                                             range: .atLeast(1))
    public static let exitDurationInMins = number("exit-duration-in-mins", .training, \.exitDurationInMins,
                                                  "Save to --save and exit 0 after the iteration during which the run passed X minutes.",
                                                  range: .positive, default: "none")
    // Mixed precision (Megatron-LM's fp16 recipe, MT-NLG's bf16).
    public static let bf16 = flag("bf16", .mixedPrecision, \.bf16,
                                  "Run the linear layers' GEMMs in bf16 (fp32 master weights, gradients and optimizer).")
    public static let fp16 = flag("fp16", .mixedPrecision, \.fp16,
                                  "Run the linear layers' GEMMs in fp16 with loss scaling (fp32 master weights, gradients and optimizer).")
    public static let lossScale = number("loss-scale", .mixedPrecision, \.lossScale,
                                         "Static loss scale (with --fp16); without it the scale is dynamic.",
                                         range: .positive, default: "dynamic")
    public static let initialLossScale = number("initial-loss-scale", .mixedPrecision, \.initialLossScale,
                                                "Starting dynamic loss scale.", range: .positive, default: "2^32")
    public static let minLossScale = number("min-loss-scale", .mixedPrecision, \.minLossScale,
                                            "The dynamic loss scale never backs off below this.", range: .positive)
    public static let lossScaleWindow = integer("loss-scale-window", .mixedPrecision, \.lossScaleWindow,
                                                "Clean iterations before the dynamic loss scale doubles.", range: .atLeast(1))
    public static let hysteresis = integer("hysteresis", .mixedPrecision, \.hysteresis,
                                           "Overflowing iterations tolerated before the dynamic loss scale halves.",
                                           range: .atLeast(1))
    public static let maxSkipsAtMinLossScale = integer(
        "max-skips-at-min-loss-scale", .mixedPrecision, \.maxSkipsAtMinLossScale,
        "Stop with an error after this many overflowing iterations in a row at --min-loss-scale (or the static --loss-scale).",
        range: .atLeast(1))
    public static let accumulateAllreduceGradsInFp32 = flag(
        "accumulate-allreduce-grads-in-fp32", .mixedPrecision, \.accumulateAllreduceGradsInFp32,
        "Accepted for Megatron compatibility: gradients are always accumulated and all-reduced in fp32 here.")
    // Learning rate.
    public static let lr = number("lr", .learningRate, \.lr, "Peak learning rate.", range: .positive, default: "required")
    public static let minLR = number("min-lr", .learningRate, \.minLR, "Learning rate at the end of the decay.", range: .nonNegative)
    public static let lrDecayStyle = choice(
        "lr-decay-style", .learningRate, LearningRateSchedule.Style.allCases, "Decay after warmup: constant, linear or cosine.",
        default: TrainingConfig().lrDecayStyle.rawValue) { $0.lrDecayStyle = $1 }
    public static let lrWarmupIters = integer("lr-warmup-iters", .learningRate, \.lrWarmupIters,
                                              "Linear warmup iterations.", range: .nonNegative, default: "0")
    public static let lrWarmupSamples = integer("lr-warmup-samples", .learningRate, \.lrWarmupSamples,
                                                "Linear warmup samples.", range: .nonNegative, default: "0")
    public static let lrDecayIters = integer("lr-decay-iters", .learningRate, \.lrDecayIters,
                                             "Iterations to decay over.", range: .atLeast(1), default: "the whole run")
    public static let lrDecaySamples = integer("lr-decay-samples", .learningRate, \.lrDecaySamples,
                                               "Samples to decay over.", range: .atLeast(1), default: "the whole run")
    // Checkpointing.
    public static let save = string("save", .checkpointing, \.save, "Directory to save checkpoints to.", metavar: "DIR")
    public static let saveInterval = integer("save-interval", .checkpointing, \.saveInterval,
                                             "Iterations between checkpoints.", range: .atLeast(1), default: "at the end only")
    public static let load = string("load", .checkpointing, \.load, "Checkpoint directory to load (train resumes from it).", metavar: "DIR")
    public static let finetune = flag("finetune", .checkpointing, \.finetune,
                                      "Load only the weights of --load: iteration, samples and optimizer start afresh.")
    public static let noLoadOptim = flag("no-load-optim", .checkpointing, \.noLoadOptim,
                                         "Do not load the optimizer state of --load (fresh Adam moments; the run continues at its iteration).")
    public static let noLoadRng = flag("no-load-rng", .checkpointing, \.noLoadRng,
                                       "Accepted for Megatron job scripts: no RNG state is saved here (dropout masks follow --seed and the sample).")
    // Distributed.
    public static let tensorModelParallelSize = integer("tensor-model-parallel-size", .distributed, \.tensorModelParallelSize,
                                                        "Tensor-parallel ranks (t).", range: .atLeast(1))
    public static let pipelineModelParallelSize = integer("pipeline-model-parallel-size", .distributed, \.pipelineModelParallelSize,
                                                          "Pipeline stages (p); must divide --num-layers.", range: .atLeast(1))
    public static let numLayersPerVirtualPipelineStage = integer(
        "num-layers-per-virtual-pipeline-stage", .distributed, \.numLayersPerVirtualPipelineStage,
        "Layers per model chunk of the interleaved 1F1B schedule.", range: .atLeast(1), default: "one chunk per stage")
    public static let dataParallelSize = integer("data-parallel-size", .distributed, \.dataParallelSize,
                                                 "Data-parallel ranks (rank threads outside mpirun).", range: .atLeast(1), default: "1, or np / (t p) under mpirun")
    public static let sequenceParallel = flag(
        "sequence-parallel", .distributed, \.sequenceParallel,
        "Split the LayerNorm and residual regions along the sequence over the tensor-parallel ranks (all-gather/reduce-scatter instead of all-reduce).")
    public static let useDistributedOptimizer = flag("use-distributed-optimizer", .distributed, \.useDistributedOptimizer,
                                                     "Shard the Adam moments over data-parallel ranks (ZeRO-1).")
    public static let ddpBucketSize = integer("ddp-bucket-size", .distributed, \.ddpBucketSize,
                                              "Elements per data-parallel gradient all-reduce.", range: .atLeast(1), default: "max(40M, 1M x DP)")
    // Activation recomputation (Korthikanti et al. 2022).
    public static let recomputeGranularity = choice(
        "recompute-granularity", .training, [ActivationRecomputation.Granularity.full, .selective],
        "Recompute activations in the backward: full (whole layers, see --recompute-method) or selective (the attention core).",
        default: "none") { $0.recomputeGranularity = $1 }
    public static let recomputeMethod = choice(
        "recompute-method", .training, ActivationRecomputation.Method.allCases,
        "With full: uniform (every layer, in groups of --recompute-num-layers) or block (the first --recompute-num-layers of each stage).",
        default: "uniform") { $0.recomputeMethod = $1 }
    public static let device = choice(
        "device", .training, ComputeDevice.allCases,
        "Where to compute: cpu, or cuda (one NVIDIA GPU through libmegatron_cuda.so; see the README).",
        default: "cpu") { $0.device = $1 }
    public static let recomputeNumLayers = integer("recompute-num-layers", .training, \.recomputeNumLayers,
                                                   "Layers per recomputed group (uniform) or recomputed layers per stage (block).",
                                                   range: .atLeast(1), default: "1")
    // Validation.
    public static let evalInterval = integer("eval-interval", .validation, \.evalInterval, "Iterations between validations.", range: .atLeast(1))
    public static let evalIters = integer("eval-iters", .validation, \.evalIters, "Micro-batches per validation.", range: .nonNegative)
    // Data.
    public static let dataPath = words("data-path", .data, \.dataPath, "Dataset prefix, or weights and prefixes of a blend.",
                                       default: "required unless --train-data-path", metavar: "[WEIGHT] PREFIX ...")
    public static let trainDataPath = words(
        "train-data-path", .data, \.trainDataPath, "The training split's dataset or blend, used whole (instead of --data-path).",
        default: "none", metavar: "[WEIGHT] PREFIX ...")
    public static let validDataPath = words(
        "valid-data-path", .data, \.validDataPath, "The validation split's dataset or blend, used whole (with --train-data-path).",
        default: "none", metavar: "[WEIGHT] PREFIX ...")
    public static let testDataPath = words(
        "test-data-path", .data, \.testDataPath, "The test split's dataset or blend (with --train-data-path; train does not evaluate it).",
        default: "none", metavar: "[WEIGHT] PREFIX ...")
    public static let split = string("split", .data, \.split, "Train, validation and test weights of each dataset.",
                                     metavar: "A,B,C")
    public static let dataCachePath = string("data-cache-path", .data, \.dataCachePath, "Directory for the sample index cache.",
                                             default: "PREFIX/cache/GPTDataset_indices", metavar: "DIR")
    public static let eodMaskLoss = flag("eod-mask-loss", .data, \.eodMaskLoss, "Leave end-of-document tokens out of the loss.")
    // Tokenizer.
    public static let tokenizerType = string(
        "tokenizer-type", .tokenizer, \.tokenizerType,
        "GPT2BPETokenizer (--vocab-file, --merge-file) or HuggingFaceTokenizer (--tokenizer-file); checked against the files.",
        metavar: "TYPE")
    public static let tokenizerFile = string("tokenizer-file", .tokenizer, \.tokenizerFile,
                                             "Hugging Face tokenizer.json (byte-level BPE).")
    public static let vocabFile = string("vocab-file", .tokenizer, \.vocabFile, "GPT-2 vocab.json (with --merge-file).")
    public static let mergeFile = string("merge-file", .tokenizer, \.mergeFile, "GPT-2 merges.txt (with --vocab-file).")
    // Logging.
    public static let logInterval = integer("log-interval", .logging, \.logInterval, "Iterations between log lines.", range: .atLeast(1))
    public static let tensorboardDir = string("tensorboard-dir", .logging, \.tensorboardDir,
                                              "Directory for TensorBoard event files.", metavar: "DIR")
    public static let metricsFile = string("metrics-file", .logging, \.metricsFile, "JSON lines of every logged iteration.")
    public static let dashboardPort = integer("dashboard-port", .logging, \.dashboardPort,
                                              "Serve the run's live dashboard on this port (0: any free port; needs --metrics-file).",
                                              range: ValueRange(lower: (0, true), upper: (65535, true)), metavar: "PORT")
    public static let dashboardHost = string("dashboard-host", .logging, \.dashboardHost,
                                             "Address the dashboard listens on.", metavar: "HOST")
}
