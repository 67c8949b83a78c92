#pragma once
/// The paper's stacking experiment (Newell et al. 2016, section 5.2 and Fig. 9): networks of
/// different stack counts with about the same number of parameters (the 2-stack model gets 4
/// residual modules per block, the 4-stack 2, the 8-stack 1), trained on the same data, budget
/// and recipe, and every stack of each scored on held-out people.
///
/// A run lives in a folder: stacks_S/ (each model's training run, resumable), ablation.json,
/// report.md and fig9.png (accuracy against the position in the network, the paper's figures
/// beside).

#include "hg/eval/pck.h"
#include "hg/train/config.h"

#include <cstdint>
#include <string>
#include <vector>

namespace hg::train {

/// One architecture of the experiment.
struct AblationModel {
  int64_t stacks = 0;
  int64_t residuals = 0;   ///< residual modules per block
  int64_t parameters = 0;  ///< trainable parameters
  double gmacs = 0;        ///< multiply-accumulates of one forward pass, 10⁹, at the input size
};

/// Residuals per block for each stack count of `stacks` (distinct, ascending after sorting), so
/// that every model's parameter count comes closest to the target: that of the largest stack
/// count with one residual per block (2, 4, 8 stacks → 4, 2, 1 residuals, as in the paper).
/// `base` gives every other option (features, depth, joints, stem); `input_size` the side at
/// which GMACs are counted. Throws naming the stack count whose best match is more than
/// `tolerance` (a share, 0.1 = 10 %) off the target, or that needs more residuals than a block
/// takes.
std::vector<AblationModel> match_parameters(const model::StackedHourglassOptions& base,
                                            std::vector<int64_t> stacks, int64_t input_size,
                                            double tolerance = 0.1);

/// What the experiment runs.
struct AblationOptions {
  /// Stack counts compared.
  std::vector<int64_t> stacks = {2, 4, 8};
  /// The training recipe every model shares; its model options (features, depth, joints, stem)
  /// are the base of match_parameters, its stack and residual counts are replaced, its
  /// max_minutes and max_steps by the budget below.
  TrainConfig recipe = preset("demo");
  /// The budget, the same for every model: `steps` optimizer steps, or (steps = 0) `minutes`
  /// of training per model, turned into one step count before training by timing
  /// `calibration_steps` steps of each model (the slowest sets it), recorded in ablation.json.
  int64_t steps = 0;
  double minutes = 0;
  int64_t calibration_steps = 20;
  /// Held-out people scored after training (a data::open_dataset spec; images for .h5 files).
  std::string test_dataset = "synthetic:500:3";
  std::string test_images;
  /// Threads of the evaluation (0 = all cores); training uses recipe.threads.
  int threads = 0;
  /// The experiment's folder.
  std::string out = "ablation";
};

/// One trained model and its scores.
struct AblationEntry {
  AblationModel model;
  int64_t steps = 0;   ///< optimizer steps trained
  double seconds = 0;  ///< training wall time (0 when a finished run was found and reused)
  /// Per stack, first to last: the PCK tables at 0.5 and at 0.2.
  std::vector<eval::PckTable> at_05, at_02;
  /// The mean at 0.5 of the output halfway through the network (stack S/2 of S; NaN for an odd
  /// S), where the paper compares the models too.
  double halfway() const;
};

struct AblationResult {
  int64_t steps = 0;   ///< the step budget every model trained for
  std::string metric;  ///< "pckh" or "pck" (eval::metric_for of the held-out set)
  std::vector<AblationEntry> entries;
};

/// Runs the experiment into options.out. A model whose folder holds a run of the same config
/// resumes it (a finished one is only evaluated), so an interrupted experiment continues where
/// it stopped. Progress goes to stderr.
AblationResult run_ablation(const AblationOptions& options);

/// The result as the JSON of ablation.json.
nlohmann::json ablation_to_json(const AblationResult& result, const AblationOptions& options);

/// The published figures of the paper (MPII validation PCKh@0.5, mean): for 2, 4 and 8 stacks,
/// the prediction halfway through the network and the final one.
struct PaperFigure {
  int64_t stacks;
  double halfway, final;
};
const std::vector<PaperFigure>& paper_figures();

}  // namespace hg::train
