#include "hg/data/augment.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace hg::data {

AugmentOptions AugmentOptions::none() {
  return {};
}

AugmentOptions AugmentOptions::paper() {
  AugmentOptions o;
  o.scale_law = ScaleLaw::kUniform;
  o.scale_min = 0.75;
  o.scale_max = 1.25;
  o.rotation_law = RotationLaw::kUniform;
  o.rotation_max = 30;
  o.flip_prob = 0.5;
  o.colour_min = 0.6;
  o.colour_max = 1.4;
  return o;
}

AugmentOptions AugmentOptions::original() {
  AugmentOptions o;
  o.scale_law = ScaleLaw::kLog2Normal;
  o.scale_sigma = 0.25;
  o.scale_clamp = 0.5;
  o.rotation_law = RotationLaw::kNormal;
  o.rotation_sigma = 30;
  o.rotation_max = 60;
  o.rotation_prob = 0.4;
  o.flip_prob = 0.5;
  o.colour_min = 0.6;
  o.colour_max = 1.4;
  return o;
}

AugmentOptions AugmentOptions::coco() {
  AugmentOptions o;
  o.scale_law = ScaleLaw::kNormal;
  o.scale_sigma = 0.5;
  o.scale_clamp = 0.5;
  o.rotation_law = RotationLaw::kNormal;
  o.rotation_sigma = 40;
  o.rotation_max = 80;
  o.rotation_prob = 0.6;
  o.flip_prob = 0.5;
  o.half_body_prob = 0.3;
  o.half_body_min_joints = 8;
  return o;
}

const runtime::NameTable<AugmentPreset>& name_table(AugmentPreset) {
  static const runtime::NameTable<AugmentPreset> table = {{"none", AugmentPreset::kNone},
                                                          {"paper", AugmentPreset::kPaper},
                                                          {"original", AugmentPreset::kOriginal},
                                                          {"coco", AugmentPreset::kCoco}};
  return table;
}

AugmentOptions AugmentOptions::preset(AugmentPreset preset) {
  switch (preset) {
    case AugmentPreset::kPaper:
      return paper();
    case AugmentPreset::kOriginal:
      return original();
    case AugmentPreset::kCoco:
      return coco();
    default:
      return none();
  }
}

AugmentParams sample_augment(const AugmentOptions& o, std::mt19937_64& rng) {
  // Every draw is made whatever the options, so the stream position never depends on them.
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  const double scale_draw =
      o.scale_law == AugmentOptions::ScaleLaw::kUniform ? uniform(rng) : normal(rng);
  const double rot_draw =
      o.rotation_law == AugmentOptions::RotationLaw::kUniform ? uniform(rng) : normal(rng);
  const double rot_gate = uniform(rng), flip_draw = uniform(rng);
  double colour_draw[3];
  for (double& c : colour_draw) c = uniform(rng);
  const double half_gate = uniform(rng), half_draw = normal(rng);

  AugmentParams p;
  switch (o.scale_law) {
    case AugmentOptions::ScaleLaw::kNone:
      break;
    case AugmentOptions::ScaleLaw::kUniform:
      p.scale = o.scale_min + (o.scale_max - o.scale_min) * scale_draw;
      break;
    case AugmentOptions::ScaleLaw::kLog2Normal:
      p.scale = std::exp2(std::clamp(scale_draw * o.scale_sigma, -o.scale_clamp, o.scale_clamp));
      break;
    case AugmentOptions::ScaleLaw::kNormal:
      p.scale = 1 + std::clamp(scale_draw * o.scale_sigma, -o.scale_clamp, o.scale_clamp);
      break;
  }
  switch (o.rotation_law) {
    case AugmentOptions::RotationLaw::kNone:
      break;
    case AugmentOptions::RotationLaw::kUniform:
      p.rotation_deg = o.rotation_max * (2 * rot_draw - 1);
      break;
    case AugmentOptions::RotationLaw::kNormal:
      p.rotation_deg = std::clamp(rot_draw * o.rotation_sigma, -o.rotation_max, o.rotation_max);
      break;
  }
  if (rot_gate >= o.rotation_prob) p.rotation_deg = 0;
  p.flip = flip_draw < o.flip_prob;
  for (int c = 0; c < 3; ++c)
    p.colour[c] = static_cast<float>(o.colour_min + (o.colour_max - o.colour_min) * colour_draw[c]);
  p.half_body = half_gate < o.half_body_prob;
  p.upper_body = half_draw < 0.5;
  return p;
}

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

std::mt19937_64 sample_rng(uint64_t seed, uint64_t epoch, uint64_t sample) {
  return std::mt19937_64(splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ sample));
}

}  // namespace hg::data
