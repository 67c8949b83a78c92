#pragma once
/// Training with intermediate supervision: MSE between every stack's heatmaps and the same
/// target, summed over stacks.
///
/// A run lives in a folder: config.json (the effective config), log.jsonl (one JSON object per
/// step and per epoch), last.hg / best.hg / epoch_K.hg (native checkpoints holding model,
/// optimizer state, epoch, step, RNG state and config). last.hg is also written within epochs
/// (checkpoint_every_minutes / _steps), every checkpoint atomically. `resume` continues a run where
/// it stopped or was killed (mid-epoch too), with the batches an uninterrupted run would have seen.

#include "hg/eval/pck.h"
#include "hg/train/config.h"

#include <ATen/Tensor.h>

#include <string>
#include <vector>

namespace hg::train {

/// Thrown when the loss stops being finite; the last good checkpoint is left as it was.
class DivergedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The loss of one batch: MSE of each stack against the target, optionally weighted per joint.
/// heatmaps: N×S×J×h×w; target: N×J×h×w; weight: N×J (or undefined for none).
/// Returns S losses (a 1-D tensor that requires grad when heatmaps do); the training loss is
/// their sum.
at::Tensor stack_losses(const at::Tensor& heatmaps, const at::Tensor& target,
                        const at::Tensor& weight);

/// How a run ended.
enum class Outcome { kFinished, kInterrupted, kStopped };

struct TrainResult {
  Outcome outcome = Outcome::kFinished;
  int64_t epoch = 0;   ///< epochs completed
  int64_t step = 0;    ///< optimizer steps taken in total
  double best = -1;    ///< best validation mean PCK of the last stack (-1 without validation)
  std::string metric;  ///< what `best` measures ("PCKh@0.5", "PCK@0.2"; "" without validation)
  /// Per stack validation tables of the last validation (empty without validation).
  std::vector<eval::PckTable> last_validation;
  double seconds = 0;  ///< wall time of this call
};

/// What a new run does with a run folder that already holds files (a finished or stopped run,
/// anything else): refuse to start, or remove the files a run writes (last.hg, best.hg,
/// config.json, log.jsonl, the plots) and start over.
enum class ExistingRun { kRefuse, kOverwrite };

/// Runs training. Checks the run folder (created if needed, writable, room for checkpoints)
/// before any training starts.
class Trainer {
 public:
  /// A new run in `run_dir` with `config`. The run folder must be empty or new unless `existing`
  /// is kOverwrite; either way run() holds an exclusive lock on it (run_dir/.lock) while it runs,
  /// so that a second run in the same folder is refused, naming the process that has it.
  Trainer(TrainConfig config, std::string run_dir, ExistingRun existing = ExistingRun::kRefuse);
  /// Continues the run in `run_dir` from its last.hg, with its saved config; `overrides`
  /// (key=value) may change e.g. epochs or max_minutes. A run stopped before its first checkpoint
  /// starts again from its config.json. Stale temporary files are removed and log.jsonl is cut
  /// back to the checkpoint's step when it runs.
  static Trainer resume(const std::string& run_dir, const std::vector<std::string>& overrides = {});

  /// Trains until the configured epochs, max_steps or max_minutes, SIGINT/SIGTERM (finishes the
  /// step, writes last.hg, returns kInterrupted) or a non-finite loss (DivergedError).
  TrainResult run();

  const TrainConfig& config() const { return config_; }
  const std::string& run_dir() const { return run_dir_; }

 private:
  Trainer(TrainConfig config, std::string run_dir, bool resuming);

  TrainConfig config_;
  std::string run_dir_;
  bool resuming_ = false;
  ExistingRun existing_ = ExistingRun::kRefuse;
};

}  // namespace hg::train
