#include "hg/train/ablation.h"

#include "hg/data/json.h"
#include "hg/data/readers.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/plot.h"
#include "hg/infer/predictor.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"
#include "hg/train/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace hg::train {
namespace fs = std::filesystem;
using runtime::with_commas;
namespace {

std::string percent(double v, int digits = 1) {
  return runtime::fixed(v, digits);
}

// Residual modules a block may hold (StackedHourglassOptions::validate).
constexpr int64_t kMaxResiduals = 8;

AblationModel describe_model(const model::StackedHourglassOptions& o, int64_t input_size) {
  const model::StackedHourglass net(o);
  return {o.stacks(), o.residuals(), net->parameter_count(),
          static_cast<double>(net->macs(input_size, input_size)) / 1e9};
}

std::string stack_word(int64_t n) {
  return std::to_string(n) + (n == 1 ? " stack" : " stacks");
}

TrainConfig model_config(const AblationOptions& o, const AblationModel& m, int64_t steps) {
  TrainConfig c = o.recipe;
  c.model.stacks(m.stacks).residuals(m.residuals);
  c.max_steps = steps;
  c.max_minutes = 0;  // the budget is steps, so that every model's training is a function of it
  // Epochs never end a run before its steps (the schedule's progress is the larger share).
  c.epochs = c.iters_per_epoch > 0 ? (steps + c.iters_per_epoch - 1) / c.iters_per_epoch : steps;
  c.validate();
  return c;
}

// Seconds per optimizer step from a calibration run's log: the epoch's elapsed time is
// samples / samples_per_s at each step; the difference between an early step and the last leaves
// out the first steps' one-off costs (primitive creation, caches warming).
double seconds_per_step(const fs::path& log, int64_t batch) {
  std::ifstream in(log);
  std::vector<std::pair<int64_t, double>> times;  // step, seconds since the epoch began
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.value("type", "") != "step") continue;
    const auto step = j["step"].get<int64_t>();
    times.emplace_back(step, static_cast<double>(step * batch) / j["samples_per_s"].get<double>());
  }
  TORCH_CHECK(times.size() >= 10, "the calibration run in ", log.parent_path().string(),
              " logged only ", times.size(), " steps");
  const auto& first = times[times.size() / 4];
  const auto& last = times.back();
  return (last.second - first.second) / static_cast<double>(last.first - first.first);
}

int64_t calibrate(const AblationOptions& o, const std::vector<AblationModel>& models,
                  nlohmann::json& record) {
  std::cerr << "calibration: " << o.calibration_steps << " steps of each model to turn "
            << o.minutes << " minutes into steps\n";
  double slowest = 0;
  record = nlohmann::json::array();
  for (const auto& m : models) {
    auto c = model_config(o, m, o.calibration_steps);
    c.val_dataset = "";
    const fs::path dir = fs::path(o.out) / "calibration" / ("stacks_" + std::to_string(m.stacks));
    fs::remove_all(dir);
    Trainer(c, dir.string()).run();
    const double s = seconds_per_step(dir / "log.jsonl", c.batch_size);
    record.push_back({{"stacks", m.stacks}, {"seconds_per_step", s}});
    std::cerr << "  " << stack_word(m.stacks) << ": " << percent(1000 * s, 1) << " ms a step\n";
    slowest = std::max(slowest, s);
  }
  fs::remove_all(fs::path(o.out) / "calibration");
  const auto steps = static_cast<int64_t>(std::floor(60 * o.minutes / slowest));
  TORCH_CHECK(steps >= 1, o.minutes, " minutes buy no step of the slowest model (",
              percent(slowest, 2), " s a step): give more minutes");
  return steps;
}

// The step budget of a time-budgeted experiment is timed once and kept in OUT/plan.json: a rerun
// with the same minutes, models and recipe replays it rather than timing again (another count
// would make every finished model's run one of another config).
int64_t planned_steps(const AblationOptions& o, const std::vector<AblationModel>& models,
                      nlohmann::json& calibration) {
  const auto path = fs::path(o.out) / "plan.json";
  std::vector<int64_t> stacks;
  for (const auto& m : models) stacks.push_back(m.stacks);
  const nlohmann::json key = {
      {"minutes", o.minutes}, {"stacks", stacks}, {"recipe", o.recipe.to_json()}};
  if (fs::exists(path)) {
    const auto plan = data::read_json_file(path.string());
    if (plan.value("key", nlohmann::json()) == key) {
      std::cerr << "budget as timed before, from " << path.string() << "\n";
      calibration = plan.at("calibration");
      return plan.at("steps").get<int64_t>();
    }
  }
  const auto steps = calibrate(o, models, calibration);
  const nlohmann::json plan = {{"key", key}, {"steps", steps}, {"calibration", calibration}};
  io::write_file_atomic(path.string(), runtime::json_text(plan, 2) + "\n");
  return steps;
}

// Trains the model in `dir`, or resumes the run found there if it has the same config (a finished
// one returns at once); a run of another config is refused, never overwritten. The training
// seconds of every call add up in dir/ablation_seconds.json, so that a resumed run still reports
// its whole time.
TrainResult train_or_resume(const TrainConfig& config, const fs::path& dir) {
  const auto saved_path = dir / "config.json", seconds_path = dir / "ablation_seconds.json";
  double before = 0;
  TrainResult result;
  if (fs::exists(saved_path)) {
    auto saved = data::read_json_file(saved_path.string());
    saved.erase("amp_probe");
    if (saved == config.to_json()) {
      std::cerr << "resuming the run in " << dir.string() << "\n";
      if (fs::exists(seconds_path))
        before = data::read_json_file(seconds_path.string()).value("seconds", 0.0);
      result = Trainer::resume(dir.string()).run();
    } else {
      TORCH_CHECK(false, dir.string(), " holds a run of another config (another budget, recipe ",
                  "or architecture): choose another output folder, or remove ", dir.string());
    }
  } else {
    result = Trainer(config, dir.string()).run();
  }
  result.seconds += before;
  io::write_file_atomic(seconds_path.string(),
                        runtime::json_text(nlohmann::json({{"seconds", result.seconds}})));
  return result;
}

void evaluate(const TrainConfig& config, const fs::path& dir, const AblationOptions& o,
              std::shared_ptr<const data::Dataset> test, AblationEntry& entry) {
  infer::PredictorOptions po;
  po.input_size = static_cast<int>(config.input_size);
  po.batch = 16;
  // Float32 direct convolutions: the scores do not depend on timed engine choices.
  po.backend.engine.threads = o.threads;
  po.backend.engine.precision = engine::Precision::kF32;
  po.backend.engine.algorithm = engine::Algorithm::kDirect;
  const auto predictor =
      infer::Predictor::from_model(io::load_model((dir / "last.hg").string()), po);
  const auto predictions = eval::predict_dataset(predictor, test);
  for (const auto& e : eval::stack_errors(predictions)) {
    entry.at_05.push_back(eval::pck_table(e, test->joints(), 0.5));
    entry.at_02.push_back(eval::pck_table(e, test->joints(), 0.2));
  }
}

std::string model_name(const AblationModel& m) {
  return stack_word(m.stacks) + " x " + std::to_string(m.residuals) + " residual" +
         (m.residuals == 1 ? "" : "s");
}

// x of stack s (from 0) of an S-stack model: the share of the network's depth it has passed,
// so that models of equal parameters line up (the 2-stack model's first output sits halfway).
double depth_share(int64_t s, int64_t stacks) {
  return static_cast<double>(s + 1) / static_cast<double>(stacks);
}

void plot_fig9(const AblationResult& r, const std::string& shown, const fs::path& png) {
  std::vector<double> grid;
  int64_t most = 1;
  for (const auto& e : r.entries) most = std::max(most, e.model.stacks);
  for (int64_t s = 0; s < most; ++s) grid.push_back(depth_share(s, most));
  eval::Panel ours{"this run: mean " + shown + "@0.5 of every stack", {}, shown + "@0.5 (%)"};
  double low = 100, high = 0;
  for (const auto& e : r.entries) {
    eval::Curve c{model_name(e.model), {}, {}, true};
    for (size_t s = 0; s < e.at_05.size(); ++s) {
      c.x.push_back(depth_share(static_cast<int64_t>(s), e.model.stacks));
      c.values.push_back(e.at_05[s].mean);
      low = std::min(low, c.values.back());
      high = std::max(high, c.values.back());
    }
    ours.curves.push_back(std::move(c));
  }
  ours.y_min = std::max(0.0, std::floor(low / 5) * 5 - 5);
  ours.y_max = std::min(100.0, std::ceil(high / 5) * 5 + 5);
  eval::Panel paper{"the paper (MPII validation, Fig. 9)", {}, "PCKh@0.5 (%)", 80, 90};
  for (const auto& f : paper_figures())
    paper.curves.push_back(
        {"paper: " + stack_word(f.stacks), {f.halfway, f.final}, {0.5, 1.0}, true, true});
  eval::plot_curves(png.string(), grid, {ours, paper}, "share of the network's depth", 1400, 560);
}

std::string report(const AblationResult& r, const AblationOptions& o, const std::string& shown) {
  std::ostringstream md;
  md << "# The stacking experiment (Newell et al. 2016, Fig. 9)\n\n"
     << "Every model trained for " << r.steps << " steps of batch " << o.recipe.batch_size
     << " on `" << o.recipe.dataset << "`, scored on `" << o.test_dataset << "` (mean " << shown
     << " of every stack).\n\n| model | parameters | GMAC at " << o.recipe.input_size
     << "² | steps | training s | halfway @0.5 | final @0.5 | final @0.2 |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& e : r.entries) {
    md << "| " << model_name(e.model) << " | " << with_commas(e.model.parameters) << " | "
       << percent(e.model.gmacs, 2) << " | " << e.steps << " | " << percent(e.seconds, 0) << " | "
       << percent(e.halfway()) << " | **" << percent(e.at_05.back().mean) << "** | "
       << percent(e.at_02.back().mean) << " |\n";
  }
  md << "\nThe paper (MPII validation PCKh@0.5, same parameters): ";
  for (const auto& f : paper_figures())
    md << stack_word(f.stacks) << " " << percent(f.halfway) << " halfway, " << percent(f.final)
       << " final; ";
  md << "\n\n## Every stack (" << shown << "@0.5, mean)\n\n| model |";
  int64_t most = 1;
  for (const auto& e : r.entries) most = std::max(most, e.model.stacks);
  for (int64_t s = 1; s <= most; ++s) md << " stack " << s << " |";
  md << "\n|---|";
  for (int64_t s = 0; s < most; ++s) md << "---|";
  md << "\n";
  for (const auto& e : r.entries) {
    md << "| " << model_name(e.model) << " |";
    for (int64_t s = 0; s < most; ++s)
      md << " " << (s < e.model.stacks ? percent(e.at_05[s].mean) : "") << " |";
    md << "\n";
  }
  md << "\n![accuracy against the position in the network](fig9.png)\n";
  return md.str();
}

}  // namespace

double AblationEntry::halfway() const {
  const auto s = model.stacks;
  return s % 2 == 0 && static_cast<int64_t>(at_05.size()) == s ? at_05[s / 2 - 1].mean : NAN;
}

const std::vector<PaperFigure>& paper_figures() {
  // Newell, Yang, Deng 2016, section 5.2: final 87.4 / 87.8 / 88.1 %, halfway 84.6 / 86.5 / 87.1 %.
  static const std::vector<PaperFigure> figures = {
      {2, 84.6, 87.4}, {4, 86.5, 87.8}, {8, 87.1, 88.1}};
  return figures;
}

std::vector<AblationModel> match_parameters(const model::StackedHourglassOptions& base,
                                            std::vector<int64_t> stacks, int64_t input_size,
                                            double tolerance) {
  TORCH_CHECK(!stacks.empty(), "the stacking experiment needs at least one stack count");
  std::sort(stacks.begin(), stacks.end());
  TORCH_CHECK(std::adjacent_find(stacks.begin(), stacks.end()) == stacks.end(),
              "stack counts must differ, got ", stacks);
  auto options = [&](int64_t s, int64_t r) {
    return model::StackedHourglassOptions(base).stacks(s).residuals(r);
  };
  const int64_t target = describe_model(options(stacks.back(), 1), input_size).parameters;
  std::vector<AblationModel> models;
  for (const int64_t s : stacks) {
    // Parameters grow by the same amount with each residual per block: p(r) = p1 + (r-1)·d.
    const int64_t p1 = describe_model(options(s, 1), input_size).parameters;
    const int64_t d = describe_model(options(s, 2), input_size).parameters - p1;
    const auto best = 1 + std::max<int64_t>(0, std::llround(double(target - p1) / double(d)));
    TORCH_CHECK(best <= kMaxResiduals, stack_word(s), " would need ", best,
                " residuals per block to match the ", with_commas(target), " parameters of ",
                stack_word(stacks.back()), " (at most ", kMaxResiduals,
                "): choose closer stack counts");
    auto m = describe_model(options(s, best), input_size);
    const double off = double(m.parameters - target) / double(target);
    TORCH_CHECK(std::abs(off) <= tolerance, stack_word(s), " cannot match the ",
                with_commas(target), " parameters of ", stack_word(stacks.back()), " within ",
                percent(100 * tolerance, 0), " % (closest: ", best, " residuals per block, ",
                with_commas(m.parameters), ", ", percent(100 * off),
                " %): choose stack counts "
                "that divide the largest, e.g. 2,4,8");
    models.push_back(m);
  }
  return models;
}

nlohmann::json ablation_to_json(const AblationResult& r, const AblationOptions& o) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& e : r.entries) {
    nlohmann::json stacks = nlohmann::json::array();
    for (size_t s = 0; s < e.at_05.size(); ++s)
      stacks.push_back({{"stack", s + 1},
                        {r.metric + "@0.5", eval::table_to_json(e.at_05[s])},
                        {r.metric + "@0.2", eval::table_to_json(e.at_02[s])}});
    models.push_back({{"stacks", e.model.stacks},
                      {"residuals", e.model.residuals},
                      {"parameters", e.model.parameters},
                      {"gmacs", e.model.gmacs},
                      {"steps", e.steps},
                      {"training_seconds", e.seconds},
                      {"per_stack", stacks}});
  }
  nlohmann::json paper = nlohmann::json::array();
  for (const auto& f : paper_figures())
    paper.push_back({{"stacks", f.stacks}, {"halfway", f.halfway}, {"final", f.final}});
  return {{"steps", r.steps},
          {"metric", r.metric},
          {"test_dataset", o.test_dataset},
          {"recipe", o.recipe.to_json()},
          {"models", models},
          {"paper_mpii_pckh@0.5", paper}};
}

AblationResult run_ablation(const AblationOptions& o) {
  TORCH_CHECK((o.steps > 0) != (o.minutes > 0), "the stacking experiment needs one budget: steps ",
              "(", o.steps, ") or minutes (", o.minutes, "), not both or neither");
  TORCH_CHECK(o.steps > 0 || o.calibration_steps >= 10,
              "calibration_steps must be at least 10, got ", o.calibration_steps);
  const auto models = match_parameters(o.recipe.model, o.stacks, o.recipe.input_size);
  std::cerr << "the stacking experiment, parameters matched:\n";
  for (const auto& m : models)
    std::cerr << "  " << model_name(m) << ": " << with_commas(m.parameters) << " parameters, "
              << percent(m.gmacs, 2) << " GMAC at " << o.recipe.input_size << "²\n";
  const auto test = data::open_dataset(o.test_dataset, o.test_images);
  TORCH_CHECK(test->joints().size() == o.recipe.model.joints(), "the held-out set ",
              test->describe(), " has ", test->joints().size(), " joints, the models ",
              o.recipe.model.joints());
  fs::create_directories(o.out);
  nlohmann::json calibration;
  AblationResult r;
  r.steps = o.steps > 0 ? o.steps : planned_steps(o, models, calibration);
  r.metric = eval::metric_for(test->joints()).name;
  std::cerr << "budget: " << r.steps << " steps of batch " << o.recipe.batch_size
            << " for every model\n";
  for (const auto& m : models) {
    const auto config = model_config(o, m, r.steps);
    const fs::path dir = fs::path(o.out) / ("stacks_" + std::to_string(m.stacks));
    std::cerr << "\n" << model_name(m) << ": training in " << dir.string() << "\n";
    const auto trained = train_or_resume(config, dir);
    TORCH_CHECK(trained.outcome != Outcome::kInterrupted,
                "interrupted: run the same command again to continue from ", dir.string());
    AblationEntry entry{m, trained.step, trained.seconds, {}, {}};
    evaluate(config, dir, o, test, entry);
    std::cerr << model_name(m) << ": final " << percent(entry.at_05.back().mean) << " %\n";
    r.entries.push_back(std::move(entry));
  }
  const std::string shown = r.metric == "pckh" ? "PCKh" : "PCK";
  auto json = ablation_to_json(r, o);
  if (!calibration.is_null())
    json["calibration"] = {{"minutes", o.minutes}, {"models", calibration}};
  io::write_file_atomic((fs::path(o.out) / "ablation.json").string(),
                        runtime::json_text(json, 2) + "\n");
  io::write_file_atomic((fs::path(o.out) / "report.md").string(), report(r, o, shown));
  plot_fig9(r, shown, fs::path(o.out) / "fig9.png");
  return r;
}

}  // namespace hg::train
