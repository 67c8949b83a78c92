#pragma once
/// Learning-rate schedules defined on the share of a run's budget that has been used, so that a
/// time-budgeted run (max_minutes) follows the same curve on a fast and on a slow machine.

#include "hg/train/config.h"

#include <cstdint>

namespace hg::train {

/// Where a run stands, for budget_progress.
struct RunPosition {
  int64_t step = 0;        ///< optimizer steps taken so far
  double epochs_done = 0;  ///< epochs completed plus the share of the current one
  double elapsed_s = 0;    ///< wall time of this process's training so far, seconds
};

/// The share in [0, 1] of the run's budget used at `at`: the largest of step / max_steps,
/// elapsed / max_minutes and epochs_done / epochs (the budget that ends the run first).
double budget_progress(const TrainConfig& c, const RunPosition& at);

/// The learning rate of lr_schedule "cosine" at budget share `progress`: linear warm-up from
/// lr / 10 to lr over the first warmup_fraction, then cosine decay to lr × lr_final_factor at 1.
/// `scale` multiplies it (the plateau drops so far).
double cosine_lr(const TrainConfig& c, double progress, double scale = 1);

}  // namespace hg::train
