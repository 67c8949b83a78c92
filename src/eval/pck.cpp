#include "hg/eval/pck.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace hg::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Joints outside the mean, as in the official MPII evaluation.
bool excluded_from_mean(const std::string& name) {
  return name == "pelvis" || name == "thorax";
}

double mean_of(const std::vector<double>& values, const std::vector<int>& idx) {
  double sum = 0;
  int n = 0;
  for (int i : idx)
    if (!std::isnan(values[i])) sum += values[i], ++n;
  return n > 0 ? sum / n : kNaN;
}

}  // namespace

at::Tensor normalized_errors(const at::Tensor& pred, const at::Tensor& truth,
                             const at::Tensor& present, const at::Tensor& normalize) {
  TORCH_CHECK(pred.dim() == 3 && pred.size(2) == 2 && pred.sizes() == truth.sizes(),
              "predictions must be N×J×2 like the truth, got ", pred.sizes(), " and ",
              truth.sizes());
  TORCH_CHECK(present.sizes() == pred.sizes().slice(0, 2) && normalize.dim() == 1 &&
                  normalize.size(0) == pred.size(0),
              "present must be N×J and normalize N");
  // A prediction that is not finite is a miss (an infinite error), not an absent joint.
  const auto raw = (pred.to(torch::kDouble) - truth.to(torch::kDouble)).norm(2, {2});
  const auto err =
      torch::where(torch::isfinite(raw), raw, torch::full_like(raw, INFINITY, torch::kDouble));
  const auto unit = normalize.to(torch::kDouble).unsqueeze(1);
  TORCH_CHECK((unit > 0).all().item<bool>() || !present.any().item<bool>(),
              "every person needs a positive normalize (PCK unit)");
  return torch::where(present.to(torch::kBool), err / unit,
                      torch::full_like(err, std::numeric_limits<double>::quiet_NaN()));
}

Truth truth_of(const data::Dataset& dataset) {
  const auto n = static_cast<int64_t>(dataset.size());
  const int64_t j = dataset.joints().size();
  Truth t{torch::zeros({n, j, 2}, torch::kDouble), torch::zeros({n, j}, torch::kBool),
          torch::zeros({n}, torch::kDouble)};
  auto joints = t.joints.accessor<double, 3>();
  auto present = t.present.accessor<bool, 2>();
  auto normalize = t.normalize.accessor<double, 1>();
  for (int64_t i = 0; i < n; ++i) {
    const auto a = dataset.annotation(static_cast<size_t>(i));
    normalize[i] = data::pck_unit(a);
    for (int64_t k = 0; k < j; ++k) {
      joints[i][k][0] = a.joints[k].pos.x;
      joints[i][k][1] = a.joints[k].pos.y;
      present[i][k] = a.joints[k].present;
    }
  }
  return t;
}

std::vector<double> pck_per_joint(const at::Tensor& errors, double threshold) {
  const auto present = ~torch::isnan(errors);
  const auto hits = (errors < threshold).logical_and(present).sum(0).to(torch::kDouble);
  const auto counts = present.sum(0).to(torch::kDouble);
  const auto pck = (100.0 * hits / counts).contiguous();  // 0/0 = NaN for absent joints
  return {pck.data_ptr<double>(), pck.data_ptr<double>() + pck.numel()};
}

std::vector<int64_t> present_counts(const at::Tensor& errors) {
  const auto counts = (~torch::isnan(errors)).sum(0).to(torch::kLong).contiguous();
  return {counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()};
}

PckTable pck_table(const at::Tensor& errors, const data::JointSet& joints, double threshold) {
  TORCH_CHECK(errors.dim() == 2 && errors.size(1) == joints.size(), "errors must be N×",
              joints.size(), " for joint set '", joints.name, "', got ", errors.sizes());
  PckTable t;
  t.threshold = threshold;
  t.per_joint = pck_per_joint(errors, threshold);
  const auto counts = present_counts(errors);

  auto find = [&](const std::string& name) {
    for (int i = 0; i < joints.size(); ++i)
      if (joints.names[i] == name) return i;
    return -1;
  };
  std::vector<int> head;
  if (find("head-top") >= 0) {
    head = {find("head-top")};
  } else {
    for (const char* n : {"nose", "l-eye", "r-eye", "l-ear", "r-ear"})
      if (find(n) >= 0) head.push_back(find(n));
  }
  if (!head.empty()) {
    t.group_names.push_back("head");
    t.groups.push_back(mean_of(t.per_joint, head));
  }
  for (const char* part : {"shoulder", "elbow", "wrist", "hip", "knee", "ankle"}) {
    std::vector<int> idx;
    for (const char* side : {"l-", "r-"})
      if (find(std::string(side) + part) >= 0) idx.push_back(find(std::string(side) + part));
    if (idx.empty()) continue;
    t.group_names.push_back(part);
    t.groups.push_back(mean_of(t.per_joint, idx));
  }
  std::vector<int> used;
  double weighted = 0;
  int64_t total = 0;
  for (int i = 0; i < joints.size(); ++i) {
    if (excluded_from_mean(joints.names[i]) || std::isnan(t.per_joint[i])) continue;
    used.push_back(i);
    weighted += t.per_joint[i] * counts[i];
    total += counts[i];
  }
  t.mean = mean_of(t.per_joint, used);
  t.mean_weighted = total > 0 ? weighted / total : kNaN;
  return t;
}

std::vector<double> curve_thresholds() {
  std::vector<double> t;
  for (int k = 0; k <= 50; ++k) t.push_back(k / 100.0);
  return t;
}

nlohmann::json table_to_json(const PckTable& table) {
  auto value = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
  nlohmann::json j = nlohmann::json::object();
  for (size_t g = 0; g < table.groups.size(); ++g) j[table.group_names[g]] = value(table.groups[g]);
  j["mean"] = value(table.mean);
  j["mean_weighted"] = value(table.mean_weighted);
  return j;
}

Metric metric_for(const data::JointSet& joints) {
  if (joints.name == "mpii" || joints.name == "synthetic") return {"pckh", {0.5, 0.1}};
  return {"pck", {0.2}};
}

std::string metric_key(const Metric& metric, double threshold) {
  std::ostringstream s;
  s << metric.name << "@" << threshold;
  return s.str();
}

std::string metric_label(const Metric& metric, double threshold) {
  std::ostringstream s;
  s << (metric.name == "pckh" ? "PCKh" : "PCK") << "@" << threshold;
  return s.str();
}

}  // namespace hg::eval
