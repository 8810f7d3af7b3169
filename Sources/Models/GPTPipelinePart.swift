/// The part of a GPT that one pipeline stage holds: its model chunks (consecutive layer ranges)
/// and whether it holds the embedding (the first stage) and the final LayerNorm and output
/// layer (the last stage). Megatron's `pre_process` / `post_process`.
///
/// With `p` stages and `v` chunks per stage, the `L` layers form `p v` virtual stages of `L / (p v)`
/// layers; chunk `c` of stage `r` is virtual stage `c p + r` (Narayanan et al. 2021). Without
/// interleaving (`v = 1`) stage `r` holds layers `[r L/p, (r+1) L/p)`. The last stage holds its
/// own copy of the tied word embedding for the output layer; the copies start equal and their
/// gradients are summed between the first and last stage, so they stay equal.
public struct GPTPipelinePart: Sendable, Equatable, CustomStringConvertible {
    /// Layers of the whole model `L`.
    public let numLayers: Int
    /// Pipeline stages `p`.
    public let stages: Int
    /// This stage, `0..<p`.
    public let stage: Int
    /// The global layer indices of each model chunk this stage holds, in chunk order.
    public let chunkLayers: [Range<Int>]

    /// The whole model on one stage.
    public static func whole(numLayers: Int) -> GPTPipelinePart {
        GPTPipelinePart(numLayers: numLayers, stages: 1, stage: 0, chunkLayers: [0..<numLayers])
    }

    private init(numLayers: Int, stages: Int, stage: Int, chunkLayers: [Range<Int>]) {
        self.numLayers = numLayers
        self.stages = stages
        self.stage = stage
        self.chunkLayers = chunkLayers
    }

    /// Stage `stage` of `stages`, each with `chunks` model chunks (`v`; 1 without interleaving).
    /// The layers must divide into `stages * chunks` equal virtual stages.
    public init(numLayers: Int, stages: Int, stage: Int, chunks: Int = 1) throws(ConfigurationError) {
        guard stages >= 1, chunks >= 1, stage >= 0, stage < stages else {
            throw .invalid(flag: "--pipeline-model-parallel-size", reason: "stage \(stage) of \(stages) with \(chunks) chunks is not a pipeline position")
        }
        guard numLayers % (stages * chunks) == 0 else {
            let reason = chunks == 1
                ? "\(stages) stages do not divide --num-layers \(numLayers)"
                : "\(stages) stages x \(chunks) model chunks do not divide --num-layers \(numLayers)"
            throw .invalid(flag: "--pipeline-model-parallel-size", reason: reason)
        }
        let perChunk = numLayers / (stages * chunks)
        self.init(numLayers: numLayers, stages: stages, stage: stage, chunkLayers: (0..<chunks).map { c in
            let virtualStage = c * stages + stage
            return virtualStage * perChunk..<(virtualStage + 1) * perChunk
        })
    }

    /// The virtual stage of `chunk` on this stage (`chunk p + stage`), `0..<p v`.
    public func virtualStage(chunk: Int) -> Int { chunk * stages + stage }

    /// Model chunks per stage (`v`) when each chunk has `layersPerChunk` layers (Megatron's
    /// `--num-layers-per-virtual-pipeline-stage`); throws when they do not divide a stage's layers.
    public static func chunks(numLayers: Int, stages: Int, layersPerChunk: Int) throws(ConfigurationError) -> Int {
        guard stages >= 1, numLayers % stages == 0 else {
            throw .invalid(flag: "--pipeline-model-parallel-size", reason: "\(stages) stages do not divide --num-layers \(numLayers)")
        }
        guard layersPerChunk >= 1, (numLayers / stages) % layersPerChunk == 0 else {
            throw .invalid(flag: "--num-layers-per-virtual-pipeline-stage",
                           reason: "\(layersPerChunk) does not divide the \(numLayers / stages) layers of a stage")
        }
        return numLayers / stages / layersPerChunk
    }

    /// Model chunks on this stage (`v`).
    public var chunks: Int { chunkLayers.count }
    /// The first stage: it embeds the tokens (chunk 0 is the first virtual stage).
    public var holdsEmbedding: Bool { stage == 0 }
    /// The last stage: final LayerNorm, output layer and loss (its last chunk is the last virtual stage).
    public var holdsHead: Bool { stage == stages - 1 }
    /// Whether this stage holds a copy of the word embedding when the output layer is tied to it
    /// (first or last stage; untied, only the first).
    public var holdsWordEmbedding: Bool { holdsEmbedding || holdsHead }
    /// Whether `chunk` starts from the token embedding.
    public func embeds(chunk: Int) -> Bool { holdsEmbedding && chunk == 0 }
    /// Whether `chunk` ends in the output layer and the loss.
    public func computesLoss(chunk: Int) -> Bool { holdsHead && chunk == chunks - 1 }
    /// Every layer this stage holds, in chunk order.
    public var layers: [Int] { chunkLayers.flatMap { Array($0) } }
    /// Whether this is the whole model.
    public var isWhole: Bool { stages == 1 && chunks == 1 }

    public var description: String {
        "stage \(stage) of \(stages), layers " + chunkLayers.map { "\($0.lowerBound)..<\($0.upperBound)" }.joined(separator: ", ")
    }
}
