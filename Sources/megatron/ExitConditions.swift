import Datasets
import Distributed
import Synchronization
import Training
#if canImport(Glibc)
import Glibc
#endif

/// The signal `--exit-signal-handler` caught (0: none yet): stored by the handler, read by the loop.
private let caughtSignal = Atomic<Int32>(0)

/// Megatron's ways to end a run early with a checkpoint: `--exit-signal-handler` (SIGTERM or
/// SIGINT), `--exit-interval N` and `--exit-duration-in-mins M`. Checked after each iteration;
/// every rank reaches the same decision at the same iteration.
struct ExitConditions {
    let config: TrainingConfig
    /// When the run started (`monotonicSeconds()`).
    let startTime: Double

    /// Catches SIGTERM and SIGINT for `reason(after:parallel:)`; a second signal of the same kind
    /// gets the default action (the process dies at once). Call it before starting threads: it
    /// also unblocks both signals, which a parent may have left blocked for its children.
    static func installSignalHandler() {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signalNumber in [SIGTERM, SIGINT] { sigaddset(&signals, signalNumber) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        for signalNumber in [SIGTERM, SIGINT] {
            _ = signal(signalNumber) { caught in
                caughtSignal.store(caught, ordering: .relaxed)
                _ = signal(caught, SIG_DFL)
            }
        }
    }

    /// Why the run should save and exit after `iteration`, or nil to go on. Collective over the
    /// world when a signal or the duration is watched: a signal seen by any rank, or the duration
    /// as global rank 0's clock measures it, stops every rank (an all-reduce of the flags).
    func reason(after iteration: Int, parallel: ParallelState) -> String? {
        if config.exitSignalHandler || config.exitDurationInMins != nil {
            var flags = [0.0, 0.0]
            if config.exitSignalHandler { flags[0] = Double(caughtSignal.load(ordering: .relaxed)) }
            if parallel.isFirst, let minutes = config.exitDurationInMins, monotonicSeconds() - startTime >= minutes * 60 {
                flags[1] = 1
            }
            if let world = parallel.world { flags = world.allReduce(flags, operation: .max) }
            if flags[0] > 0 { return "received " + Self.signalName(Int32(flags[0])) }
            if flags[1] > 0, let minutes = config.exitDurationInMins { return "the run lasted --exit-duration-in-mins \(minutes)" }
        }
        if let interval = config.exitInterval, iteration % interval == 0 {
            return "iteration \(iteration) is a multiple of --exit-interval \(interval)"
        }
        return nil
    }

    private static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        default: "signal \(number)"
        }
    }
}

