#include "hg/engine/engine.h"

// The engine's name tables apart from its kernels, so that a program that only reads configs
// (the config fuzz target) links them without oneDNN.
namespace hg::engine {

const runtime::NameTable<Precision>& name_table(Precision) {
  static const runtime::NameTable<Precision> table = {
      {"auto", Precision::kAuto}, {"f32", Precision::kF32}, {"bf16", Precision::kBf16}};
  return table;
}

const runtime::NameTable<Algorithm>& name_table(Algorithm) {
  static const runtime::NameTable<Algorithm> table = {{"auto", Algorithm::kAuto},
                                                      {"direct", Algorithm::kDirect},
                                                      {"winograd", Algorithm::kWinograd}};
  return table;
}

std::string precision_name(Precision p) {
  return runtime::name_in(name_table(p), p);
}

std::string algorithm_name(Algorithm a) {
  return runtime::name_in(name_table(a), a);
}

}  // namespace hg::engine
