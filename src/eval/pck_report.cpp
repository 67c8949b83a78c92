#include "hg/eval/pck_report.h"

#include "hg/data/readers.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/official_mpii.h"
#include "hg/eval/plot.h"
#include "hg/eval/predictions.h"
#include "hg/infer/results.h"
#include "hg/runtime/text.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace hg::eval {
namespace {

// Predictions for the first n samples: n×S×J×2 (image pixels) and which samples have one.
struct Predictions {
  at::Tensor joints, have;
  std::string source;
  std::string warning;  // samples left out, if any
};

std::string left_out(size_t missing, size_t n, const std::string& why) {
  const bool one = missing == 1;
  return runtime::with_commas(static_cast<int64_t>(missing)) + " of " +
         runtime::count(static_cast<int64_t>(n), "sample") + (one ? " has " : " have ") + why +
         (one ? " and is left out" : " and are left out");
}

Predictions from_model(const PckReportOptions& o, std::shared_ptr<const data::Dataset> d,
                       size_t n) {
  const auto& predictor = *o.predictor;
  TORCH_CHECK(predictor.joints().size() == d->joints().size(), "the model predicts ",
              predictor.joints().size(), " joints, the dataset has ", d->joints().size());
  DatasetRunOptions run;
  run.limit = static_cast<int64_t>(n);
  const auto p = predict_dataset(predictor, d, run, o.progress);
  const int64_t stacks = static_cast<int64_t>(p.joints.size());
  auto joints =
      torch::zeros({static_cast<int64_t>(n), stacks, d->joints().size(), 2}, torch::kDouble);
  auto have = torch::zeros({static_cast<int64_t>(n)}, torch::kBool);
  const auto index = torch::tensor(std::vector<int64_t>(p.samples.begin(), p.samples.end()));
  joints.index_copy_(0, index, torch::stack(p.joints, 1).slice(3, 0, 2).to(torch::kDouble));
  have.index_fill_(0, index, true);
  Predictions out{joints, have, "model " + o.model, ""};
  if (p.samples.size() < n) out.warning = left_out(n - p.samples.size(), n, "no readable image");
  return out;
}

// The JSON of `predict`: the person of an image nearest to each annotation's centre.
Predictions from_results(const std::string& path, const data::Dataset& d, size_t n) {
  const auto results = infer::read_results(path, d.joints());
  std::map<std::string, std::vector<const infer::PersonResult*>> by_image;
  int64_t stacks = 0;
  for (const auto& r : results)
    for (const auto& p : r.people) {
      by_image[fs::path(r.input).filename().string()].push_back(&p);
      stacks = std::max(stacks, p.joints.size(0));
    }
  TORCH_CHECK(stacks > 0, "cannot use ", path, ": it holds no person");
  auto joints =
      torch::zeros({static_cast<int64_t>(n), stacks, d.joints().size(), 2}, torch::kDouble);
  auto have = torch::zeros({static_cast<int64_t>(n)}, torch::kBool);
  size_t missing = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto a = d.annotation(i);
    const auto it = by_image.find(fs::path(a.image).filename().string());
    if (it == by_image.end()) {
      ++missing;
      continue;
    }
    const infer::PersonResult* best = nullptr;
    for (const auto* p : it->second)
      if (!best || cv::norm(p->center - a.center) < cv::norm(best->center - a.center)) best = p;
    TORCH_CHECK(best->joints.size(0) == stacks, "cannot use ", path,
                ": its people have different numbers of stacks");
    joints[static_cast<int64_t>(i)] = best->joints.slice(2, 0, 2).to(torch::kDouble);
    have[static_cast<int64_t>(i)] = true;
  }
  Predictions out{joints, have, "predictions " + path, ""};
  if (missing > 0) out.warning = left_out(missing, n, "no image in " + path);
  return out;
}

Predictions from_h5(const std::string& path, const data::Dataset& d, size_t n) {
  auto joints = read_predictions_h5(path);
  TORCH_CHECK(
      static_cast<size_t>(joints.size(0)) == d.size() && joints.size(2) == d.joints().size(),
      "cannot use ", path, ": 'preds' is ", joints.sizes(), " but ", d.describe(), " needs ",
      d.size(), "×", d.joints().size(), "×2 (one row per annotation, in order)");
  return {joints.slice(0, 0, static_cast<int64_t>(n)),
          torch::ones({static_cast<int64_t>(n)}, torch::kBool), "predictions " + path, ""};
}

Truth truth_for(const PckReportOptions& o, const data::Dataset& d) {
  auto truth = truth_of(d);
  if (o.official_truth.empty()) return truth;
  const auto official = read_official_mpii_truth(o.official_truth);
  TORCH_CHECK(official.joints.sizes() == truth.joints.sizes(), "cannot use ", o.official_truth,
              ": it holds ", runtime::count(official.joints.size(0), "person", "people"), " × ",
              runtime::count(official.joints.size(1), "joint"), ", ", d.describe(), " ",
              runtime::with_commas(truth.joints.size(0)), " × ", truth.joints.size(1));
  return official;
}

StackScores score_stack(const at::Tensor& errors, const PckReport& r, int64_t stack) {
  StackScores s;
  s.stack = stack;
  for (double t : r.metric.thresholds) s.tables.push_back(pck_table(errors, r.joints, t));
  for (double t : r.thresholds) s.curve.push_back(pck_table(errors, r.joints, t));
  return s;
}

// One curve per joint group over the thresholds, and the mean's last.
std::vector<Curve> group_curves(const StackScores& s) {
  const auto& names = s.curve[0].group_names;
  std::vector<Curve> groups(names.size() + 1);
  for (size_t g = 0; g < groups.size(); ++g) {
    groups[g].label = g < names.size() ? names[g] : "mean";
    for (const auto& c : s.curve)
      groups[g].values.push_back(g < c.groups.size() ? c.groups[g] : c.mean);
  }
  return groups;
}

std::string stack_label(const PckReport& r, const StackScores& s) {
  return s.stack == r.stacks ? "final" : "stack " + std::to_string(s.stack);
}

nlohmann::json stack_json(const PckReport& r, const StackScores& s) {
  nlohmann::json entry = {{"stack", s.stack}};
  for (size_t k = 0; k < s.tables.size(); ++k)
    entry[metric_key(r.metric, r.metric.thresholds[k])] = table_to_json(s.tables[k]);
  nlohmann::json per_joint = nlohmann::json::object();
  for (int j = 0; j < r.joints.size(); ++j) {
    const double v = s.tables[0].per_joint[j];
    per_joint[r.joints.names[j]] = std::isnan(v) ? nlohmann::json() : nlohmann::json(v);
  }
  entry["per_joint"] = per_joint;
  nlohmann::json curve = nlohmann::json::object();
  for (const auto& g : group_curves(s)) curve[g.label] = g.values;
  entry["curve"] = curve;
  return entry;
}

std::string percent(double v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%6.2f", v);
  return std::isnan(v) ? "     -" : buf;
}

void table_lines(std::ostream& o, const std::string& label, const PckTable& t, bool header) {
  if (header) {
    o << std::string(16, ' ');
    for (const auto& g : t.group_names) o << ' ' << std::setw(8) << g;
    o << ' ' << std::setw(8) << "mean" << ' ' << std::setw(8) << "weighted" << '\n';
  }
  o << std::left << std::setw(16) << label << std::right;
  for (double g : t.groups) o << ' ' << std::setw(8) << percent(g);
  o << ' ' << std::setw(8) << percent(t.mean) << ' ' << std::setw(8) << percent(t.mean_weighted)
    << '\n';
}

void curve_line(std::ostream& o, const PckReport& r, const StackScores& s) {
  const auto mean = group_curves(s).back().values;
  o << r.metric.name << " over thresholds (mean):";
  for (size_t k = 0; k < r.thresholds.size(); k += 5) {
    char threshold[32];
    std::snprintf(threshold, sizeof threshold, " %.2f:", r.thresholds[k]);
    o << threshold << percent(mean[k]);
  }
  o << '\n';
}

}  // namespace

PckReport evaluate_pck(const PckReportOptions& options) {
  return evaluate_pck(data::open_dataset(options.dataset, options.images), options);
}

PckReport evaluate_pck(std::shared_ptr<const data::Dataset> d, const PckReportOptions& o) {
  TORCH_CHECK(o.predictor || !o.predictions.empty(), "nothing to evaluate: give a predictor or ",
              "a predictions file");
  TORCH_CHECK(o.limit >= 0, "limit must be 0 (every sample) or more, got ", o.limit);
  TORCH_CHECK(!o.thresholds.empty(), "the PCK curves need at least one threshold");
  const size_t n = o.limit > 0 ? std::min(d->size(), static_cast<size_t>(o.limit)) : d->size();
  TORCH_CHECK(n > 0, d->describe(), " has no samples");
  const auto ext = fs::path(o.predictions).extension().string();
  const Predictions p = o.predictor      ? from_model(o, d, n)
                        : ext == ".json" ? from_results(o.predictions, *d, n)
                                         : from_h5(o.predictions, *d, n);
  const auto truth = truth_for(o, *d);
  const auto rows = torch::nonzero(p.have).squeeze(1);
  TORCH_CHECK(rows.size(0) > 0, "no sample has a prediction");
  const auto pick = [&](const at::Tensor& t) {
    return t.slice(0, 0, static_cast<int64_t>(n)).index_select(0, rows);
  };
  PckReport r;
  r.dataset = d->describe();
  r.source = p.source;
  r.joints = d->joints();
  r.metric = metric_for(d->joints());
  r.thresholds = o.thresholds;
  r.samples = static_cast<int64_t>(n);
  r.evaluated = rows.size(0);
  r.stacks = p.joints.size(1);
  r.per_stack = o.per_stack;
  r.predictions = p.joints;
  if (!p.warning.empty()) r.warnings.push_back(p.warning);
  for (int64_t s = o.per_stack ? 0 : r.stacks - 1; s < r.stacks; ++s) {
    const auto errors = normalized_errors(pick(p.joints.select(1, s)), pick(truth.joints),
                                          pick(truth.present), pick(truth.normalize));
    r.scores.push_back(score_stack(errors, r, s + 1));
  }
  return r;
}

nlohmann::json pck_report_to_json(const PckReport& r) {
  nlohmann::json out = {{"dataset", r.dataset},     {"predictions", r.source},
                        {"evaluated", r.evaluated}, {"samples", r.samples},
                        {"metric", r.metric.name},  {"thresholds", r.thresholds}};
  const auto last = stack_json(r, r.scores.back());
  for (const auto& [k, v] : last.items()) out[k] = v;
  if (r.per_stack)
    for (const auto& s : r.scores) out["per_stack"].push_back(stack_json(r, s));
  return out;
}

std::string format_pck_report(const PckReport& r) {
  std::ostringstream o;
  o << "dataset:     " << r.dataset << "\npredictions: " << r.source << " ("
    << runtime::count(r.stacks, "stack") << ")\nevaluated:   " << runtime::with_commas(r.evaluated)
    << " of " << runtime::count(r.samples, "person", "people") << '\n';
  for (const auto& s : r.scores) {
    const bool last = s.stack == r.stacks;
    o << '\n' << stack_label(r, s) << ":\n";
    for (size_t k = 0; k < s.tables.size(); ++k) {
      table_lines(o, metric_key(r.metric, r.metric.thresholds[k]), s.tables[k], k == 0);
      if (k > 0 || !last) continue;
      o << "per joint:";
      for (int j = 0; j < r.joints.size(); ++j)
        o << (j % 6 == 0 ? "\n " : "") << ' ' << r.joints.names[j] << ' '
          << percent(s.tables[0].per_joint[j]);
      o << '\n';
    }
    if (last) curve_line(o, r, s);
  }
  return o.str();
}

void plot_pck_report(const std::string& png_path, const PckReport& r) {
  const std::string shown = r.metric.name == "pckh" ? "PCKh" : "PCK";
  Panel per_stack{"mean " + shown + " per stack", {}};
  for (const auto& s : r.scores)
    per_stack.curves.push_back({stack_label(r, s), group_curves(s).back().values});
  std::vector<Panel> panels = {{shown + " by joint group (" + stack_label(r, r.scores.back()) + ")",
                                group_curves(r.scores.back())}};
  if (per_stack.curves.size() > 1) panels.push_back(per_stack);
  plot_curves(png_path, r.thresholds, panels, "threshold (fraction of the " + shown + " unit)");
}

}  // namespace hg::eval
