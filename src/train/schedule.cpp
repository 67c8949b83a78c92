#include "hg/train/schedule.h"

#include <algorithm>
#include <cmath>

namespace hg::train {

double budget_progress(const TrainConfig& c, const RunPosition& at) {
  double p = c.epochs > 0 ? at.epochs_done / static_cast<double>(c.epochs) : 0;
  if (c.max_steps > 0) p = std::max(p, static_cast<double>(at.step) / c.max_steps);
  if (c.max_minutes > 0) p = std::max(p, at.elapsed_s / (60 * c.max_minutes));
  return std::clamp(p, 0.0, 1.0);
}

double cosine_lr(const TrainConfig& c, double progress, double scale) {
  const double p = std::clamp(progress, 0.0, 1.0);
  const double w = c.warmup_fraction;
  // Warm-up from a tenth rather than zero: Adam's first steps at lr 0 would be wasted.
  if (w > 0 && p < w) return scale * c.lr * (0.1 + 0.9 * p / w);
  const double t = w < 1 ? (p - w) / (1 - w) : 1;
  const double low = c.lr * c.lr_final_factor;
  return scale * (low + (c.lr - low) * 0.5 * (1 + std::cos(M_PI * t)));
}

}  // namespace hg::train
