#include "hg/train/schedule.h"

#include "test_util.h"

#include <gtest/gtest.h>

using hg::train::budget_progress;
using hg::train::cosine_lr;
using hg::train::RunPosition;
using hg::train::TrainConfig;

TEST(Schedule, ProgressIsTheShareOfTheBudgetThatEndsFirst) {
  TrainConfig c;
  c.epochs = 10;
  EXPECT_DOUBLE_EQ(budget_progress(c, {0, 2.5, 1e6}), 0.25);  // no time or step budget
  c.max_steps = 1000;
  EXPECT_DOUBLE_EQ(budget_progress(c, {500, 2.5, 1e6}), 0.5);
  c.max_minutes = 10;
  EXPECT_DOUBLE_EQ(budget_progress(c, {100, 0.1, 450}), 0.75);  // 450 s of 600
  EXPECT_DOUBLE_EQ(budget_progress(c, {5000, 20, 9000}), 1.0);
}

TEST(Schedule, CosineWarmsUpThenDecaysToTheFinalFactor) {
  TrainConfig c;
  c.lr = 4e-3;
  c.warmup_fraction = 0.1;
  c.lr_final_factor = 0.01;
  EXPECT_DOUBLE_EQ(cosine_lr(c, 0), 4e-4);
  EXPECT_DOUBLE_EQ(cosine_lr(c, 0.05), 4e-3 * 0.55);
  EXPECT_DOUBLE_EQ(cosine_lr(c, 0.1), 4e-3);
  EXPECT_NEAR(cosine_lr(c, 0.55), 4e-5 + (4e-3 - 4e-5) * 0.5, 1e-12);
  EXPECT_NEAR(cosine_lr(c, 1), 4e-5, 1e-12);
  EXPECT_NEAR(cosine_lr(c, 1, 0.1), 4e-6, 1e-12);
  for (double p = 0.1; p < 1; p += 0.05) EXPECT_GT(cosine_lr(c, p), cosine_lr(c, p + 0.05));
}

TEST(Schedule, CosineRefusesStepDropsAndBadFractions) {
  TrainConfig c;
  c.lr_schedule = hg::train::LrSchedule::kCosine;
  c.lr_drops = {3};
  EXPECT_ERROR_HAS(c.validate(), "lr_schedule cosine sets the rate of every step: unset lr_drops");
  c.lr_drops.clear();
  c.warmup_fraction = 1;
  EXPECT_ERROR_HAS(c.validate(), "config key 'warmup_fraction' = 1 is outside [0, 1)");
  c.warmup_fraction = 0;
  EXPECT_ERROR_HAS(c.set("lr_schedule=linear"),
                   "config key 'lr_schedule': \"linear\" is invalid (lr_schedule must be step or "
                   "cosine, got 'linear')");
}
