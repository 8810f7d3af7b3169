import Foundation
import Testing

/// What a user sees when a command line is wrong: one `Error:` line naming the flag or file, a
/// non-zero exit, and no usage block after it.
@Suite struct CommandLineErrorTests {
    /// Runs `megatron arguments` (the binary beside the tests) and returns its status, stdout and
    /// stderr (stdout is read first: keep what a failing command prints to stderr small);
    /// `environment` replaces the test process's.
    static func megatron(_ arguments: [String], environment: [String: String]? = nil) throws
        -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TrainProcessTests.binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe(), error = Pipe()
        (process.standardOutput, process.standardError) = (output, error)
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complained = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: printed, as: UTF8.self), String(decoding: complained, as: UTF8.self))
    }

    /// A `finetune` command line that gets as far as its flag checks (its data does not exist).
    static let finetune = ["finetune", "--task", "mnli", "--train-data", "/nonexistent/a.jsonl", "--valid-data", "b.jsonl",
                           "--pretrained-checkpoint", "c", "--tokenizer-type", "BertWordPieceLowerCase",
                           "--vocab-file", "Tests/DataTests/Fixtures/wordpiece/uncased/vocab.txt"]

    @Test(arguments: [
        (["generate", "--load", "/nonexistent", "--tokenizer-file", "t.json", "--temperature", "-1"],
         "Error: invalid --temperature: must be a finite number >= 0, got -1.0"),
        (["preprocess", "--input", "x.jsonl", "--output-prefix", "y", "--vocab-file", "v", "--merge-file", "m", "--workers", "0"],
         "Error: --workers must be in 1...256, got 0"),
        (["preprocess", "--input", "x.jsonl", "--output-prefix", "y", "--vocab-file", "v", "--merge-file", "m", "--workers", "100000"],
         "Error: --workers must be in 1...256, got 100000"),
        (["bench", "gemm", "--rows", "10000000000"], "Error: --rows must be below 2^31 (BLAS's integer), got 10000000000"),
        (["bench", "collectives", "--ranks", "100000", "--check-only"], "Error: --ranks must be in 1...1024, got 100000"),
        (["bench", "pipeline", "--hidden-size", "10000000000"],
         "Error: invalid --hidden-size: 10000000000 is more than this implementation supports (at most 16777216)"),
        (["bench", "--config", "S", "--recompute-method", "block"], "Error: invalid --recompute-method: needs --recompute-granularity full"),
        (["curate", "classify", "--input", "a.jsonl", "--output", "b.jsonl", "--model", "m.json", "--threshold", "nan"],
         "Error: --threshold must be a score in [0, 1], got nan"),
        (["curate", "classify", "--input", "a.jsonl", "--output", "b.jsonl", "--model", "m.json", "--threshold", "0.4", "--pareto-alpha", "9"],
         "Error: give --threshold or --pareto-alpha, not both: they are two ways of choosing what to keep"),
        (["curate", "filter", "--input", "a.jsonl", "--output", "b.jsonl", "--max-bullet-lines", "nan"],
         "Error: --max-bullet-lines must be a fraction in [0, 1], got nan"),
        (["dashboard", "--metrics-file", "/tmp"], "Error: --metrics-file /tmp is a folder; give the JSONL file train --metrics-file wrote"),
        (["convert", "--input", "/tmp/a", "--output", "/tmp/b", "--eos-token-id", "3"], "Error: --eos-token-id is for --output-format hf"),
        (["convert", "--input", "/tmp/ckpt", "--output", "/tmp/./ckpt/", "--target-tensor-model-parallel-size", "2"],
         "Error: --output must differ from --input: converting in place would replace the checkpoint being read"),
        (["train", "--num-layers", "2", "--no-such-flag"], "Error: --no-such-flag: unknown flag"),
        (["finetune", "--task", "mnli", "--train-data", "a.jsonl", "--valid-data", "b.jsonl", "--pretrained-checkpoint", "c",
          "--tokenizer-file", "t.json"],
         "Error: finetune reads BERT's WordPiece: give --tokenizer-type BertWordPieceLowerCase or BertWordPieceCase with --vocab-file vocab.txt"),
        (Self.finetune + ["--lr-warmup-fraction", "2"],
         "Error: --lr-warmup-fraction must be in [0, 1], got 2.0"),
        (Self.finetune + ["--hidden-dropout", "1"],
         "Error: --hidden-dropout must be in [0, 1), got 1.0"),
        (Self.finetune + ["--bf16", "--fp16"],
         "Error: --bf16 and --fp16 exclude each other"),
        (Self.finetune + ["--tensor-model-parallel-size", "0"],
         "Error: --tensor-model-parallel-size must be at least 1, got 0"),
        (Self.finetune + ["--loss-scale", "1024"],
         "Error: --loss-scale needs --fp16"),
        (Self.finetune + ["--sequence-parallel", "--tensor-model-parallel-size", "4", "--seq-length", "130"],
         "Error: --sequence-parallel: --seq-length 130 does not divide over --tensor-model-parallel-size 4"),
        (["tokenizer", "encode", "--tokenizer-type", "BertWordPieceLowerCase", "--vocab-file", "v.txt", "--merge-file", "m.txt"],
         "Error: --tokenizer-type BertWordPieceLowerCase takes --vocab-file (BERT's vocab.txt) alone"),
        (["curate", "dedup", "--input", "a.jsonl", "b.jsonl", "--output", "a.out.jsonl"],
         "Error: give one --output per --input (2 inputs, 1 outputs)"),
        (["curate", "decontaminate", "--input", "/nonexistent/in.jsonl", "--output", "/tmp/out.jsonl", "--task-data", "/nonexistent/t.jsonl"],
         "Error: /nonexistent/t.jsonl: cannot open: No such file or directory"),
        (["plan", "--model", "gpt2-124m", "--global-batch-size", "8", "--pipeline-model-parallel-size", "4",
          "--data-parallel-size", "1", "--decoder-first-pipeline-num-layers", "5"],
         "Error: --decoder-first-pipeline-num-layers / --decoder-last-pipeline-num-layers: the other 3 stages cannot share the remaining 7 of --num-layers 12 evenly"),
        (["plan", "--model", "gpt2-124m", "--global-batch-size", "8", "--cluster", "local", "--no-bias-gelu-fusion"],
         "Error: --cluster local times this binary's own kernels: the GPU software flags and uneven stages do not apply"),
        (["plan", "--model", "gpt3-175b", "--global-batch-size", "64", "--overlap-param-gather"],
         "Error: --overlap-param-gather needs --use-distributed-optimizer"),
        (["plan", "--model", "gpt3-175b", "--global-batch-size", "64", "--use-flash-attn", "--cluster", "dgx2h-v100"],
         "Error: --use-flash-attn: dgx2h-v100 has no FlashAttention figure (flash_attention_efficiency)"),
        (["plan", "--published-runs", "--cluster", "dgx-h100"],
         "Error: --published-runs takes no other flag but --json: each run brings its own model, layout and cluster"),
        (["plan", "--published-runs", "--no-bias-gelu-fusion"],
         "Error: --published-runs takes no other flag but --json: each run brings its own model, layout and cluster"),
    ])
    func aBadCommandLineIsOneErrorLine(arguments: [String], expected: String) throws {
        let result = try Self.megatron(arguments)
        #expect(result.status != 0)
        #expect(result.stderr == expected + "\n", "\(result.stderr)")
    }
}
